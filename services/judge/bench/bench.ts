// judge benchmark: sequences/s of the judge's scorer (libs/lm on onnxruntime-node) against the trainer's PyTorch
// scoring (one forward pass + chunked log-softmax per batch) on the same model (random Llama, 32K vocabulary,
// exported by the trainer's code), items, batch size (16) and machine, alternating REPS times; medians compared.
// Then the peak resident memory of scoring as sequences grow (256 … 2048 tokens, 4 per batch), each length in its
// own process, for the judge and for PyTorch. Last line: one JSON object.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { LanguageModel, scoreSequences } from '@alignment/lm';
import { benchModel, venvPython } from '../../../tools/testing/tiny-models';

const SPEC = { vocab: 32_000, hidden: 256, layers: 4, maxPositions: 4096 };
const SEQUENCES = 64;
const BATCH = 16;
const REPS = 3;
const MEMORY_LENGTHS = [256, 512, 1024, 2048];
const MEMORY_BATCH = 4;

const root = path.resolve(__dirname, '../../..');
const words = 'the sky is blue and the grass is green two plus two is four a preference pair has a prompt'.split(' ');
// Responses of 40 to 160 words, like judged samples; prompts of a few words.
const items: [string, string][] = Array.from({ length: SEQUENCES }, (_, i) => [
  `Question ${i}: ${words.slice(0, 4 + (i % 8)).join(' ')}?`,
  Array.from({ length: 40 + ((i * 37) % 120) }, (_, k) => words[(i + k * 7) % words.length]).join(' '),
]);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function run<T>(command: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { cwd: root, maxBuffer: 1 << 20, timeout: 600_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as T);
    }),
  );
}

// Both sides use BENCH_THREADS threads (onnxruntime intra-op, torch.set_num_threads); default: one per core.
const THREADS = Number(process.env.BENCH_THREADS) || os.cpus().length;
process.env.BENCH_THREADS = String(THREADS);
process.env.LM_THREADS = String(THREADS);

async function main(): Promise<void> {
  const model = await benchModel(SPEC);
  const py = await venvPython();
  const lm = await LanguageModel.load(model.onnx);
  const scoreItems = items.map(([p, r]) => ({ promptIds: lm.tokenizer.encodePrompt(p, { strings: 'chat-template' }), responseIds: lm.tokenizer.encodeResponse(r) }));
  const tokens = scoreItems.reduce((s, i) => s + i.promptIds.length + i.responseIds.length, 0);
  await scoreSequences(lm, scoreItems.slice(0, BATCH), { maxBatchRows: BATCH });
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const started = process.hrtime.bigint();
    await scoreSequences(lm, scoreItems, { maxBatchRows: BATCH });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    ours.push(SEQUENCES / seconds);
    const t = await run<{ sequences_per_second: number; seconds: number }>(py, [path.join(__dirname, 'torch_score.py'), model.checkpoint, JSON.stringify(items), String(BATCH)]);
    theirs.push(t.sequences_per_second);
    console.log(`rep ${r + 1}: judge ${(SEQUENCES / seconds).toFixed(1)} seq/s (${seconds.toFixed(2)} s); PyTorch ${t.sequences_per_second.toFixed(1)} seq/s (${t.seconds.toFixed(2)} s); ${SEQUENCES} sequences, ${tokens} tokens`);
  }
  await lm.release();

  const memory: Record<string, { judge_peak_rss_mb: number; pytorch_peak_rss_mb: number; full_logits_mb: number }> = {};
  for (const length of MEMORY_LENGTHS) {
    const ts = await run<{ peak_rss_mb: number }>(path.join(root, 'node_modules/.bin/tsx'), [path.join(__dirname, 'peak-memory.ts'), model.onnx, String(length), String(MEMORY_BATCH)]);
    const torch = await run<{ peak_rss_mb: number }>(py, [path.join(__dirname, 'torch_score.py'), '--peak-memory', model.checkpoint, String(length), String(MEMORY_BATCH)]);
    const full = (MEMORY_BATCH * length * SPEC.vocab * 4) / 2 ** 20;
    memory[String(length)] = { judge_peak_rss_mb: Math.round(ts.peak_rss_mb), pytorch_peak_rss_mb: Math.round(torch.peak_rss_mb), full_logits_mb: Math.round(full) };
    console.log(`peak RSS, ${MEMORY_BATCH} sequences of ${length} tokens, vocab ${SPEC.vocab}: judge ${ts.peak_rss_mb.toFixed(0)} MB, PyTorch ${torch.peak_rss_mb.toFixed(0)} MB (full [B, T, V] float32 logits alone: ${full.toFixed(0)} MB)`);
  }

  const value = median(ours);
  const baseline = median(theirs);
  console.log(
    JSON.stringify({
      bench: 'judge',
      metric: 'sequences_per_second',
      value,
      baseline,
      baseline_name: "PyTorch CPU forward + the trainer's sequence_logps, same model, items, batch and machine",
      ratio: value / baseline,
      peak_rss_mb_by_length: memory,
      setup: { ...SPEC, sequences: SEQUENCES, tokens, batch: BATCH, reps: REPS, threads: THREADS, load_average: os.loadavg().map((l) => Number(l.toFixed(2))), memory_batch: MEMORY_BATCH },
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
