// Retention (issue 14 §5): DeleteRun over gRPC with per-run authorization, RunSpec.keep_last_checkpoints pruning old
// rounds' model checkpoints and exports (and a resumed run not executing those rounds again), and Run.disk_bytes
// matching `du -sb` of the run's directory.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Configuration, CoordinatorClient, DESCRIPTOR_SET_PATH, JobState, type Run } from '@alignment/contracts';
import { createClient, startServer, type RunningServer } from '@alignment/service-kit';
import { waitFor } from '@alignment/service-kit/testing';
import { closeHarnesses, harness, runToEnd, type Harness } from '../testing/engine-harness';
import { Gate } from '../testing/gate';
import { makeWorkspace, validSpec } from '../testing/run-fixtures';
import { TokenAuthenticator } from './auth';
import { coordinatorBinding } from './service';

const TOKENS = { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789ab', root: 'root-token-0123456789a' };
let h: Harness;
let server: RunningServer;
let client: CoordinatorClient;

beforeAll(async () => {
  h = harness();
  const tokensFile = path.join(h.ws.root, 'tokens');
  fs.writeFileSync(tokensFile, `${TOKENS.alice} alice\n${TOKENS.bob} bob\n${TOKENS.root} ops admin\n`);
  server = await startServer({ name: 'retention-test', port: 0, host: '127.0.0.1', bindings: [coordinatorBinding(h.engine, new TokenAuthenticator(tokensFile))], descriptorSetPath: DESCRIPTOR_SET_PATH });
  client = createClient(CoordinatorClient, server.address, { defaultDeadlineMs: 10_000 });
});
afterAll(async () => {
  client.close();
  await h.engine.stop();
  await server.shutdown();
  closeHarnesses();
});

const call = <Res = unknown>(method: unknown, request: object, token: string) =>
  new Promise<Res>((resolve, reject) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    (method as (...args: unknown[]) => unknown).call(client, request, metadata, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r)));
  });
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: grpc.ServiceError) => [e.code, e.details]);
const du = (dir: string) => Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
const learnDir = (hh: Harness, runId: string, round: number) => path.join(hh.dataDir, 'runs', runId, `round-${round}`, 'learn');
/** Whether the LEARN of `round` still has its model checkpoint and ONNX export on disk. */
const hasModel = (hh: Harness, runId: string, round: number) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(learnDir(hh, runId, round), 'stage.json'), 'utf8'));
  return ['model.hf_checkpoint', 'model.onnx'].map((name) => fs.existsSync(new URL(manifest.outputs[name].uri)));
};

describe('DeleteRun', () => {
  it('deletes only for the owner or an admin, refuses a RUNNING run, and frees the files and the records', async () => {
    const gate = new Gate();
    h.fakes.learn.before = () => gate.promise;
    const spec = validSpec(h.ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 0, prompts: undefined, roundTraining: undefined });
    await call(client.startRun, { runId: 'alices', spec }, TOKENS.alice);
    await waitFor(async () => h.fakes.learn.calls.length > 0, 10_000, 'the LEARN stage');
    expect(await failure(call(client.deleteRun, { runId: 'alices' }, TOKENS.bob))).toEqual([grpc.status.PERMISSION_DENIED, "permission denied for run_id: run 'alices' belongs to another principal"]);
    expect(await failure(call(client.deleteRun, { runId: 'alices' }, TOKENS.alice))).toEqual([grpc.status.FAILED_PRECONDITION, "run 'alices' is RUNNING: cancel it first (CancelRun)"]);
    await call(client.cancelRun, { runId: 'alices' }, TOKENS.alice);
    h.fakes.learn.before = undefined;
    gate.open();
    // Resumed to the end, so the run's directory holds a model, a manifest and metrics.
    await call(client.startRun, { runId: 'alices', spec }, TOKENS.alice);
    await h.engine.settled('alices');
    const runDir = path.join(h.dataDir, 'runs', 'alices');
    const before = du(runDir);
    expect(before).toBeGreaterThan(1000);
    const deleted = await call<{ runId: string; freedBytes: number }>(client.deleteRun, { runId: 'alices' }, TOKENS.alice);
    expect(deleted).toEqual({ runId: 'alices', freedBytes: before });
    expect(fs.existsSync(runDir)).toBe(false);
    expect(h.store.findRun('alices')).toBeUndefined();
    expect(h.store.stagesOf('alices')).toEqual([]);
    expect(h.store.metricsOf('alices')).toEqual([]);
    expect(await failure(call(client.getRun, { runId: 'alices' }, TOKENS.alice))).toEqual([grpc.status.NOT_FOUND, "run_id: no run 'alices'"]);
    // An admin may delete anyone's run.
    await call(client.startRun, { runId: 'alices-2', spec }, TOKENS.alice);
    await h.engine.settled('alices-2');
    expect(await call(client.deleteRun, { runId: 'alices-2' }, TOKENS.root)).toMatchObject({ runId: 'alices-2' });
    expect(fs.existsSync(path.join(h.dataDir, 'runs', 'alices-2'))).toBe(false);
  }, 30_000);
});

describe('keep_last_checkpoints and disk_bytes', () => {
  it('keeps the models of the last K rounds, resumes without executing pruned rounds, and reports du -sb', async () => {
    const r = harness(makeWorkspace({ rounds: 3 }));
    const gate = new Gate();
    const roundThree = (request: object) => JSON.stringify(request).includes('round-3');
    r.fakes.generate.before = (request) => (roundThree(request) ? gate.promise : undefined);
    await r.engine.startRun({ runId: 'kept', spec: validSpec(r.ws, { keepLastCheckpoints: 2 }) });
    await waitFor(async () => r.fakes.generate.calls.some(roundThree), 20_000, 'round 3 GENERATE');
    // Round 2 finished: round 0's model is gone, rounds 1 and 2 kept.
    expect([0, 1, 2].map((round) => hasModel(r, 'kept', round))).toEqual([[false, false], [true, true], [true, true]]);
    const running = r.engine.getRun('kept');
    expect(running.diskBytes).toBe(du(path.join(r.dataDir, 'runs', 'kept')));
    await r.engine.cancelRun('kept');
    r.fakes.generate.before = undefined;
    gate.open();
    const learnsBefore = r.fakes.learn.calls.length;
    await r.engine.startRun({ runId: 'kept', spec: validSpec(r.ws, { keepLastCheckpoints: 2 }) });
    await r.engine.settled('kept');
    const run: Run = r.engine.getRun('kept');
    expect(run.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(r.fakes.learn.calls.length).toBe(learnsBefore + 1); // only round 3 trained: pruned rounds were not re-run
    expect([0, 1, 2, 3].map((round) => hasModel(r, 'kept', round))).toEqual([[false, false], [false, false], [true, true], [true, true]]);
    expect(new URL(run.latestModel!.onnx!.uri).pathname.startsWith(learnDir(r, 'kept', 3))).toBe(true); // the final model stays
    expect(run.diskBytes).toBe(du(path.join(r.dataDir, 'runs', 'kept')));

    // Without retention every round keeps its model, and the run is bigger by what was pruned.
    const all = await runToEnd(r, {}, 'all');
    expect([0, 1, 2, 3].map((round) => hasModel(r, 'all', round))).toEqual([[true, true], [true, true], [true, true], [true, true]]);
    expect(all.diskBytes).toBe(du(path.join(r.dataDir, 'runs', 'all')));
    expect(all.diskBytes).toBeGreaterThan(run.diskBytes);
    await r.engine.stop();
  }, 60_000);
});
