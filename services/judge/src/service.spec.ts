import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ArtifactStore } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH, JudgeClient, JudgeMethod, JudgePairsRequest, PromptEncoding, ScoreSequencesRequest } from '@alignment/contracts';
import { createClient, readAll, startServer, unaryCall, type RunningServer } from '@alignment/service-kit';
import { waitFor } from '@alignment/service-kit/testing';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { defaultJudgeDeps, judgeBinding } from './service';
import type { JudgeDeps } from './judging/judge-pairs';

let models: TinyModels;
let server: RunningServer;
let client: JudgeClient;
let dir: string;
let deps: JudgeDeps;

beforeAll(async () => {
  models = await tinyModels();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-svc-'));
  deps = defaultJudgeDeps(new ArtifactStore(path.join(dir, 'store')));
  server = await startServer({ name: 'judge-test', port: 0, host: '127.0.0.1', bindings: [judgeBinding(deps)], descriptorSetPath: DESCRIPTOR_SET_PATH, drainTimeoutMs: 1_000 });
  client = createClient(JudgeClient, server.address, { defaultDeadlineMs: 60_000 });
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  client?.close();
  await server?.shutdown();
  await deps?.languageModels.clear();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('alignment.v1.Judge over gRPC', () => {
  it('ScoreSequences returns PyTorch’s sequence log-probs, per token on request', async () => {
    const refs = models.values.scores.policy.slice(0, 3);
    const response = await unaryCall(
      client,
      client.scoreSequences,
      ScoreSequencesRequest.fromPartial({
        model: { onnx: { uri: models.policy } },
        items: refs.map((r) => ({ prompt: r.prompt, response: r.response })),
        perToken: true,
        promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE,
      }),
    );
    response.scores.forEach((s, i) => {
      expect(Math.abs(s.logp - refs[i].logp)).toBeLessThan(1e-3);
      expect(s.numTokens).toBe(refs[i].token_logps.length);
      expect(s.tokenLogps).toHaveLength(refs[i].token_logps.length);
    });
  });

  it('ScoreSequences answers INVALID_ARGUMENT naming the field', async () => {
    const error = (await unaryCall(client, client.scoreSequences, ScoreSequencesRequest.fromPartial({ model: { onnx: { uri: path.join(dir, 'nope') } }, items: [{ prompt: 'a', response: 'b' }] })).catch((e) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.metadata.get('invalid-field')).toEqual(['model.onnx.uri']);
  });

  // Issue 12: a 10 MiB response stalled the judge for ~10 s (4 of 5 health checks failed).
  it('refuses a prompt or response over MAX_TEXT_BYTES at once, naming it', async () => {
    const huge = 'x'.repeat(10 << 20);
    const scored = (await unaryCall(client, client.scoreSequences, ScoreSequencesRequest.fromPartial({ model: { onnx: { uri: models.policy } }, items: [{ prompt: 'a', response: huge }] })).catch((e) => e)) as grpc.ServiceError;
    expect([scored.code, scored.details]).toEqual([grpc.status.INVALID_ARGUMENT, `invalid items[0].response: is ${10 << 20} bytes; at most 262144 are taken (MAX_TEXT_BYTES)`]);
    const responses = path.join(dir, 'huge-responses.jsonl');
    fs.writeFileSync(responses, `${JSON.stringify({ prompt_index: 0, prompt: 'p', responses: ['a', huge] })}\n`);
    const events = await readAll(client.judgePairs(JudgePairsRequest.fromPartial({
      method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
      responses: { uri: responses },
      spaImplicit: { policy: { onnx: { uri: models.policy } }, reference: { onnx: { uri: models.reference } } },
    }))).catch((e) => e);
    expect([events.code, events.details]).toEqual([grpc.status.INVALID_ARGUMENT, `invalid responses: ${responses}:1: "responses"[1] is ${10 << 20} bytes; at most 262144 are taken (MAX_TEXT_BYTES)`]);
  });

  // Issue 12: under ARTIFACT_ROOTS every path field is confined (PERMISSION_DENIED naming it).
  it('refuses each path field outside ARTIFACT_ROOTS / READ_ONLY_ROOTS with PERMISSION_DENIED naming it', async () => {
    const responses = path.join(dir, 'confined-responses.jsonl');
    fs.writeFileSync(responses, `${JSON.stringify({ prompt_index: 0, prompt: 'p', responses: ['a', 'bb'] })}\n`);
    const spa = { policy: { onnx: { uri: models.policy } }, reference: { onnx: { uri: models.reference } } };
    const judge = (partial: Record<string, unknown>) =>
      readAll(client.judgePairs(JudgePairsRequest.fromPartial({ method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT, responses: { uri: responses }, spaImplicit: spa, ...partial }))).catch((e) => e as grpc.ServiceError);
    process.env.ARTIFACT_ROOTS = dir;
    process.env.READ_ONLY_ROOTS = path.dirname(path.dirname(models.policy));
    try {
      const cases: Array<[string, Promise<unknown>]> = [
        ['output_uri', judge({ outputUri: '/etc/judge-escape.jsonl' })],
        ['responses.uri', judge({ responses: { uri: '/etc/passwd' } })],
        ['spa_implicit.policy.onnx.uri', judge({ spaImplicit: { ...spa, policy: { onnx: { uri: '/etc' } } } })],
        ['model.onnx.uri', unaryCall(client, client.scoreSequences, ScoreSequencesRequest.fromPartial({ model: { onnx: { uri: '/usr' } }, items: [{ prompt: 'a', response: 'b' }] })).catch((e) => e)],
      ];
      for (const [field, call] of cases) {
        const error = (await call) as grpc.ServiceError;
        expect([field, error.code, error.metadata?.get('invalid-field')]).toEqual([field, grpc.status.PERMISSION_DENIED, [field]]);
      }
      const inside = await judge({ outputUri: path.join(dir, 'confined-pairs.jsonl') });
      expect(Array.isArray(inside) && inside.at(-1)?.event?.$case).toBe('result');
    } finally {
      delete process.env.ARTIFACT_ROOTS;
      delete process.env.READ_ONLY_ROOTS;
    }
  });

  it('JudgePairs streams progress, then the pairs artifact and the counts', async () => {
    const responses = path.join(dir, 'responses.jsonl');
    fs.writeFileSync(
      responses,
      [
        { prompt_index: 0, prompt: 'What colour is the sky?', responses: ['The sky is blue.', 'Green, mostly.'] },
        { prompt_index: 1, prompt: 'Hi', responses: ['Hello', 'Hello'] },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const messages = await readAll(
      client.judgePairs(
        JudgePairsRequest.fromPartial({
          method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
          responses: { uri: responses },
          spaImplicit: { policy: { onnx: { uri: models.policy } }, reference: { onnx: { uri: models.reference } } },
        }),
      ),
    );
    const last = messages[messages.length - 1].event!;
    expect(messages.slice(0, -1).every((m) => m.event?.$case === 'progress')).toBe(true);
    expect(last.$case).toBe('result');
    if (last.$case !== 'result') return;
    expect(last.value.counts).toEqual({ numPrompts: 2, numPairs: 1, droppedIdentical: 1, droppedTies: 0, droppedInvalid: 0 });
    expect(fs.readFileSync(new URL(last.value.pairs!.uri).pathname, 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('JudgePairs answers INVALID_ARGUMENT when the method’s configuration is missing, naming it', async () => {
    const error = (await readAll(client.judgePairs(JudgePairsRequest.fromPartial({ method: JudgeMethod.JUDGE_METHOD_RULE, responses: { uri: '/x' } }))).catch((e) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('invalid rule: is required when method is rule');
  });

  // tools/fuzz: a directory or a NUL as output_uri was INTERNAL (the directory only at the rename, after the scoring),
  // and so were responses that cannot be read (/proc/self/mem: EIO).
  it('JudgePairs refuses an output_uri that cannot be written and responses that cannot be read', async () => {
    const responses = path.join(dir, 'one.jsonl');
    fs.writeFileSync(responses, `${JSON.stringify({ prompt_index: 0, prompt: '1 + 1?', responses: ['2', '3'] })}\n`);
    const taken = path.join(dir, 'taken');
    fs.mkdirSync(taken);
    const rule = { rule: 'toyworld/arithmetic', tieTolerance: 0 };
    const cases: Array<[Partial<JudgePairsRequest>, string]> = [
      [{ responses: { uri: responses, sha256: '', sizeBytes: 0 }, outputUri: taken }, `invalid output_uri: ${taken} is a directory; name the file to write`],
      [{ responses: { uri: responses, sha256: '', sizeBytes: 0 }, outputUri: `${dir}/out\0.jsonl` }, 'invalid output_uri: the path contains a NUL character'],
      [{ responses: { uri: '/proc/self/mem', sha256: '', sizeBytes: 0 } }, 'invalid responses: /proc/self/mem: cannot be read (EIO)'],
    ];
    for (const [partial, details] of cases) {
      const request = JudgePairsRequest.fromPartial({ method: JudgeMethod.JUDGE_METHOD_RULE, rule, ...partial });
      const error = (await readAll(client.judgePairs(request)).catch((e) => e)) as grpc.ServiceError;
      expect([error.code, error.details]).toEqual([grpc.status.INVALID_ARGUMENT, details]);
    }
    expect(fs.readdirSync(taken)).toEqual([]);
  });

  // Issue 12: output_uri replaced whatever file was there. It never does now; a retried call (the same request, so
  // the same pairs) still succeeds.
  it('JudgePairs never replaces a file at output_uri: the same bytes are a retry done, other bytes ALREADY_EXISTS', async () => {
    const responses = path.join(dir, 'to-pair.jsonl');
    fs.writeFileSync(responses, ['2', '4'].map((r, i) => JSON.stringify({ prompt_index: i, prompt: `${i} + 2?`, responses: [r, '7'] })).join('\n') + '\n');
    const out = path.join(dir, 'kept', 'pairs.jsonl');
    const request = JudgePairsRequest.fromPartial({ method: JudgeMethod.JUDGE_METHOD_RULE, rule: { rule: 'toyworld/arithmetic', tieTolerance: 0 }, responses: { uri: responses }, outputUri: out });
    const sha256Of = (messages: Awaited<ReturnType<typeof readAll>>) => {
      const last = (messages.at(-1) as { event?: { $case: string; value: { pairs?: { sha256: string } } } }).event;
      return last?.$case === 'result' ? last.value.pairs?.sha256 : undefined;
    };
    const first = sha256Of(await readAll(client.judgePairs(request)));
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    const written = fs.readFileSync(out);
    expect(sha256Of(await readAll(client.judgePairs(request)))).toBe(first);
    expect(fs.readFileSync(out)).toEqual(written);

    fs.writeFileSync(out, 'not ours\n');
    const error = (await readAll(client.judgePairs(request)).catch((e) => e)) as grpc.ServiceError;
    expect([error.code, error.metadata?.get('invalid-field')]).toEqual([grpc.status.ALREADY_EXISTS, ['output_uri']]);
    expect(error.details).toContain(`output_uri: ${out} already exists with other content`);
    expect(error.details).toContain(`this write's ${first}); it is not replaced`);
    expect(fs.readFileSync(out, 'utf8')).toBe('not ours\n');
    expect(fs.readdirSync(path.dirname(out))).toEqual(['pairs.jsonl']);
  });

  it('JudgePairs stops the work when the client cancels: no artifact, no temporary file left', async () => {
    const responses = path.join(dir, 'many.jsonl');
    const record = (i: number) => JSON.stringify({ prompt_index: i, prompt: `Prompt ${i}`, responses: ['The sky is blue.', 'Green, mostly.'] });
    fs.writeFileSync(responses, Array.from({ length: 3000 }, (_, i) => record(i)).join('\n'));
    const out = path.join(dir, 'cancelled', 'pairs.jsonl');
    const stream = client.judgePairs(
      JudgePairsRequest.fromPartial({
        method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
        responses: { uri: responses },
        spaImplicit: { policy: { onnx: { uri: models.policy } }, reference: { onnx: { uri: models.reference } } },
        outputUri: out,
      }),
    );
    const ended = readAll(stream).catch((e: grpc.ServiceError) => e);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.cancel();
    expect(((await ended) as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
    await waitFor(async () => fs.readdirSync(path.dirname(out)).length === 0, 5_000, 'the run to stop and clean up');
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});
