import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { DESCRIPTOR_SET_PATH, GenerateRequest, GeneratorClient, type GenerateResponse } from '@alignment/contracts';
import { causalModelCache } from '@alignment/lm';
import { createClient, readAll, startServer, type RunningServer } from '@alignment/service-kit';
import { waitFor } from '@alignment/service-kit/testing';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../tools/testing/tiny-models';
import { generatorBinding } from './service';

let models: TinyModels;
let server: RunningServer;
let client: GeneratorClient;
let dir: string;
const cache = causalModelCache(2);

beforeAll(async () => {
  models = await tinyModels();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-svc-'));
  server = await startServer({
    name: 'generator-test',
    port: 0,
    host: '127.0.0.1',
    bindings: [generatorBinding({ models: cache, store: new ArtifactStore(path.join(dir, 'store')), batchRows: 8 })],
    descriptorSetPath: DESCRIPTOR_SET_PATH,
    drainTimeoutMs: 1_000,
  });
  client = createClient(GeneratorClient, server.address, { defaultDeadlineMs: 60_000 });
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  client?.close();
  await server?.shutdown();
  await cache.clear();
  fs.rmSync(dir, { recursive: true, force: true });
});

function request(partial: Partial<GenerateRequest>): GenerateRequest {
  return GenerateRequest.fromPartial({ model: { onnx: { uri: models.policy } }, ...partial });
}

/** A job long enough to be cancelled in flight: many prompts, long samples. */
function longJob(output: string): GenerateRequest {
  const prompts = Array.from({ length: 400 }, (_, i) => `Prompt ${i}: tell me a long story.`);
  return request({
    prompts: { $case: 'inlinePrompts', value: { prompts } },
    params: { n: 4, temperature: 0.01, maxNewTokens: 240, seed: 3, topK: 0, stop: [], greedy: false },
    outputUri: output,
  });
}

/** Resolves when the stream's first message arrives. */
function firstMessage(stream: grpc.ClientReadableStream<GenerateResponse>): Promise<void> {
  return new Promise((resolve) => stream.once('data', () => resolve()));
}

describe('alignment.v1.Generator over gRPC', () => {
  it('streams progress, then the result with the responses artifact', async () => {
    const messages = await readAll(
      client.generate(
        request({
          prompts: { $case: 'inlinePrompts', value: { prompts: ['What colour is the sky?', 'Two plus two?', 'Hi'] } },
          params: { n: 3, maxNewTokens: 8, seed: 1, topK: 0, stop: [], greedy: false },
        }),
      ),
    );
    const events = messages.map((m) => m.event!);
    expect(events.slice(0, -1).every((e) => e.$case === 'progress')).toBe(true);
    const last = events[events.length - 1];
    expect(last.$case).toBe('result');
    const result = last.$case === 'result' ? last.value : undefined;
    expect(result).toMatchObject({ numPrompts: 3, numResponses: 9 });
    const lines = [];
    for await (const { value } of readJsonl(new URL(result!.responses!.uri).pathname)) lines.push(value);
    expect(lines).toHaveLength(3);
    const progress = events.filter((e) => e.$case === 'progress').map((e) => (e.$case === 'progress' ? e.value : undefined)!);
    expect(progress[progress.length - 1]).toMatchObject({ done: 3, total: 3, unit: 'prompts' });
  });

  it('answers INVALID_ARGUMENT naming the field', async () => {
    const bad = request({ prompts: { $case: 'inlinePrompts', value: { prompts: ['x'] } }, params: { n: 1, topP: 2, maxNewTokens: 5, topK: 0, stop: [], seed: 0, greedy: false } });
    const error = await readAll(client.generate(bad)).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((error as grpc.ServiceError).details).toBe('invalid params.top_p: must be in (0, 1], got 2');
    expect((error as grpc.ServiceError).metadata.get('invalid-field')).toEqual(['params.top_p']);
    const noModel = await readAll(client.generate(GenerateRequest.fromPartial({ prompts: { $case: 'inlinePrompts', value: { prompts: ['x'] } } }))).catch((e) => e);
    expect(noModel.details).toMatch(/^invalid model.onnx.uri: is required/);
  });

  // Issue 12: a 10 MiB prompt stalled the generator for ~10 s (4 of 5 health checks failed).
  it('refuses a prompt over MAX_TEXT_BYTES at once, inline or in a prompt set, naming it', async () => {
    const huge = 'é'.repeat(5 << 20); // 10 MiB of UTF-8
    const params = { n: 1, topP: 1, maxNewTokens: 5, topK: 0, stop: [], seed: 0, greedy: false };
    const started = Date.now();
    const inline = await readAll(client.generate(request({ prompts: { $case: 'inlinePrompts', value: { prompts: ['ok', huge] } }, params }))).catch((e) => e);
    expect([inline.code, inline.details]).toEqual([grpc.status.INVALID_ARGUMENT, `invalid inline_prompts.prompts[1]: is ${10 << 20} bytes; at most 262144 are taken (MAX_TEXT_BYTES)`]);
    const file = path.join(dir, 'huge-prompts.jsonl');
    fs.writeFileSync(file, `{"prompt":"ok"}\n${JSON.stringify({ prompt: huge })}\n`);
    const set = await readAll(client.generate(request({ prompts: { $case: 'promptSet', value: { uri: file, sha256: '', sizeBytes: 0 } }, params }))).catch((e) => e);
    expect([set.code, set.details]).toEqual([grpc.status.INVALID_ARGUMENT, `invalid prompt_set: ${file}:2: "prompt" is ${10 << 20} bytes; at most 262144 are taken (MAX_TEXT_BYTES)`]);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  // Issue 12: output_uri wrote anywhere and prompt_set.uri read anywhere. Under ARTIFACT_ROOTS every path field is
  // confined: PERMISSION_DENIED naming the field, the same message whether the path exists or not.
  it('refuses each path field outside ARTIFACT_ROOTS / READ_ONLY_ROOTS with PERMISSION_DENIED naming it', async () => {
    const prompts = path.join(dir, 'confined-prompts.jsonl');
    fs.writeFileSync(prompts, '{"prompt":"hi"}\n');
    const ok = { prompts: { $case: 'promptSet' as const, value: { uri: prompts, sha256: '', sizeBytes: 0 } }, params: { n: 1, topP: 1, maxNewTokens: 3, topK: 0, stop: [], seed: 0, greedy: false } };
    process.env.ARTIFACT_ROOTS = dir;
    process.env.READ_ONLY_ROOTS = path.dirname(path.dirname(models.policy));
    try {
      const cases: Array<[string, Partial<GenerateRequest>]> = [
        ['output_uri', { ...ok, outputUri: '/tmp/../etc/generator-escape.jsonl' }],
        ['output_uri', { ...ok, outputUri: path.join(path.dirname(path.dirname(models.policy)), 'not-writable-here.jsonl') }],
        ['prompt_set.uri', { ...ok, prompts: { $case: 'promptSet', value: { uri: '/etc/passwd', sha256: '', sizeBytes: 0 } } }],
        ['model.onnx.uri', { ...ok, model: { onnx: { uri: '/etc', sha256: '', sizeBytes: 0 } } }],
      ];
      for (const [field, partial] of cases) {
        const error = (await readAll(client.generate(request(partial))).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
        expect([field, error.code, error.metadata?.get('invalid-field')]).toEqual([field, grpc.status.PERMISSION_DENIED, [field]]);
        expect(error.details).toMatch(new RegExp(`^permission denied for ${field.replace('.', '\\.')}: the path is outside`));
      }
      const directory = (await readAll(client.generate(request({ ...ok, outputUri: dir }))).catch((e) => e)) as grpc.ServiceError;
      expect([directory.code, directory.details]).toEqual([grpc.status.INVALID_ARGUMENT, `invalid output_uri: ${fs.realpathSync(dir)} is a directory; name the file to write`]);
      const inside = await readAll(client.generate(request({ ...ok, outputUri: path.join(dir, 'confined-out.jsonl') })));
      expect(inside.at(-1)?.event?.$case).toBe('result');
    } finally {
      delete process.env.ARTIFACT_ROOTS;
      delete process.env.READ_ONLY_ROOTS;
    }
  });

  // tools/fuzz: a directory, a NUL or an overlong name as output_uri was INTERNAL (the directory only at the rename,
  // after the whole generation), and so was a prompt set that cannot be read (/proc/self/mem: EIO).
  it('refuses an output_uri that cannot be written and a prompt set that cannot be read, before generating', async () => {
    const prompts = { $case: 'inlinePrompts' as const, value: { prompts: ['Hi'] } };
    const params = { n: 1, maxNewTokens: 4, seed: 1, topK: 0, stop: [], greedy: false };
    const taken = path.join(dir, 'taken');
    fs.mkdirSync(taken);
    const cases: Array<[Partial<GenerateRequest>, string]> = [
      [{ prompts, params, outputUri: taken }, `invalid output_uri: ${taken} is a directory; name the file to write`],
      [{ prompts, params, outputUri: `${dir}/out\0.jsonl` }, 'invalid output_uri: the path contains a NUL character'],
      [{ prompts, params, outputUri: path.join(dir, 'n'.repeat(250)) }, 'invalid output_uri: a name in the path is 250 bytes long; at most 223 are written'],
      [{ prompts: { $case: 'promptSet', value: { uri: '/proc/self/mem', sha256: '', sizeBytes: 0 } }, params }, 'invalid prompt_set: /proc/self/mem: cannot be read (EIO)'],
    ];
    for (const [partial, details] of cases) {
      const error = (await readAll(client.generate(request(partial))).catch((e) => e)) as grpc.ServiceError;
      expect([error.code, error.details]).toEqual([grpc.status.INVALID_ARGUMENT, details]);
    }
    expect(fs.readdirSync(taken)).toEqual([]);
  });

  // Issue 12: output_uri replaced whatever file was there. It never does now; a retried call (the same request, so
  // the same bytes: the coordinator retries a shard whose first call wrote its output) still succeeds.
  it('never replaces a file at output_uri: the same bytes are a retry done, other bytes ALREADY_EXISTS naming it', async () => {
    const out = path.join(dir, 'kept', 'responses.jsonl');
    const job = request({ prompts: { $case: 'inlinePrompts', value: { prompts: ['Hi', 'Two plus two?'] } }, params: { n: 2, maxNewTokens: 6, seed: 5, topK: 0, stop: [], greedy: false }, outputUri: out });
    const resultOf = (messages: GenerateResponse[]) => (messages.at(-1)?.event?.$case === 'result' ? messages.at(-1)!.event!.value : undefined) as { responses?: { sha256: string } } | undefined;
    const first = resultOf(await readAll(client.generate(job)));
    const written = fs.readFileSync(out);
    const retried = resultOf(await readAll(client.generate(job)));
    expect(retried?.responses?.sha256).toBe(first?.responses?.sha256);
    expect(fs.readFileSync(out)).toEqual(written);

    fs.writeFileSync(out, '{"someone":"else"}\n');
    const error = (await readAll(client.generate(job)).catch((e) => e)) as grpc.ServiceError;
    expect([error.code, error.metadata?.get('invalid-field')]).toEqual([grpc.status.ALREADY_EXISTS, ['output_uri']]);
    expect(error.details).toMatch(new RegExp(`^output_uri: ${out.replace(/[.]/g, '\\.')} already exists with other content \\(sha256 [0-9a-f]{64}, this write's ${first!.responses!.sha256}\\); it is not replaced$`));
    expect(fs.readFileSync(out, 'utf8')).toBe('{"someone":"else"}\n');
    expect(fs.readdirSync(path.dirname(out))).toEqual(['responses.jsonl']);
  });

  it.each([
    ['the client cancels', (stream: grpc.ClientReadableStream<GenerateResponse>) => firstMessage(stream).then(() => stream.cancel()), grpc.status.CANCELLED, undefined],
    ['the deadline passes', () => Promise.resolve(), grpc.status.DEADLINE_EXCEEDED, 1_500],
  ] as const)('stops the work when %s: no artifact, no temporary file left', async (_, stop, code, deadlineMs) => {
    const out = path.join(dir, `long-${code}`, 'responses.jsonl');
    const stream = client.generate(longJob(out), deadlineMs ? { deadline: Date.now() + deadlineMs } : {});
    const ended = readAll(stream).catch((e: grpc.ServiceError) => e);
    await stop(stream);
    expect(((await ended) as grpc.ServiceError).code).toBe(code);
    // The run writes into a temporary file beside `out` while it works; stopping deletes it.
    await waitFor(async () => fs.existsSync(path.dirname(out)) && fs.readdirSync(path.dirname(out)).length === 0, 5_000, 'the run to stop and clean up');
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });
});
