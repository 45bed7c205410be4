// TEST DOUBLES. Deterministic stand-ins for what the generator, judge and trainer compute (those services are
// being built in parallel), shared by the in-process fake executors (in-memory-executors.ts) and the fake gRPC
// servers (grpc-service-doubles.ts). Their outputs depend only on the content of their inputs (sha256s, seeds,
// prompts), never on paths or timing, so two runs of the same spec produce byte-identical artifacts — which is what
// the resume tests check.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileUri, sha256File, toLocalPath, writeFileAtomic } from '@alignment/artifacts';
import {
  JudgeMethod,
  PreferenceLoss,
  type ArtifactRef,
  type GenerateRequest,
  type GenerateResult,
  type JobOutputs,
  type JobSpec,
  type JudgePairsRequest,
  type JudgePairsResult,
  type ModelRef,
} from '@alignment/contracts';
import { readObjects, writeJsonl, type JsonObject } from '../src/run/data';

const hex = (...parts: unknown[]) => createHash('sha256').update(parts.map(String).join('|')).digest('hex');

function modelIdentity(model: ModelRef | undefined): string {
  return model?.onnx?.sha256 || model?.onnx?.uri || 'no-model';
}

function inShard(i: number, shard: { index: number; count: number } | undefined): boolean {
  return !shard || shard.count <= 1 || i % shard.count === shard.index;
}

/** Prompts of a GenerateRequest, with their global indices: text, or a conversation as the prompt set gave it. */
async function promptsOf(request: GenerateRequest): Promise<unknown[]> {
  if (request.prompts?.$case === 'inlinePrompts') return request.prompts.value.prompts;
  if (request.prompts?.$case === 'promptSet') return (await readObjects(toLocalPath(request.prompts.value.uri))).map((l) => l.value.prompt);
  throw new Error('no prompts');
}

/** A prompt as the pseudo-models read it: its text, or a conversation as JSON. */
const promptString = (prompt: unknown): string => (typeof prompt === 'string' ? prompt : JSON.stringify(prompt));

/** A response as a pseudo-model would sample it: a function of (model, seed, prompt, sample), of varying length. */
export function fakeResponse(model: string, seed: number, prompt: string, sample: number): string {
  const h = hex('response', model, seed, prompt, sample);
  return `${prompt.slice(0, 12)} :: ${h.slice(0, 6 + (parseInt(h.slice(-2), 16) % 24))}`;
}

export interface GenerateOptions {
  /** Called before each prompt; a rejection stops the call (cancellation). */
  beforePrompt?: (done: number, total: number) => Promise<void>;
}

/** The generator's Generate: n responses per prompt of the shard, one line per prompt, written atomically. */
export async function fakeGenerate(request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
  const prompts = await promptsOf(request);
  const model = modelIdentity(request.model);
  const n = request.params?.n || 2;
  const seed = request.params?.seed ?? 0;
  const indices = prompts.map((_, i) => i).filter((i) => inShard(i, request.shard));
  const lines: JsonObject[] = [];
  for (const [done, i] of indices.entries()) {
    await options.beforePrompt?.(done, indices.length);
    const responses = Array.from({ length: n }, (_, j) => fakeResponse(model, seed, promptString(prompts[i]), j));
    lines.push({ prompt_index: i, prompt: prompts[i], responses, finish_reasons: responses.map(() => 'stop') });
  }
  const destination = toLocalPath(request.outputUri);
  const info = await writeJsonl(destination, lines);
  return {
    responses: { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes },
    numPrompts: lines.length,
    numResponses: lines.length * n,
    numGeneratedTokens: lines.reduce((s, l) => s + (l.responses as string[]).join(' ').split(' ').length, 0),
    tokensPerSecond: 1000,
  };
}

/** A score as a pseudo-judge computes it; RULE is a "gold" rule (more 'a'…'f' hex digits is better). */
export function fakeScore(method: JudgeMethod, model: string, prompt: string, response: string): number {
  if (method === JudgeMethod.JUDGE_METHOD_RULE) return (response.match(/[a-f]/g) ?? []).length;
  return parseInt(hex('score', model, prompt, response).slice(0, 8), 16) / 0xffffffff - 0.5;
}

export interface JudgeOptions {
  beforeItem?: (done: number, total: number) => Promise<void>;
}

/**
 * The judge's JudgePairs over the first two responses of each item of the shard (request.pairing is not modelled:
 * the judge's own tests cover best-vs-worst); drops identical pairs and ties (equal scores, or |scale·(s1 − s2)|
 * below the method's tie tolerance, scale = β for SPA_IMPLICIT, as the judge).
 */
export async function fakeJudgePairs(request: JudgePairsRequest, options: JudgeOptions = {}): Promise<JudgePairsResult> {
  const items = (await readObjects(toLocalPath(request.responses!.uri))).map((l) => l.value);
  const model =
    request.method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT
      ? modelIdentity(request.spaImplicit?.policy)
      : request.method === JudgeMethod.JUDGE_METHOD_RULE
        ? request.rule?.rule ?? ''
        : modelIdentity(request.rewardModel?.rewardModel ?? request.llmAsJudge?.judgeModel);
  const indices = items.map((_, i) => i).filter((i) => inShard(i, request.shard));
  const scale = request.method === JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT ? request.spaImplicit?.beta ?? 0.1 : 1;
  const tolerance = request.spaImplicit?.tieTolerance ?? request.rewardModel?.tieTolerance ?? request.llmAsJudge?.tieTolerance ?? request.rule?.tieTolerance ?? 0;
  const pairs: JsonObject[] = [];
  let droppedIdentical = 0;
  let droppedTies = 0;
  for (const [done, i] of indices.entries()) {
    await options.beforeItem?.(done, indices.length);
    const item = items[i];
    const [a, b] = item.responses as string[];
    const prompt = item.prompt;
    if (a === b) {
      droppedIdentical += 1;
      continue;
    }
    const [sa, sb] = [fakeScore(request.method, model, promptString(prompt), a), fakeScore(request.method, model, promptString(prompt), b)];
    if (sa === sb || Math.abs(scale * (sa - sb)) < tolerance) {
      droppedTies += 1;
      continue;
    }
    const [chosen, rejected, cs, rs] = sa > sb ? [a, b, sa, sb] : [b, a, sb, sa];
    pairs.push({ prompt, chosen, rejected, chosen_score: cs, rejected_score: rs, margin: cs - rs, method: JudgeMethod[request.method] });
  }
  const info = await writeJsonl(toLocalPath(request.outputUri), pairs);
  return {
    pairs: { uri: info.uri, sha256: info.sha256, sizeBytes: info.sizeBytes },
    counts: { numPrompts: indices.length, numPairs: pairs.length, droppedIdentical, droppedTies, droppedInvalid: 0 },
  };
}

/**
 * A model directory as the trainer's export writes it: the files, then manifest.json listing them; written to a
 * temporary sibling and renamed into place. Returns the ArtifactRef (sha256 of the manifest).
 */
export async function writeModelDir(dir: string, files: Record<string, string>): Promise<ArtifactRef> {
  const temp = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
  await fs.promises.mkdir(temp, { recursive: true });
  const entries = [];
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    await fs.promises.writeFile(path.join(temp, name), content);
    entries.push({ path: name, sha256: createHash('sha256').update(content).digest('hex'), size_bytes: Buffer.byteLength(content) });
  }
  const total = entries.reduce((s, e) => s + e.size_bytes, 0);
  await fs.promises.writeFile(path.join(temp, 'manifest.json'), JSON.stringify({ version: 1, files: entries, total_size_bytes: total }, null, 2));
  await fs.promises.rm(dir, { recursive: true, force: true });
  await fs.promises.rename(temp, dir);
  return { uri: fileUri(dir), sha256: await sha256File(path.join(dir, 'manifest.json')), sizeBytes: total };
}

/** The "weights" a fake training job produces: a function of its inputs' content and its hyper-parameters. */
export function fakeWeights(spec: JobSpec): string {
  const p = spec.kind?.$case === 'preference' ? spec.kind.value : undefined;
  return hex(
    'weights',
    p?.init?.sha256 || p?.init?.uri,
    p?.pairs?.sha256,
    PreferenceLoss[p?.loss ?? 0],
    p?.spa?.dndLambda ?? '-',
    p?.wdro?.delta ?? '-',
    spec.hparams?.seed,
    spec.hparams?.learningRate,
  );
}

/** Writes a finished job's outputs to spec.output_uri: checkpoint/, onnx/, metrics.jsonl and manifest.json. */
export async function fakeTrainOutputs(spec: JobSpec): Promise<{ outputs: JobOutputs; metrics: Record<string, number> }> {
  const out = toLocalPath(spec.outputUri);
  await fs.promises.mkdir(out, { recursive: true });
  const weights = fakeWeights(spec);
  const hfCheckpoint = await writeModelDir(path.join(out, 'checkpoint'), { 'config.json': '{"model_type":"llama"}', 'model.safetensors': weights });
  const onnx = await writeModelDir(path.join(out, 'onnx'), { 'model.onnx': `onnx:${weights}`, 'config.json': '{"model_type":"llama"}' });
  const metricsInfo = await writeFileAtomic(path.join(out, 'metrics.jsonl'), JSON.stringify({ step: 1, loss: 0.69 }) + '\n');
  const manifest = await writeFileAtomic(
    path.join(out, 'manifest.json'),
    JSON.stringify({ version: 1, files: [{ path: 'metrics.jsonl', sha256: metricsInfo.sha256, size_bytes: metricsInfo.sizeBytes }] }),
  );
  return {
    outputs: {
      model: { hfCheckpoint, onnx },
      manifest: { uri: manifest.uri, sha256: manifest.sha256, sizeBytes: manifest.sizeBytes },
      metrics: { uri: metricsInfo.uri, sha256: metricsInfo.sha256, sizeBytes: metricsInfo.sizeBytes },
    },
    metrics: { loss: 0.69, 'rewards/margins': 0.1, ...(spec.kind?.$case === 'preference' && spec.kind.value.wdro ? { 'dro/lambda_star': 1.5 } : {}) },
  };
}
