import { Reader, Writer } from 'protobufjs/minimal';

/**
 * Extra outputs appended to a causal LM's ONNX graph so that onnxruntime, not JavaScript, reduces the
 * [batch, time, vocab] logits to what the runtime needs:
 *
 * - `TARGET_LOGPROBS` [batch, S] float32: log softmax(logits[b, t])[target_ids[b, t]] for the last S positions,
 *   S being the width of the `TARGET_IDS` input (scoring). Only B·S floats cross into JavaScript, and the log-softmax
 *   runs in onnxruntime's vectorised kernels (a JS loop costs about 0.5 ms per position for a 32K vocabulary).
 * - `NEXT_PROBS` [batch, K, vocab] float32: softmax(logits[b, last] · inv_temperature) (sampling), K being the length
 *   of the `INV_TEMPERATURE` input (1 to compute it, 0 to skip it).
 * - `NEXT_ARGMAX` [batch, G] int64: argmax of logits[b, last] (greedy decoding; on the logits, not on rounded
 *   probabilities, so ties break as in PyTorch), G being the length of the `ARGMAX_GATE` input (1 or 0).
 *
 * onnxruntime runs every node of a graph whatever the caller fetches, so each branch works on a slice of the last
 * S, K or G positions, sized by its control input: a branch a call does not need works on an empty tensor and costs
 * nothing (a decoding step scores nothing; a scoring pass samples nothing).
 *
 * The logits themselves are computed for the last L positions only, L being the length of the `LOGIT_POSITIONS`
 * input: the LM head's MatMul is rewired to read a slice of the hidden states (transformers' `logits_to_keep`).
 * Prefilling a prompt then costs no [positions, vocab] matrix product at all (L = 0 for all but the last chunk,
 * L = 1 for it), which for a 32K vocabulary is most of a small model's prefill. The graph's `logits` output has
 * those L positions. A graph whose logits do not come from a MatMul keeps its head and has its logits sliced.
 *
 * How: protobuf merges a message that appears twice, and appends to repeated fields. So the serialized model
 * followed by a serialized ModelProto holding only `graph { node… input… output… initializer… }` parses as the
 * original graph plus these nodes. Rewiring the head re-encodes that one node and the length prefixes around it;
 * every other byte, weights included, is copied as is. No ONNX library is needed.
 */
export const LOGIT_POSITIONS = 'lm_rt.logit_positions';
export const TARGET_IDS = 'lm_rt.target_ids';
export const INV_TEMPERATURE = 'lm_rt.inv_temperature';
export const ARGMAX_GATE = 'lm_rt.argmax_gate';
export const TARGET_LOGPROBS = 'lm_rt.target_logprobs';
export const NEXT_PROBS = 'lm_rt.next_probs';
export const NEXT_ARGMAX = 'lm_rt.next_argmax';

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const FLOAT = 1;
const INT64 = 7;
// AttributeProto.AttributeType
const ATTR_INT = 2;
const ATTR_INTS = 7;

const tag = (field: number, wire: number) => (field << 3) | wire;

type Attribute = { name: string; int?: number; ints?: number[] };
interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Attribute[];
}

function writeAttribute(w: Writer, a: Attribute): void {
  w.uint32(tag(1, WIRE_BYTES)).string(a.name);
  if (a.int !== undefined) {
    w.uint32(tag(3, WIRE_VARINT)).int64(a.int);
    w.uint32(tag(20, WIRE_VARINT)).int32(ATTR_INT);
  } else {
    for (const v of a.ints ?? []) w.uint32(tag(8, WIRE_VARINT)).int64(v);
    w.uint32(tag(20, WIRE_VARINT)).int32(ATTR_INTS);
  }
}

function writeNode(w: Writer, n: NodeSpec, index: number): void {
  for (const i of n.inputs) w.uint32(tag(1, WIRE_BYTES)).string(i);
  for (const o of n.outputs) w.uint32(tag(2, WIRE_BYTES)).string(o);
  w.uint32(tag(3, WIRE_BYTES)).string(`lm_rt/${n.op}_${index}`);
  w.uint32(tag(4, WIRE_BYTES)).string(n.op);
  for (const a of n.attributes ?? []) {
    w.uint32(tag(5, WIRE_BYTES)).fork();
    writeAttribute(w, a);
    w.ldelim();
  }
}

/**
 * ValueInfoProto of a tensor; a string dim is symbolic (dim_param), a number fixed (dim_value). Without dims the
 * shape is left out (any rank): outputs are declared so, and onnxruntime infers them from the graph.
 */
function writeValueInfo(w: Writer, name: string, elemType: number, dims?: (string | number)[]): void {
  w.uint32(tag(1, WIRE_BYTES)).string(name);
  w.uint32(tag(2, WIRE_BYTES)).fork(); // TypeProto
  w.uint32(tag(1, WIRE_BYTES)).fork(); // tensor_type
  w.uint32(tag(1, WIRE_VARINT)).int32(elemType);
  if (dims) {
    w.uint32(tag(2, WIRE_BYTES)).fork(); // shape
    for (const d of dims) {
      w.uint32(tag(1, WIRE_BYTES)).fork();
      if (typeof d === 'number') w.uint32(tag(1, WIRE_VARINT)).int64(d);
      else w.uint32(tag(2, WIRE_BYTES)).string(d);
      w.ldelim();
    }
    w.ldelim();
  }
  w.ldelim().ldelim();
}

/** An int64 initializer (TensorProto with int64_data). */
function writeInt64Initializer(w: Writer, name: string, dims: number[], values: number[]): void {
  for (const d of dims) w.uint32(tag(1, WIRE_VARINT)).int64(d);
  w.uint32(tag(2, WIRE_VARINT)).int32(INT64);
  w.uint32(tag(7, WIRE_BYTES)).fork();
  for (const v of values) w.int64(v);
  w.ldelim();
  w.uint32(tag(8, WIRE_BYTES)).string(name);
}

/** The default-domain ("" or "ai.onnx") opset version a serialized ModelProto imports. */
export function defaultOpsetVersion(model: Uint8Array): number {
  const reader = Reader.create(model);
  let version: number | undefined;
  while (reader.pos < reader.len) {
    const t = reader.uint32();
    if (t >>> 3 === 8 && (t & 7) === WIRE_BYTES) {
      const entry = Reader.create(reader.bytes());
      let domain = '';
      let v = 0;
      while (entry.pos < entry.len) {
        const et = entry.uint32();
        if (et >>> 3 === 1) domain = entry.string();
        else if (et >>> 3 === 2) v = Number(entry.int64());
        else entry.skipType(et & 7);
      }
      if (domain === '' || domain === 'ai.onnx') version = v;
    } else {
      reader.skipType(t & 7);
    }
  }
  if (version === undefined) throw new Error('the model imports no default-domain opset');
  return version;
}

interface RawField {
  field: number;
  /** Byte range of the whole field (tag included) and of its length-delimited value. */
  start: number;
  end: number;
  valueStart: number;
}

/** The top-level fields of a serialized message, as byte ranges (nothing is decoded or copied). */
function rawFields(message: Uint8Array): RawField[] {
  const reader = Reader.create(message);
  const out: RawField[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const t = reader.uint32();
    let valueStart = reader.pos;
    if ((t & 7) === WIRE_BYTES) {
      const length = reader.uint32();
      valueStart = reader.pos;
      reader.skip(length);
    } else {
      reader.skipType(t & 7);
    }
    out.push({ field: t >>> 3, start, end: reader.pos, valueStart });
  }
  return out;
}

const utf8 = new TextDecoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A length-delimited field as parts (tag and length, then the value's parts), so nothing large is copied. */
function bytesField(field: number, value: Uint8Array[]): Uint8Array[] {
  const length = value.reduce((n, p) => n + p.length, 0);
  return [Writer.create().uint32(tag(field, WIRE_BYTES)).uint32(length).finish(), ...value];
}

/**
 * The model with the node that produces `logits` reading `replacement` instead of its first input, when that node is
 * a MatMul (the LM head: hidden states × W). Returns the new model as parts to concatenate and the hidden-state input
 * the head used to read, or undefined when `logits` comes from another kind of node.
 */
function rewireLmHead(model: Uint8Array, logits: string, replacement: string): { parts: Uint8Array[]; hidden: string } | undefined {
  const top = rawFields(model);
  const graphField = top.find((f) => f.field === 7);
  if (!graphField) return undefined;
  const graph = model.subarray(graphField.valueStart, graphField.end);
  const graphFields = rawFields(graph);
  for (const nodeField of graphFields) {
    if (nodeField.field !== 1) continue;
    const node = graph.subarray(nodeField.valueStart, nodeField.end);
    const fields = rawFields(node);
    const text = (f: RawField) => utf8.decode(node.subarray(f.valueStart, f.end));
    if (!fields.some((f) => f.field === 2 && text(f) === logits)) continue;
    const opType = fields.find((f) => f.field === 4);
    const firstInput = fields.find((f) => f.field === 1);
    if (!opType || text(opType) !== 'MatMul' || !firstInput) return undefined;
    const newNode = fields.flatMap((f) => (f === firstInput ? bytesField(1, [new TextEncoder().encode(replacement)]) : [node.subarray(f.start, f.end)]));
    const newGraph = graphFields.flatMap((f) => (f === nodeField ? bytesField(1, newNode) : [graph.subarray(f.start, f.end)]));
    // Views into `model` but for a few small headers; the caller concatenates them once, with its patch.
    const parts = top.flatMap((f) => (f === graphField ? bytesField(7, newGraph) : [model.subarray(f.start, f.end)]));
    return { parts, hidden: text(firstInput) };
  }
  return undefined;
}

/**
 * The model's bytes with the runtime's outputs appended (see above). `logits` is the graph output holding float32
 * [batch, time, vocab] logits (the trainer exports float32; other types fail when the session is created).
 */
export function augmentCausalLmGraph(model: Uint8Array, logitsName = 'logits'): Uint8Array {
  const opset = defaultOpsetVersion(model);
  if (opset < 13) throw new Error(`opset ${opset} is too old: the runtime needs opset >= 13`);
  const axisLast = 'lm_rt.axis_last';
  const one = 'lm_rt.one';
  const end = 'lm_rt.end';
  const axisTime = 'lm_rt.axis_time';
  const unsqueezeOuter = 'lm_rt.axes_0_2';
  const nodes: NodeSpec[] = [
    { op: 'Shape', inputs: [LOGIT_POSITIONS], outputs: ['lm_rt.positions_shape'] },
    { op: 'Gather', inputs: ['lm_rt.positions_shape', 'lm_rt.zero'], outputs: ['lm_rt.positions'], attributes: [{ name: 'axis', int: 0 }] },
  ];
  /** x[:, T - L:] for the time axis of x, L = the length of LOGIT_POSITIONS. */
  const lastPositions = (x: string, out: string) =>
    nodes.push(
      { op: 'Shape', inputs: [x], outputs: [`${out}.shape`] },
      { op: 'Gather', inputs: [`${out}.shape`, one], outputs: [`${out}.time`], attributes: [{ name: 'axis', int: 0 }] },
      { op: 'Sub', inputs: [`${out}.time`, 'lm_rt.positions'], outputs: [`${out}.start`] },
      { op: 'Slice', inputs: [x, `${out}.start`, end, axisTime], outputs: [out] },
    );
  const rewired = rewireLmHead(model, logitsName, 'lm_rt.hidden_tail');
  let logits = logitsName;
  if (rewired) {
    lastPositions(rewired.hidden, 'lm_rt.hidden_tail');
  } else {
    lastPositions(logitsName, 'lm_rt.logits');
    logits = 'lm_rt.logits';
  }
  nodes.push(
    { op: 'Shape', inputs: [logits], outputs: ['lm_rt.logits_shape'] },
    { op: 'Gather', inputs: ['lm_rt.logits_shape', one], outputs: ['lm_rt.time'], attributes: [{ name: 'axis', int: 0 }] },
  );
  /** logits[:, T - n:, :], where n is dimension `dim` of `control`'s shape. */
  const tail = (control: string, dim: string, out: string) => {
    nodes.push(
      { op: 'Shape', inputs: [control], outputs: [`${out}.shape`] },
      { op: 'Gather', inputs: [`${out}.shape`, dim], outputs: [`${out}.n`], attributes: [{ name: 'axis', int: 0 }] },
      { op: 'Sub', inputs: ['lm_rt.time', `${out}.n`], outputs: [`${out}.start`] },
      { op: 'Slice', inputs: [logits, `${out}.start`, end, axisTime], outputs: [out] },
    );
  };
  tail(TARGET_IDS, one, 'lm_rt.score_logits');
  nodes.push(
    { op: 'LogSoftmax', inputs: ['lm_rt.score_logits'], outputs: ['lm_rt.log_softmax'], attributes: [{ name: 'axis', int: -1 }] },
    { op: 'Unsqueeze', inputs: [TARGET_IDS, axisLast], outputs: ['lm_rt.targets3'] },
    { op: 'GatherElements', inputs: ['lm_rt.log_softmax', 'lm_rt.targets3'], outputs: ['lm_rt.picked'], attributes: [{ name: 'axis', int: -1 }] },
    { op: 'Squeeze', inputs: ['lm_rt.picked', axisLast], outputs: [TARGET_LOGPROBS] },
  );
  tail(INV_TEMPERATURE, 'lm_rt.zero', 'lm_rt.sample_logits');
  nodes.push(
    { op: 'Unsqueeze', inputs: [INV_TEMPERATURE, unsqueezeOuter], outputs: ['lm_rt.inv_temperature3'] },
    { op: 'Mul', inputs: ['lm_rt.sample_logits', 'lm_rt.inv_temperature3'], outputs: ['lm_rt.scaled'] },
    { op: 'Softmax', inputs: ['lm_rt.scaled'], outputs: [NEXT_PROBS], attributes: [{ name: 'axis', int: -1 }] },
  );
  tail(ARGMAX_GATE, 'lm_rt.zero', 'lm_rt.argmax_logits');
  nodes.push({
    op: 'ArgMax',
    inputs: ['lm_rt.argmax_logits'],
    outputs: [NEXT_ARGMAX],
    attributes: [{ name: 'axis', int: -1 }, { name: 'keepdims', int: 0 }],
  });
  const initializers: [string, number[], number[]][] = [
    [axisLast, [1], [-1]],
    [axisTime, [1], [1]],
    [one, [1], [1]],
    ['lm_rt.zero', [1], [0]],
    [end, [1], [Number.MAX_SAFE_INTEGER]],
    [unsqueezeOuter, [2], [0, 2]],
  ];

  const w = Writer.create();
  w.uint32(tag(7, WIRE_BYTES)).fork(); // ModelProto.graph
  nodes.forEach((n, i) => {
    w.uint32(tag(1, WIRE_BYTES)).fork();
    writeNode(w, n, i);
    w.ldelim();
  });
  for (const [name, dims, values] of initializers) {
    w.uint32(tag(5, WIRE_BYTES)).fork();
    writeInt64Initializer(w, name, dims, values);
    w.ldelim();
  }
  for (const [name, type, dims] of [
    [LOGIT_POSITIONS, INT64, ['lm_rt_positions']],
    [TARGET_IDS, INT64, ['lm_rt_batch', 'lm_rt_scored']],
    [INV_TEMPERATURE, FLOAT, ['lm_rt_sampled']],
    [ARGMAX_GATE, INT64, ['lm_rt_argmax']],
  ] as const) {
    w.uint32(tag(11, WIRE_BYTES)).fork();
    writeValueInfo(w, name, type, [...dims]);
    w.ldelim();
  }
  // Shapes (see above): [batch, S], [batch, K, vocab], [batch, G].
  for (const [name, type] of [
    [TARGET_LOGPROBS, FLOAT],
    [NEXT_PROBS, FLOAT],
    [NEXT_ARGMAX, INT64],
  ] as const) {
    w.uint32(tag(12, WIRE_BYTES)).fork();
    writeValueInfo(w, name, type);
    w.ldelim();
  }
  w.ldelim();
  return concat([...(rewired ? rewired.parts : [model]), w.finish()]);
}
