import * as fs from 'node:fs';
import * as path from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { Writer } from 'protobufjs/minimal';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { ARGMAX_GATE, INV_TEMPERATURE, LOGIT_POSITIONS, NEXT_PROBS, TARGET_IDS, TARGET_LOGPROBS, augmentCausalLmGraph } from './onnx-graph';

let models: TinyModels;
beforeAll(async () => {
  models = await tinyModels();
}, TINY_MODELS_TIMEOUT_MS);

/** The model plus `Identity(logits) -> logits_copy` as a graph output: logits that do not come from a MatMul. */
function withIdentityHead(model: Uint8Array): Uint8Array {
  const w = Writer.create();
  w.uint32((7 << 3) | 2).fork(); // graph
  w.uint32((1 << 3) | 2).fork(); // node
  w.uint32((1 << 3) | 2).string('logits').uint32((2 << 3) | 2).string('logits_copy').uint32((4 << 3) | 2).string('Identity');
  w.ldelim();
  w.uint32((12 << 3) | 2).fork(); // output
  w.uint32((1 << 3) | 2).string('logits_copy').uint32((2 << 3) | 2).fork().uint32((1 << 3) | 2).fork().uint32(1 << 3).int32(1).ldelim().ldelim();
  w.ldelim();
  w.ldelim();
  const patch = w.finish();
  const out = new Uint8Array(model.length + patch.length);
  out.set(model);
  out.set(patch, model.length);
  return out;
}

async function run(session: InferenceSession, ids: number[], mode: 'score' | 'sample') {
  const t = ids.length;
  const long = (values: number[]) => BigInt64Array.from(values.map(BigInt));
  const feeds: Record<string, Tensor> = {
    input_ids: new Tensor('int64', long(ids), [1, t]),
    attention_mask: new Tensor('int64', long(ids.map(() => 1)), [1, t]),
    position_ids: new Tensor('int64', long(ids.map((_, i) => i)), [1, t]),
    [LOGIT_POSITIONS]: new Tensor('int64', new BigInt64Array(mode === 'score' ? t : 1), [mode === 'score' ? t : 1]),
    [TARGET_IDS]: mode === 'score' ? new Tensor('int64', long([...ids.slice(1), 0]), [1, t]) : new Tensor('int64', new BigInt64Array(0), [1, 0]),
    [INV_TEMPERATURE]: new Tensor('float32', mode === 'sample' ? Float32Array.of(1 / 0.7) : new Float32Array(0), [mode === 'sample' ? 1 : 0]),
    [ARGMAX_GATE]: new Tensor('int64', new BigInt64Array(0), [0]),
  };
  for (const name of session.inputNames.filter((n) => n.startsWith('past_key_values.'))) feeds[name] = new Tensor('float32', new Float32Array(0), [1, 2, 0, 8]);
  return session.run(feeds);
}

describe('augmentCausalLmGraph', () => {
  it('computes the same log-probs and sampling distribution whether the LM head is rewired or its logits sliced', async () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(models.policy, 'model.onnx')));
    const rewired = await InferenceSession.create(augmentCausalLmGraph(bytes));
    const sliced = await InferenceSession.create(augmentCausalLmGraph(withIdentityHead(bytes), 'logits_copy'));
    const ids = [...models.values.scores.policy[0].prompt_ids, ...models.values.scores.policy[0].response_ids];
    const [a, b] = await Promise.all([run(rewired, ids, 'score'), run(sliced, ids, 'score')]);
    const x = a[TARGET_LOGPROBS].data as Float32Array;
    const y = b[TARGET_LOGPROBS].data as Float32Array;
    expect(x).toHaveLength(ids.length);
    x.forEach((v, i) => expect(v).toBeCloseTo(y[i], 5));
    // The rewired head computes logits for the positions asked for only.
    const sampled = await run(rewired, ids, 'sample');
    expect(sampled.logits.dims).toEqual([1, 1, 320]);
    expect(sampled[NEXT_PROBS].dims).toEqual([1, 1, 320]);
    const reference = await run(sliced, ids, 'sample');
    const p = sampled[NEXT_PROBS].data as Float32Array;
    const q = reference[NEXT_PROBS].data as Float32Array;
    p.forEach((v, i) => expect(v).toBeCloseTo(q[i], 6));
    expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    await rewired.release();
    await sliced.release();
  });
});
