import {
  generate,
  generateWith,
  requestSeed,
  scoreWith,
  type CausalModel,
  type GeneratedSample,
  type LanguageModel,
  type OpenAiLanguageModel,
  type SamplingParams,
} from '@alignment/lm';

// The comparison behind `nx run generator:openai-check` and openai-parity.spec.ts: the same prompts sampled and
// scored through the embedded ONNX backend and through an OpenAI-compatible server (the OpenAI backend of libs/lm),
// token for token and log-prob for log-prob.

export interface ParityReport {
  /** Samples compared (prompts × n, greedy and seeded). */
  samples: number;
  /** Samples whose token ids, text or finish reason differ between the backends, described. */
  mismatches: string[];
  /** Sequences scored on each backend. */
  scored: number;
  /** Largest |logp_onnx − logp_openai| over the scored sequences and over their tokens, in nats. */
  maxLogpDiff: number;
}

const key = (s: GeneratedSample) => JSON.stringify([s.tokenIds, s.text, s.finishReason]);

async function collect(run: AsyncGenerator<{ index: number; samples: GeneratedSample[] }[]>): Promise<Map<number, GeneratedSample[]>> {
  const out = new Map<number, GeneratedSample[]>();
  for await (const batch of run) for (const r of batch) out.set(r.index, r.samples);
  return out;
}

/**
 * Samples `prompts` on both backends with `params` (greedy, then seeded), where the ONNX side samples each prompt as
 * the /v1 endpoint does for the OpenAI backend's one-prompt request (requestSeed), then scores every sample as a
 * response under both and compares.
 */
export async function compareBackends(onnx: LanguageModel, remote: OpenAiLanguageModel, prompts: readonly string[], params: SamplingParams): Promise<ParityReport> {
  const items = prompts.map((p, index) => ({ index, promptIds: onnx.tokenizer.encodePrompt(p, { strings: 'chat-template' }) }));
  const mismatches: string[] = [];
  const scoreItems: { promptIds: number[]; responseIds: number[] }[] = [];
  let samples = 0;
  for (const run of [{ ...params, greedy: true, n: 1 }, params]) {
    const viaServer = await collect(generateWith(remote, items, run));
    for (const item of items) {
      const direct = (await collect(generate(onnx, [{ index: 0, promptIds: item.promptIds }], { ...run, seed: BigInt(requestSeed(run.seed, item.index)) }))).get(0)!;
      const served = viaServer.get(item.index) ?? [];
      direct.forEach((sample, j) => {
        samples += 1;
        if (served[j] === undefined || key(served[j]) !== key(sample)) {
          mismatches.push(`prompt ${item.index} sample ${j}${run.greedy ? ' (greedy)' : ''}: onnx ${key(sample)} vs openai ${served[j] ? key(served[j]) : 'missing'}`);
        }
        scoreItems.push({ promptIds: item.promptIds, responseIds: onnx.tokenizer.encodeResponse(sample.text, { finished: sample.finishReason === 'stop' }) });
      });
    }
  }
  const scorable = scoreItems.filter((item) => item.responseIds.length > 0 && item.promptIds.length + item.responseIds.length <= onnx.maxPositions);
  const a = await scoreWith(onnx as CausalModel, scorable);
  const b = await scoreWith(remote, scorable);
  let maxLogpDiff = 0;
  a.forEach((s, i) => {
    maxLogpDiff = Math.max(maxLogpDiff, Math.abs(s.logp - b[i].logp), ...s.tokenLogps.map((v, t) => Math.abs(v - b[i].tokenLogps[t])));
  });
  return { samples, mismatches, scored: scorable.length, maxLogpDiff };
}
