// The tiny models (and PyTorch's reference values for them) that the LM runtime, generator and judge tests use,
// built once by tools/testing/make_tiny_model.py with the trainer's own export code and cached by content hash.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');

// Everything the models and reference values depend on: change any of these and a fresh set is built.
const INPUTS = [
  'tools/testing/make_tiny_model.py',
  'services/trainer/tests/tiny.py',
  'services/trainer/src/alignment_trainer/public.py',
  'services/trainer/src/alignment_trainer/training/export.py',
  'services/trainer/src/alignment_trainer/training/logprobs.py',
  'services/trainer/requirements.txt',
  'services/trainer/requirements-train.txt',
];

export interface ChatReference {
  messages: { role: string; content: string }[];
  text: string;
  ids: number[];
  ids_direct: number[];
}

export interface TemplateReference {
  name: string;
  template: string;
  messages: { role: string; content: string }[];
  add_generation_prompt: boolean;
  text?: string;
  error?: string;
}

export interface ScoreReference {
  prompt: string;
  response: string;
  prompt_ids: number[];
  response_ids: number[];
  logp: number;
  token_logps: number[];
}

/** reference.json of make_tiny_model.py: what PyTorch / transformers compute for the tiny models. */
export interface ReferenceValues {
  eos_token_id: number;
  pad_token_id: number;
  vocab_size: number;
  max_position_embeddings: number;
  special_tokens: Record<string, string>;
  template_special_tokens: Record<string, string>;
  chat: ChatReference[];
  templates: TemplateReference[];
  encode: { text: string; ids: number[] }[];
  scores: { policy: ScoreReference[]; reference: ScoreReference[] };
  /** The first score items as responses cut at max_new_tokens: tokenised and scored without EOS. */
  scores_unfinished: { policy: ScoreReference[] };
  /** The first score items with their prompts encoded as raw text (the trainer's tokenize_pair, strings="raw-text"). */
  scores_raw: { policy: ScoreReference[] };
  greedy: { prompt: string; ids: number[]; max_new_tokens: number }[];
  rewards: { prompt: string; response: string; ids: number[]; score: number }[];
}

export interface TinyModels {
  root: string;
  /** ONNX export directories. */
  policy: string;
  reference: string;
  reward: string;
  policyCheckpoint: string;
  values: ReferenceValues;
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: root, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** The trainer's virtualenv: $ALIGNMENT_VENV (set by tools/ci/test.sh), else tools/python/venv.sh's answer. */
export async function venvPython(): Promise<string> {
  const venv = process.env.ALIGNMENT_VENV || (await run('bash', ['tools/python/venv.sh'], 30 * 60_000)).trim();
  return path.join(venv, 'bin', 'python');
}

function cacheDirectory(): string {
  const hash = createHash('sha256');
  for (const input of INPUTS) hash.update(input).update('\0').update(fs.readFileSync(path.join(root, input))).update('\0');
  const base = process.env.ALIGNMENT_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'alignment', 'test-models');
  return path.join(base, `tiny-${hash.digest('hex').slice(0, 16)}`);
}

let pending: Promise<TinyModels> | undefined;

/** Builds the tiny models on first use (about 30 s on two cores), then reads them from the cache. */
export function tinyModels(): Promise<TinyModels> {
  pending ??= (async () => {
    const dir = cacheDirectory();
    if (!fs.existsSync(path.join(dir, 'reference.json'))) {
      await run(await venvPython(), ['tools/testing/make_tiny_model.py', dir], 10 * 60_000);
    }
    return {
      root: dir,
      policy: path.join(dir, 'policy', 'onnx'),
      reference: path.join(dir, 'reference', 'onnx'),
      reward: path.join(dir, 'reward', 'onnx'),
      policyCheckpoint: path.join(dir, 'policy', 'checkpoint'),
      values: JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as ReferenceValues,
    };
  })();
  return pending;
}

/** Jest timeout for a beforeAll that calls tinyModels() on a cold cache. */
export const TINY_MODELS_TIMEOUT_MS = 300_000;

export interface BenchModelSpec {
  vocab: number;
  hidden: number;
  layers: number;
  maxPositions: number;
}

export interface BenchModel {
  /** ONNX export directory. */
  onnx: string;
  /** Hugging Face checkpoint directory (the PyTorch baselines load it). */
  checkpoint: string;
}

/** A random Llama of the given size exported like the tiny test models, cached by content hash and size. */
export async function benchModel(spec: BenchModelSpec): Promise<BenchModel> {
  const base = path.dirname(cacheDirectory());
  const key = path.basename(cacheDirectory()).replace(/^tiny-/, '');
  const dir = path.join(base, `bench-${key}-v${spec.vocab}-h${spec.hidden}-l${spec.layers}-p${spec.maxPositions}`);
  if (!fs.existsSync(path.join(dir, 'onnx', 'manifest.json'))) {
    const args = ['--causal-lm', dir, '--vocab', String(spec.vocab), '--hidden', String(spec.hidden), '--layers', String(spec.layers)];
    await run(await venvPython(), ['tools/testing/make_tiny_model.py', ...args, '--max-positions', String(spec.maxPositions)], 10 * 60_000);
  }
  return { onnx: path.join(dir, 'onnx'), checkpoint: path.join(dir, 'checkpoint') };
}
