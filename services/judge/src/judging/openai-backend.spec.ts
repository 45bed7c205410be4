// The judge with ModelRef.openai: sequence log-probs from an OpenAI-compatible server (here the generator's own
// /v1 endpoint, started as its own process the way it is deployed) instead of ONNX Runtime in the judge.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArtifactStore, readJsonl } from '@alignment/artifacts';
import { JudgeMethod, JudgePairsRequest, PromptEncoding, UnfinishedPairs, ModelRef } from '@alignment/contracts';
import { causalModelCache, ModelCache, RewardModel } from '@alignment/lm';
import { freePort, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { tinyModels, TINY_MODELS_TIMEOUT_MS, type TinyModels } from '../../../../tools/testing/tiny-models';
import { toJudgeJob } from '../service';
import { judgePairs, type JudgeDeps, type LabelledPair } from './judge-pairs';
import { scoreItems } from './score-sequences';

const root = path.resolve(__dirname, '../../../..');
let models: TinyModels;
let generator: SpawnedProcess;
let baseUrl: string;
let dir: string;
let deps: JudgeDeps;

beforeAll(async () => {
  models = await tinyModels();
  const env = { PORT: String(await freePort()), OPENAI_HTTP_PORT: String(await freePort()), OPENAI_MODELS: `pi=${models.policy},ref=${models.reference}`, LOG_LEVEL: 'info' };
  generator = spawnProcess(path.join(root, 'node_modules/.bin/tsx'), ['services/generator/src/main.ts'], env, root);
  baseUrl = await waitFor(
    async () => {
      const line = generator.output().split('\n').find((l) => l.includes('"serving openai http"'));
      return line ? (JSON.parse(line) as { base_url: string }).base_url : undefined;
    },
    90_000,
    'the generator /v1 endpoint',
  );
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'judge-openai-'));
  deps = { languageModels: causalModelCache(4), rewardModels: new ModelCache((d) => RewardModel.load(d), 1), store: new ArtifactStore(path.join(dir, 'store')) };
}, TINY_MODELS_TIMEOUT_MS);
afterAll(async () => {
  await deps?.languageModels.clear();
  await generator?.stop('SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function pairs(file: string): Promise<LabelledPair[]> {
  const out: LabelledPair[] = [];
  for await (const { value } of readJsonl(file)) out.push(value as LabelledPair);
  return out;
}

it('ScoreSequences through the server equals PyTorch within 1e-3 nats', async () => {
  const refs = models.values.scores.reference;
  const items = refs.map((r) => ({ prompt: r.prompt, response: r.response }));
  const scores = await scoreItems(
    { model: { uri: models.reference, sha256: '', openai: { baseUrl, model: 'ref' } }, items, perToken: true, promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE },
    deps.languageModels,
  );
  scores.forEach((s, i) => {
    expect(Math.abs(s.logp - refs[i].logp)).toBeLessThan(1e-3);
    expect(s.tokenLogps).toHaveLength(refs[i].response_ids.length);
  });
});

it('JudgePairs (SPA implicit reward) labels the same pairs with the same scores whether the models run here or on the server', async () => {
  const file = path.join(dir, 'responses.jsonl');
  const records = models.values.scores.policy.slice(0, 4).map((s, i) => ({ prompt_index: i, prompt: s.prompt, responses: [s.response, `${s.response} Indeed.`], finish_reasons: ['stop', 'length'] }));
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const request = (policy: Parameters<typeof ModelRef.fromPartial>[0], reference: Parameters<typeof ModelRef.fromPartial>[0]) =>
    toJudgeJob(
      JudgePairsRequest.fromPartial({
        method: JudgeMethod.JUDGE_METHOD_SPA_IMPLICIT,
        responses: { uri: file },
        spaImplicit: { policy: ModelRef.fromPartial(policy), reference: ModelRef.fromPartial(reference) },
        unfinishedPairs: UnfinishedPairs.UNFINISHED_PAIRS_KEEP,
      }),
    );
  const local = await pairs((await judgePairs(request({ onnx: { uri: models.policy } }, { onnx: { uri: models.reference } }), deps)).pairs.path);
  const remote = await pairs(
    (await judgePairs(request({ onnx: { uri: models.policy }, openai: { baseUrl, model: 'pi' } }, { onnx: { uri: models.reference }, openai: { baseUrl, model: 'ref' } }), deps)).pairs.path,
  );
  expect(local.length).toBe(4);
  expect(remote.map((p) => [p.prompt, p.chosen, p.rejected])).toEqual(local.map((p) => [p.prompt, p.chosen, p.rejected]));
  remote.forEach((p, i) => {
    expect(Math.abs(p.chosen_score - local[i].chosen_score)).toBeLessThan(1e-3);
    expect(Math.abs(p.rejected_score - local[i].rejected_score)).toBeLessThan(1e-3);
  });
  // Swapping the served models is noticed: the implicit reward changes sign.
  const swapped = await pairs(
    (await judgePairs(request({ onnx: { uri: models.policy }, openai: { baseUrl, model: 'ref' } }, { onnx: { uri: models.reference }, openai: { baseUrl, model: 'pi' } }), deps)).pairs.path,
  );
  expect(swapped.map((p) => p.chosen)).toEqual(local.map((p) => p.rejected));
});
