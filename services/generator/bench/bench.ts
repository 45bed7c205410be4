// generator benchmark: tokens/s of the generator's sampling loop (libs/lm on onnxruntime-node) against Hugging Face
// `generate` (PyTorch) on the same model (random Llama, 32K vocabulary, exported by the trainer's code), the same
// prompts, batch (8 prompts × 2 samples), sampling parameters (temperature 0.7, top_p 1) and machine, in one run.
// The two alternate, REPS times each, and medians are compared. Last line: one JSON object.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { LanguageModel, PAPER_SAMPLING, generate } from '@alignment/lm';
import { benchModel, venvPython } from '../../../tools/testing/tiny-models';

const SPEC = { vocab: 32_000, hidden: 256, layers: 4, maxPositions: 4096 };
const PROMPTS = 8;
const N = 2;
const MAX_NEW_TOKENS = 64;
const REPS = 3;

const prompts = Array.from({ length: PROMPTS }, (_, i) => `Prompt ${i}: what colour is the sky, and why? `.repeat(1 + (i % 3)));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function python(args: string[]): Promise<{ tokens: number; seconds: number; tokens_per_second: number }> {
  return venvPython().then(
    (py) =>
      new Promise((resolve, reject) =>
        execFile(py, args, { maxBuffer: 1 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
          if (error) reject(new Error(`${error.message}\n${stderr}`));
          else resolve(JSON.parse(stdout.trim().split('\n').pop()!));
        }),
      ),
  );
}

// Both sides use BENCH_THREADS threads (onnxruntime intra-op, torch.set_num_threads); default: one per core.
const THREADS = Number(process.env.BENCH_THREADS) || os.cpus().length;
process.env.BENCH_THREADS = String(THREADS);
process.env.LM_THREADS = String(THREADS);

async function main(): Promise<void> {
  const model = await benchModel(SPEC);
  const lm = await LanguageModel.load(model.onnx);
  const items = prompts.map((p, index) => ({ index, promptIds: lm.tokenizer.encodePrompt(p, { strings: 'chat-template' }) }));
  const params = { ...PAPER_SAMPLING, n: N, maxNewTokens: MAX_NEW_TOKENS };
  const runOnce = async (seed: bigint, maxNewTokens = MAX_NEW_TOKENS) => {
    const started = process.hrtime.bigint();
    let tokens = 0;
    for await (const batch of generate(lm, items, { ...params, seed, maxNewTokens }, { maxBatchRows: PROMPTS * N })) {
      for (const result of batch) for (const sample of result.samples) tokens += sample.tokenIds.length;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { tokens, seconds, tokensPerSecond: tokens / seconds };
  };
  await runOnce(0n, 4); // warm-up: first-call allocations
  const ours: number[] = [];
  const theirs: number[] = [];
  const script = path.join(__dirname, 'hf_generate.py');
  for (let r = 0; r < REPS; r++) {
    const o = await runOnce(BigInt(r + 1));
    ours.push(o.tokensPerSecond);
    const t = await python([script, model.checkpoint, JSON.stringify(prompts), String(N), String(MAX_NEW_TOKENS)]);
    theirs.push(t.tokens_per_second);
    console.log(`rep ${r + 1}: generator ${o.tokensPerSecond.toFixed(0)} tok/s (${o.tokens} tokens in ${o.seconds.toFixed(2)} s); transformers generate ${t.tokens_per_second.toFixed(0)} tok/s (${t.tokens} tokens in ${t.seconds.toFixed(2)} s)`);
  }
  await lm.release();
  const value = median(ours);
  const baseline = median(theirs);
  console.log(
    JSON.stringify({
      bench: 'generator',
      metric: 'tokens_per_second',
      value,
      baseline,
      baseline_name: 'transformers generate (PyTorch CPU), same model, batch, sampling and machine',
      ratio: value / baseline,
      setup: { ...SPEC, prompts: PROMPTS, n: N, max_new_tokens: MAX_NEW_TOKENS, temperature: params.temperature, top_p: params.topP, reps: REPS, threads: THREADS, load_average: os.loadavg().map((l) => Number(l.toFixed(2))) },
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
