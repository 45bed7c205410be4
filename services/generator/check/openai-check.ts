// `nx run generator:openai-check`: starts the generator (services/generator/src/main.ts) with its OpenAI-compatible
// /v1 endpoint on loopback serving the tiny test models (tools/testing/tiny-models.ts), then samples and scores the
// same prompts through libs/lm's OpenAI backend against it and through ONNX Runtime directly, and runs a Generate
// job (greedy) through both backends of the generator's own domain. Last line: {"check":"openai","max_logp_diff":x};
// exit 1 if tokens differ anywhere or a log-prob differs by more than 1e-3 nats.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { causalModelCache, LanguageModel, OpenAiLanguageModel, PAPER_SAMPLING } from '@alignment/lm';
import { freePort, spawnProcess, waitFor } from '@alignment/service-kit/testing';
import { tinyModels } from '../../../tools/testing/tiny-models';
import { generateResponses } from '../src/generation/generate-responses';
import { compareBackends } from '../src/openai-http/parity';

const TOLERANCE = 1e-3;
const root = path.resolve(__dirname, '../../..');
const PROMPTS = ['What colour is the sky?', 'Two plus two?', 'Answer briefly.', 'Hi', 'Say something nice.', 'Name a fruit.'];

async function records(file: string): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const { value } of readJsonl(file)) out.push(value);
  return out;
}

async function main(): Promise<number> {
  const models = await tinyModels();
  const port = await freePort();
  const httpPort = await freePort();
  const server = spawnProcess(
    path.join(root, 'node_modules/.bin/tsx'),
    ['services/generator/src/main.ts'],
    { PORT: String(port), OPENAI_HTTP_PORT: String(httpPort), OPENAI_MODELS: `policy=${models.policy},reference=${models.reference}`, LOG_LEVEL: 'info', HOST: '127.0.0.1' },
    root,
  );
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'openai-check-'));
  const cache = causalModelCache(4);
  try {
    const baseUrl = await waitFor(
      async () => {
        if (server.child.exitCode !== null) throw new Error(`the generator exited ${server.child.exitCode}:\n${server.output()}`);
        const line = server.output().split('\n').find((l) => l.includes('"serving openai http"'));
        return line ? (JSON.parse(line) as { base_url: string }).base_url : undefined;
      },
      120_000,
      'the generator /v1 endpoint',
    );
    console.log(`generator /v1 at ${baseUrl} (gRPC 127.0.0.1:${port})`);
    let maxLogpDiff = 0;
    let mismatches: string[] = [];
    for (const name of ['policy', 'reference'] as const) {
      const onnx = await LanguageModel.load(models[name]);
      try {
        const remote = await OpenAiLanguageModel.load(models[name], { baseUrl, model: name });
        const params = { ...PAPER_SAMPLING, n: 4, temperature: 1, topP: 0.9, maxNewTokens: 24, seed: 2026n };
        const report = await compareBackends(onnx, remote, PROMPTS, params);
        console.log(`${name}: ${report.samples} samples, ${report.mismatches.length} differ; ${report.scored} sequences scored, max |Δ logp| ${report.maxLogpDiff.toExponential(3)} nats`);
        maxLogpDiff = Math.max(maxLogpDiff, report.maxLogpDiff);
        mismatches = mismatches.concat(report.mismatches.map((m) => `${name} ${m}`));
      } finally {
        await onnx.release();
      }
    }
    // The generator's Generate domain with ModelRef.openai set against without: the same responses artifact (greedy).
    const store = new ArtifactStore(path.join(work, 'store'));
    const job = (openai?: { baseUrl: string; model: string }) => ({
      model: { uri: models.policy, sha256: '', ...(openai ? { openai } : {}) },
      prompts: { kind: 'inline' as const, prompts: PROMPTS },
      params: { n: 1, topK: 0, maxNewTokens: 16, stop: [], seed: 0, greedy: true },
      shard: undefined,
      outputUri: '',
    });
    const viaOnnx = await records((await generateResponses(job(), { models: cache, store })).responses.path);
    const viaServer = await records((await generateResponses(job({ baseUrl, model: 'policy' }), { models: cache, store })).responses.path);
    const same = JSON.stringify(viaOnnx) === JSON.stringify(viaServer);
    console.log(`Generate job (greedy, ${PROMPTS.length} prompts): responses artifacts ${same ? 'identical' : 'DIFFER'}`);
    if (!same) mismatches.push('Generate job responses differ between model.onnx and model.openai');
    for (const m of mismatches) console.log(`mismatch: ${m}`);
    const ok = mismatches.length === 0 && maxLogpDiff <= TOLERANCE;
    console.log(JSON.stringify({ check: 'openai', max_logp_diff: maxLogpDiff }));
    return ok ? 0 : 1;
  } finally {
    await cache.clear();
    await server.stop('SIGTERM');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`openai-check failed: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  },
);
