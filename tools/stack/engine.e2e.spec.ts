/**
 * End to end, RunSpec.engine: `npm run stack` with the generator also serving its OpenAI-compatible /v1 endpoint
 * (OPENAI_HTTP_PORT) with π_init as `reference` and runtime loading on (OPENAI_RUNTIME_LOADING=1, vLLM's
 * /v1/load_lora_adapter). Two runs of examples/micro-run.json with the same seed, side by side: one embedded (ONNX
 * Runtime in the generator and the judge), one whose GENERATE, SPA judge and EVALUATE go through the /v1 endpoint as
 * the engine, the coordinator loading each round's policy (its ONNX export, ENGINE_WEIGHTS_ONNX_EXPORT) by name.
 * Both succeed with the same round 0 model; the engine run's round 1 responses, judged again by the embedded judge,
 * get the labels its engine-scored judge gave them, margins within 1e-3 nats; and once the run has ended the engine
 * serves π_init alone (the earlier policies unloaded as no later stage needed them, the last one by the run's end).
 * The samples themselves differ: see below.
 *
 * Cost (2 cores): the micro inputs (~15 s to build), ~10 s for the services to listen, the two runs side by side and
 * one more JudgePairs: 170 s measured on a loaded machine.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, grpcurl } from '@alignment/service-kit/testing';
import { venvPython } from '../testing/tiny-models';
import { ROOT, startStack, stopStack, waitFinished, type RunView, type Stack } from './harness';

jest.setTimeout(300_000);

let dataDir: string;
let stack: Stack | undefined;
let engineUrl: string;

type Line = Record<string, unknown>;
const readJsonl = (file: string): Line[] => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
const stageFile = (runId: string, round: number, stage: string, name: string) => path.join(dataDir, 'runs', runId, `round-${round}`, stage, name);

async function startRun(runId: string, engine: boolean): Promise<void> {
  const request = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples/micro-run.json'), 'utf8').split('.data/micro/').join(`${dataDir}/micro/`));
  request.run_id = runId;
  if (engine) request.spec.engine = { base_url: engineUrl, reference_model: 'reference', weights: 'ENGINE_WEIGHTS_ONNX_EXPORT' };
  const result = await grpcurl(['-plaintext', '-d', '@', stack!.address('coordinator'), 'alignment.v1.Coordinator/StartRun'], JSON.stringify(request));
  if (result.code !== 0) throw new Error(`StartRun failed: ${result.stderr}${result.stdout}`);
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-e2e-'));
  // The generator reads OPENAI_MODELS when it starts, so π_init must exist first (the stack would build it alongside).
  const built = spawnSync(await venvPython(), ['tools/stack/prepare_micro.py', path.join(dataDir, 'micro')], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`prepare_micro.py failed: ${built.stderr}`);
  const httpPort = await freePort();
  engineUrl = `http://127.0.0.1:${httpPort}/v1`;
  stack = await startStack(dataDir, {
    OPENAI_HTTP_PORT: String(httpPort),
    OPENAI_MODELS: `reference=${path.join(dataDir, 'micro/model/onnx')}`,
    OPENAI_RUNTIME_LOADING: '1',
  });
}, 240_000);

afterAll(async () => {
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test("a run through the generator /v1 endpoint as its engine succeeds, its judge's labels equal the embedded judge's", async () => {
  await Promise.all([startRun('embedded', false), startRun('engine', true)]);
  const coordinator = stack!.address('coordinator');
  const [embedded, engine]: RunView[] = await Promise.all([waitFinished(coordinator, 'embedded', 240_000), waitFinished(coordinator, 'engine', 240_000)]);
  expect({ state: engine.state, error: engine.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });
  expect({ state: embedded.state, error: embedded.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });

  // Round 0 trains on the seed pairs alone: the same model, byte for byte.
  const outputs = (runId: string, round: number, stage: string) => JSON.parse(fs.readFileSync(stageFile(runId, round, stage, 'stage.json'), 'utf8')).outputs;
  const pi0 = outputs('engine', 0, 'learn')['model.onnx'];
  expect(pi0.sha256).toBe(outputs('embedded', 0, 'learn')['model.onnx'].sha256);
  // Round 1 sampled π_0 on the engine: as many responses and tokens are asked for, but not the embedded run's
  // samples: a one-prompt /v1 request draws from requestSeed(seed, prompt) (libs/lm sampling.ts), as vLLM draws from
  // its own generator, where the embedded generator draws from (seed, prompt) directly.
  const metrics = (run: RunView, round: number) => run.rounds!.find((r) => (r.round ?? 0) === round)!.metrics;
  expect(metrics(engine, 1)['generate/num_responses']).toBe(metrics(embedded, 1)['generate/num_responses']);
  expect(metrics(engine, 1)['judge/num_pairs']).toBeGreaterThan(0);

  // The engine run's round 1 responses judged again by the embedded judge (ONNX Runtime, same π_0 and π_init):
  // the same labels, the margins (s = logp_π0 − logp_init, from the engine's echoed log-probs) within 1e-3 nats.
  const rejudged = path.join(dataDir, 'rejudged.jsonl');
  const request = {
    method: 'JUDGE_METHOD_SPA_IMPLICIT',
    responses: { uri: pathToFileURL(stageFile('engine', 1, 'generate', 'responses.jsonl')).href },
    spa_implicit: { policy: { onnx: { uri: pi0.uri } }, reference: { onnx: { uri: pathToFileURL(path.join(dataDir, 'micro/model/onnx')).href } }, beta: 0.1 },
    unfinished_pairs: 'UNFINISHED_PAIRS_KEEP',
    // As the run encoded its prompts (examples/micro-run.json); JudgePairs' default is raw text.
    prompt_encoding: 'PROMPT_ENCODING_CHAT_TEMPLATE',
    output_uri: rejudged,
  };
  const judged = await grpcurl(['-plaintext', '-d', '@', stack!.address('judge'), 'alignment.v1.Judge/JudgePairs'], JSON.stringify(request));
  if (judged.code !== 0) throw new Error(`JudgePairs failed: ${judged.stderr}`);
  const [viaEngine, viaOnnx] = [readJsonl(stageFile('engine', 1, 'judge', 'pairs.jsonl')), readJsonl(rejudged)];
  expect(viaEngine.map((p) => [p.prompt, p.chosen, p.rejected])).toEqual(viaOnnx.map((p) => [p.prompt, p.chosen, p.rejected]));
  const maxDiff = Math.max(...viaEngine.map((p, i) => Math.abs(Number(p.margin) - Number(viaOnnx[i].margin))));
  process.stdout.write(`engine e2e: ${viaEngine.length} pairs, max |margin(engine) - margin(onnx)| = ${maxDiff} nats\n`);
  expect(maxDiff).toBeLessThan(1e-3);

  // The engine served each round's policy by name (the JUDGE of round 1 scored with engine-round-0); the coordinator
  // unloaded those no later stage needed, and the run's end unloaded the last: none of the run's models is listed.
  const served = (await (await fetch(`${engineUrl}/models`)).json()) as { data: Array<{ id: string }> };
  expect(served.data.map((m) => m.id).filter((id) => id.startsWith('engine-round-'))).toEqual([]);
  expect(served.data.map((m) => m.id)).toEqual(['reference']);
});
