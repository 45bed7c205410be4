// Test fixtures: a temporary workspace with the inputs a RunSpec names (a base model's directories, seed pairs,
// prompt sets, held-out prompts) and a valid spec over them that tests then break one field at a time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Configuration, JudgeMethod, RunSpec } from '@alignment/contracts';

/** What RunSpec.fromPartial accepts. */
export type SpecPartial = Parameters<typeof RunSpec.fromPartial>[0];

export interface Workspace {
  root: string;
  hfCheckpoint: string;
  onnx: string;
  seedPairs: string;
  roundPrompts: string[];
  /** One file for prompt_split: 10 seed-set prompts first, then `poolSize` fresh ones. */
  promptPool: string;
  evalPrompts: string;
  cleanup(): void;
}

export interface WorkspaceOptions {
  seedPairs?: number;
  rounds?: number;
  promptsPerRound?: number;
  evalPrompts?: number;
  poolSize?: number;
}

const CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

const jsonl = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join('\n') + '\n';

export function makeWorkspace(options: WorkspaceOptions = {}): Workspace {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'coordinator-'));
  const hfCheckpoint = path.join(root, 'base', 'checkpoint');
  const onnx = path.join(root, 'base', 'onnx');
  fs.mkdirSync(hfCheckpoint, { recursive: true });
  fs.mkdirSync(onnx, { recursive: true });
  fs.writeFileSync(path.join(hfCheckpoint, 'config.json'), '{"model_type":"llama"}');
  fs.writeFileSync(path.join(hfCheckpoint, 'model.safetensors'), 'base weights');
  fs.writeFileSync(path.join(onnx, 'model.onnx'), 'base onnx');
  // A chat template in both, as the trainer's exports have: conversational prompts and PROMPT_ENCODING_CHAT_TEMPLATE
  // need one (spec/prompt-encoding.ts).
  for (const dir of [hfCheckpoint, onnx]) fs.writeFileSync(path.join(dir, 'chat_template.jinja'), CHAT_TEMPLATE);

  const numSeed = options.seedPairs ?? 20;
  const seedPairs = path.join(root, 'seed_pairs.jsonl');
  fs.writeFileSync(
    seedPairs,
    jsonl(Array.from({ length: numSeed }, (_, i) => ({ prompt: `seed prompt ${i}`, chosen: `good answer ${i}`, rejected: `bad answer ${i}` }))),
  );
  const roundPrompts = Array.from({ length: options.rounds ?? 2 }, (_, t) => {
    const file = path.join(root, `round-${t + 1}.jsonl`);
    fs.writeFileSync(file, jsonl(Array.from({ length: options.promptsPerRound ?? 6 }, (_, i) => ({ prompt: `round ${t + 1} prompt ${i}` }))));
    return file;
  });
  const promptPool = path.join(root, 'pool.jsonl');
  fs.writeFileSync(
    promptPool,
    jsonl([
      ...Array.from({ length: 10 }, (_, i) => ({ prompt: `seed prompt ${i}` })),
      ...Array.from({ length: options.poolSize ?? 90 }, (_, i) => ({ prompt: `pool prompt ${i}` })),
    ]),
  );
  const evalPrompts = path.join(root, 'eval.jsonl');
  fs.writeFileSync(evalPrompts, jsonl(Array.from({ length: options.evalPrompts ?? 5 }, (_, i) => ({ prompt: `held-out prompt ${i}` }))));
  return {
    root,
    hfCheckpoint,
    onnx,
    seedPairs,
    roundPrompts,
    promptPool,
    evalPrompts,
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** A valid `spa` spec over the workspace (2 rounds unless the workspace has another count), as a client sends it. */
export function validSpec(ws: Workspace, overrides: SpecPartial = {}): RunSpec {
  const base: SpecPartial = {
    name: 'test run',
    baseModel: { hfCheckpoint: { uri: ws.hfCheckpoint }, onnx: { uri: ws.onnx } },
    seedPairs: { uri: ws.seedPairs },
    prompts: { $case: 'roundPrompts', value: { rounds: ws.roundPrompts.map((uri) => ({ uri })) } },
    rounds: ws.roundPrompts.length,
    generation: { n: 2, temperature: 0.7, maxNewTokens: 32 },
    configuration: Configuration.CONFIGURATION_SPA,
    seedTraining: { learningRate: 1e-5, batchSize: 4, epochs: 1 },
    roundTraining: { learningRate: 1e-5, batchSize: 4, epochs: 1 },
    evaluation: { prompts: { uri: ws.evalPrompts }, evaluator: JudgeMethod.JUDGE_METHOD_RULE, rule: 'toy/gold', samplesPerPrompt: 2 },
    seed: 7,
  };
  return RunSpec.fromPartial({ ...base, ...overrides });
}
