// Issue 12: no authentication or authorization; an unauthenticated CancelRun from a third party failed someone
// else's run within 2 s. With AUTH_TOKENS_FILE the coordinator authenticates bearer tokens and authorizes per run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Configuration, CoordinatorClient, DESCRIPTOR_SET_PATH, JobState } from '@alignment/contracts';
import { createClient, readAll, startServer, type RunningServer } from '@alignment/service-kit';
import { closeHarnesses, harness, type Harness } from '../testing/engine-harness';
import { validSpec } from '../testing/run-fixtures';
import { parseTokens, TokenAuthenticator } from './auth';
import { coordinatorBinding } from './service';

const TOKENS = { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789ab', root: 'root-token-0123456789a' };
let h: Harness;
let server: RunningServer;
let client: CoordinatorClient;
let tokensFile: string;

beforeAll(async () => {
  h = harness();
  tokensFile = path.join(h.ws.root, 'tokens');
  fs.writeFileSync(tokensFile, `# token principal [admin]\n${TOKENS.alice} alice\n${TOKENS.bob} bob\n${TOKENS.root} ops admin\n`);
  server = await startServer({ name: 'auth-test', port: 0, host: '127.0.0.1', bindings: [coordinatorBinding(h.engine, new TokenAuthenticator(tokensFile))], descriptorSetPath: DESCRIPTOR_SET_PATH });
  client = createClient(CoordinatorClient, server.address, { defaultDeadlineMs: 10_000 });
});
afterAll(async () => {
  client.close();
  await server.shutdown();
  closeHarnesses();
});

const as = (token?: string) => {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
};
const status = (p: Promise<unknown>) => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
/** A unary call of `method` (a client method) with the token's metadata. */
const call = <Res = unknown>(method: unknown, request: object, token?: string) =>
  new Promise<Res>((resolve, reject) =>
    (method as (...args: unknown[]) => unknown).call(client, request, as(token), { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, r: Res) =>
      e ? reject(e) : resolve(r),
    ),
  );
const spec = () => validSpec(h.ws, { configuration: Configuration.CONFIGURATION_DPO_SEED, rounds: 0, prompts: undefined, roundTraining: undefined });

describe('bearer tokens', () => {
  it('refuse a call without a token, or with one nobody issued: UNAUTHENTICATED', async () => {
    for (const token of [undefined, 'not-a-token-at-all-1234']) {
      expect(await status(call(client.listRuns, { pageSize: 0, pageToken: '' }, token))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await status(call(client.getRun, { runId: 'x' }, token))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await status(call(client.startRun, { runId: 'x', spec: spec() }, token))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await status(call(client.cancelRun, { runId: 'x' }, token))).toBe(grpc.status.UNAUTHENTICATED);
    }
    expect(h.engine.listRuns(10, '').runs).toEqual([]); // nothing was started
  });

  it('let the owner and admins act on a run, and nobody else', async () => {
    const run = (await call<{ run: { owner: string } }>(client.startRun, { runId: 'alices', spec: spec() }, TOKENS.alice)).run;
    expect(run.owner).toBe('alice');
    await h.engine.settled('alices');
    expect(await status(call(client.getRun, { runId: 'alices' }, TOKENS.alice))).toBe(grpc.status.OK);
    expect(await status(call(client.getRun, { runId: 'alices' }, TOKENS.root))).toBe(grpc.status.OK);
    for (const attempt of [
      call(client.getRun, { runId: 'alices' }, TOKENS.bob),
      call(client.cancelRun, { runId: 'alices' }, TOKENS.bob),
      call(client.startRun, { runId: 'alices', spec: spec() }, TOKENS.bob),
      readAll(client.watchRun({ runId: 'alices' }, as(TOKENS.bob))),
    ]) {
      const error = (await attempt.catch((e) => e)) as grpc.ServiceError;
      expect([error.code, error.details]).toEqual([grpc.status.PERMISSION_DENIED, "permission denied for run_id: run 'alices' belongs to another principal"]);
    }
    expect(h.engine.getRun('alices').state).toBe(JobState.JOB_STATE_SUCCEEDED); // Bob's cancel did nothing
    const list = async (token: string) => (await call<{ runs: Array<{ runId: string }> }>(client.listRuns, { pageSize: 0, pageToken: '' }, token)).runs.map((r) => r.runId);
    expect([await list(TOKENS.alice), await list(TOKENS.bob), await list(TOKENS.root)]).toEqual([['alices'], [], ['alices']]);
  });

  it('are read again when the file changes: a token added works, a token removed stops working', async () => {
    const carol = 'carol-token-0123456789';
    fs.writeFileSync(tokensFile, `${TOKENS.alice} alice\n${carol} carol\n`);
    fs.utimesSync(tokensFile, new Date(), new Date(Date.now() + 5_000)); // a new mtime even within the same ms
    expect(await status(call(client.listRuns, { pageSize: 0, pageToken: '' }, carol))).toBe(grpc.status.OK);
    expect(await status(call(client.listRuns, { pageSize: 0, pageToken: '' }, TOKENS.bob))).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("are what service-kit clients send with the metadata option (the CLI's $ALIGNMENT_TOKEN)", async () => {
    const withToken = createClient(CoordinatorClient, server.address, { metadata: { authorization: `Bearer ${TOKENS.alice}` } });
    try {
      const page = await new Promise<{ runs: Array<{ owner: string }> }>((resolve, reject) =>
        withToken.listRuns({ pageSize: 0, pageToken: '' }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(page.runs.every((r) => r.owner === 'alice')).toBe(true);
    } finally {
      withToken.close();
    }
  });

  it('come from a file whose mistakes are named by line', () => {
    expect(() => parseTokens('short alice\n', 'tokens')).toThrow('tokens:1: expected "<token of at least 16 characters> <principal> [admin]"');
    expect(() => parseTokens(`# c\n\n${TOKENS.bob} bob root\n`, 'tokens')).toThrow('tokens:3:');
  });
});
