import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Configuration, JudgeMethod, UnfinishedPairs } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { loadRunFile, RunFileError, runFromDocument, type RunFile } from './load';

const ROOT = path.resolve(__dirname, '../../../..');
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-run-file-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to a file of the temporary directory and loads it. */
function load(name: string, text: string, env: NodeJS.ProcessEnv = {}): RunFile {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return loadRunFile(file, env);
}

/** The InvalidArgumentError that loading throws (its field and reason). */
function invalid(name: string, text: string, env: NodeJS.ProcessEnv = {}): { field: string; reason: string } {
  try {
    load(name, text, env);
  } catch (error) {
    if (error instanceof InvalidArgumentError) return { field: error.field, reason: error.reason };
    throw error;
  }
  throw new Error('loaded without an error');
}

describe('run files', () => {
  it('reads YAML with snake_case keys and enums by name, as a StartRunRequest', () => {
    const run = load(
      'a.yaml',
      `run_id: r1
spec:
  configuration: CONFIGURATION_SPA
  rounds: 2
  loss: { beta: 0.2, dnd_lambda_schedule: [0.5, 0.25] }
  seed_training: { learning_rate: 0.001, batch_size: 4, lr_scheduler: constant }
  evaluation: { evaluator: JUDGE_METHOD_RULE, rule: length/shorter, samples_per_prompt: 2 }
  unfinished_pairs: UNFINISHED_PAIRS_KEEP
  seed: 7
`,
    );
    expect(run.runId).toBe('r1');
    expect(run.spec).toMatchObject({
      configuration: Configuration.CONFIGURATION_SPA,
      rounds: 2,
      loss: { beta: 0.2, dndLambdaSchedule: [0.5, 0.25] },
      seedTraining: { learningRate: 0.001, batchSize: 4, lrScheduler: 'constant' },
      evaluation: { evaluator: JudgeMethod.JUDGE_METHOD_RULE, rule: 'length/shorter', samplesPerPrompt: 2 },
      unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP,
      seed: 7,
    });
  });

  it('reads JSON (by the .json extension) and lowerCamelCase keys, also mixed with snake_case', () => {
    const json = load('b.json', JSON.stringify({ runId: 'r2', spec: { configuration: 'CONFIGURATION_WDRO', seedTraining: { learningRate: 0.01 }, loss: { beta: 0.3 } } }));
    const yaml = load('b.yaml', 'run_id: r2\nspec:\n  configuration: CONFIGURATION_WDRO\n  seedTraining: { learning_rate: 0.01 }\n  loss: { beta: 0.3 }\n');
    expect(json).toEqual(yaml);
    expect(json.spec.seedTraining?.learningRate).toBe(0.01);
  });

  it('takes a bare RunSpec too (no run_id), naming its fields spec.* all the same', () => {
    const run = load('bare.yaml', 'configuration: spa\nrounds: 1\n');
    expect(run).toMatchObject({ runId: '', spec: { configuration: Configuration.CONFIGURATION_SPA, rounds: 1 } });
    expect(invalid('bare-bad.yaml', 'configuration: spa\nrouns: 1\n')).toEqual({ field: 'spec.rouns', reason: expect.stringContaining('did you mean rounds?') });
  });

  it('takes enums by full name, by the part after the prefix in any case, and by number', () => {
    const spec = (value: string) => load('enum.yaml', `spec: { configuration: ${value} }`).spec.configuration;
    expect(spec('CONFIGURATION_WDRO_SR')).toBe(Configuration.CONFIGURATION_WDRO_SR);
    expect(spec('wdro_sr')).toBe(Configuration.CONFIGURATION_WDRO_SR);
    expect(spec('wdro-sr')).toBe(Configuration.CONFIGURATION_WDRO_SR);
    expect(spec('6')).toBe(Configuration.CONFIGURATION_WDRO_SR);
    const error = invalid('enum-bad.yaml', 'spec: { configuration: spaa }');
    expect(error.field).toBe('spec.configuration');
    expect(error.reason).toContain('must be one of CONFIGURATION_DPO_SEED, CONFIGURATION_SPA');
  });

  it('is the same run as examples/micro-run.json: micro-run.yaml, its paths relative to itself', () => {
    const yaml = loadRunFile(path.join(ROOT, 'examples/micro-run.yaml'), {});
    // micro-run.json's paths are relative to the repo root (grpcurl sends them to the services, whose cwd it is).
    const json = runFromDocument(JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/micro-run.json'), 'utf8')), ROOT, {});
    expect(yaml).toEqual(json);
    expect(yaml.spec.seedPairs?.uri).toBe(path.join(ROOT, '.data/micro/seed_pairs.conversational.jsonl'));
    // DATA_DIR moves every input.
    const moved = loadRunFile(path.join(ROOT, 'examples/micro-run.yaml'), { DATA_DIR: '/srv/data' });
    expect(moved.spec.baseModel?.onnx?.uri).toBe('/srv/data/micro/model/onnx');
    expect(moved.spec.prompts?.$case === 'roundPrompts' && moved.spec.prompts.value.rounds.map((r) => r.uri)).toEqual([
      '/srv/data/micro/round-1.jsonl',
      '/srv/data/micro/round-2.jsonl',
    ]);
  });

  it("the template's commented judge lines, uncommented, name the outside judges as the RunSpec fields", () => {
    const text = fs.readFileSync(path.join(ROOT, 'examples/micro-run.yaml'), 'utf8');
    const uncommented = text.replace(/^(\s*)# ((?:gold_)?judge_(?:address|rule): .*)$/gm, '$1$2');
    expect(uncommented.match(/^\s*(gold_)?judge_(address|rule): /gm)).toHaveLength(3);
    const run = load('micro-judges.yaml', uncommented, {});
    expect(run.spec.judgeAddress).toBe('127.0.0.1:50470');
    expect(run.spec.judgeRule).toBe('python/score');
    expect(run.spec.evaluation?.goldJudgeAddress).toBe('127.0.0.1:50470');
  });
});

describe('environment interpolation', () => {
  it('expands ${VAR} and ${VAR:-default} (the default when unset or empty), in string values only', () => {
    const text = 'run_id: "${RUN:-r0}-${SUFFIX:-x}"\nspec:\n  name: "${NAME} at $$HOME, literally $${NAME}"\n  seed: ${SEED:-7}\n';
    const run = load('env.yaml', text, { NAME: 'micro', SUFFIX: '', RUN: 'nightly' });
    expect(run.runId).toBe('nightly-x');
    expect(run.spec.name).toBe('micro at $$HOME, literally ${NAME}');
    expect(run.spec.seed).toBe(7);
  });

  it('gives numbers and booleans from variables their proto type', () => {
    const run = load('env-types.yaml', 'spec:\n  loss: { beta: "${BETA}" }\n  frozen_judge: "${FROZEN}"\n  rounds: ${ROUNDS}\n', { BETA: '0.25', FROZEN: 'true', ROUNDS: '3' });
    expect(run.spec).toMatchObject({ loss: { beta: 0.25 }, frozenJudge: true, rounds: 3 });
  });

  it('refuses a variable that is not set, naming it and the field', () => {
    const error = invalid('env-missing.yaml', 'spec:\n  seed_pairs: { uri: "${SEEDS_DIR}/pairs.jsonl" }\n');
    expect(error.field).toBe('spec.seed_pairs.uri');
    expect(error.reason).toContain('environment variable SEEDS_DIR is not set');
    // In a bare RunSpec and in a list.
    expect(invalid('env-missing-2.yaml', 'round_prompts: { rounds: [{ uri: a }, { uri: "${R2}" }] }\n')).toEqual({
      field: 'spec.round_prompts.rounds[1].uri',
      reason: expect.stringContaining('R2 is not set'),
    });
    expect(invalid('env-malformed.yaml', 'spec: { name: "${NOT A NAME}" }').reason).toContain('is not a variable reference');
    expect(invalid('env-unterminated.yaml', 'spec: { name: "${NAME" }').reason).toContain("unterminated '${NAME'");
  });
});

describe('paths', () => {
  it('resolves every relative ArtifactRef uri against the file’s folder, leaving absolute paths and URIs alone', () => {
    const sub = path.join(dir, 'runs');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(
      path.join(sub, 'paths.yaml'),
      `spec:
  base_model: { hf_checkpoint: { uri: ../models/ckpt }, onnx: { uri: /abs/onnx } }
  seed_pairs: { uri: "file:///data/pairs.jsonl" }
  prompt_split: { prompts: { uri: prompts.jsonl } }
  judge_model: { onnx: { uri: "s3://bucket/judge" } }
  evaluation: { prompts: { uri: ./eval.jsonl }, reward_model: { onnx: { uri: "~/rm" } } }
`,
    );
    const { spec } = loadRunFile(path.join(sub, 'paths.yaml'), {});
    expect(spec.baseModel).toEqual({ hfCheckpoint: expect.objectContaining({ uri: path.join(dir, 'models/ckpt') }), onnx: expect.objectContaining({ uri: '/abs/onnx' }) });
    expect(spec.seedPairs?.uri).toBe('file:///data/pairs.jsonl');
    expect(spec.prompts?.$case === 'promptSplit' && spec.prompts.value.prompts?.uri).toBe(path.join(sub, 'prompts.jsonl'));
    expect(spec.judgeModel?.onnx?.uri).toBe('s3://bucket/judge');
    expect(spec.evaluation?.prompts?.uri).toBe(path.join(sub, 'eval.jsonl'));
    expect(spec.evaluation?.rewardModel?.onnx?.uri).toBe(path.join(os.homedir(), 'rm'));
  });
});

describe('errors name the field', () => {
  it('an unknown field, with the nearest known one', () => {
    expect(invalid('u1.yaml', 'spec: { loss: { bta: 0.1 } }')).toEqual({ field: 'spec.loss.bta', reason: expect.stringContaining('unknown field of LossParams (did you mean beta?)') });
    expect(invalid('u2.yaml', 'spec: { seedPairs: { url: x } }')).toEqual({ field: 'spec.seed_pairs.url', reason: expect.stringContaining('did you mean uri?') });
    expect(invalid('u3.yaml', 'run_id: x\nspec: {}\nwait: true\n')).toEqual({ field: 'wait', reason: expect.stringContaining('its fields: spec, run_id') });
  });

  it('a value of the wrong type, an integer out of range, a list that is not one', () => {
    expect(invalid('t1.yaml', 'spec: { loss: { beta: high } }')).toEqual({ field: 'spec.loss.beta', reason: 'must be a number, got string "high"' });
    expect(invalid('t2.yaml', 'spec: { rounds: 1.5 }')).toEqual({ field: 'spec.rounds', reason: 'must be an integer, got 1.5' });
    expect(invalid('t3.yaml', 'spec: { rounds: -1 }').reason).toContain('must be an integer in [0, 4294967295]');
    expect(invalid('t4.yaml', 'spec: { name: 12 }')).toEqual({ field: 'spec.name', reason: 'must be a string, got number 12 (quote it)' });
    expect(invalid('t5.yaml', 'spec: { loss: { dnd_lambda_schedule: 0.5 } }')).toEqual({ field: 'spec.loss.dnd_lambda_schedule', reason: 'must be a list, got number 0.5' });
    expect(invalid('t6.yaml', 'spec: { loss: { dnd_lambda_schedule: [0.5, x] } }').field).toBe('spec.loss.dnd_lambda_schedule[1]');
    expect(invalid('t7.yaml', 'spec: { loss: 0.1 }')).toEqual({ field: 'spec.loss', reason: "must be a mapping of LossParams's fields, got number 0.1" });
  });

  it('two members of a oneof, and one field given in both spellings', () => {
    expect(invalid('o1.yaml', 'spec: { round_prompts: { rounds: [] }, prompt_split: {} }')).toEqual({
      field: 'spec.prompt_split',
      reason: 'spec.round_prompts is given too: they are alternatives (oneof prompts), give one',
    });
    expect(invalid('o2.yaml', 'spec: { seed_pairs: { uri: a }, seedPairs: { uri: b } }')).toEqual({ field: 'spec.seed_pairs', reason: 'given twice (as seed_pairs and seedPairs)' });
  });

  it('a file that cannot be read or parsed is a RunFileError', () => {
    expect(() => loadRunFile(path.join(dir, 'missing.yaml'), {})).toThrow(new RunFileError('no such file'));
    expect(() => load('syntax.yaml', 'spec:\n  loss: { beta: 0.1\n')).toThrow(/not valid YAML: .*line 3/s);
    expect(() => load('dup.yaml', 'spec: {}\nspec: {}\n')).toThrow(/not valid YAML: Map keys must be unique/);
    expect(() => load('syntax.json', '{"spec": ')).toThrow(/not valid JSON/);
    expect(() => load('empty.yaml', '# nothing\n')).toThrow(new RunFileError('is empty'));
    expect(() => load('list.yaml', '- a\n')).toThrow(/must be a mapping/);
  });
});
