/**
 * End to end: `npm run stack` with a temporary DATA_DIR and free ports, every service exporting its spans as jsonl
 * to one shared file. The micro runs of examples/micro-run.json (SPA) and examples/micro-run-wdro.json (W-DRO: the
 * trainer calls the DRO solver), started with grpcurl, run to JOB_STATE_SUCCEEDED; then a third run whose
 * coordinator is killed (kill -9, its whole process group) as soon as round 1 starts, restarted alone with
 * `npx nx run coordinator:serve`, and still completes. Then the spans of all five services: one trace per run,
 * rooted in the coordinator, a span per stage, every service's SERVER span under the stage that called it, the DRO
 * solver's under the trainer's job, and the resumed execution in the same trace. Finally SIGTERM to the stack
 * leaves no service process behind.
 *
 * Cost (2 cores): ~15 s to build the micro inputs (tiny Llama + ONNX export; the torch import dominates), ~5 s for
 * the services to listen, ~20 s for the two micro runs side by side (3 trainer jobs, 5 evaluations each), ~10 s to
 * restart the coordinator through Nx and finish the third: about 1 min in all, 5 min at most (the timeouts below).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SpanRecord } from '@alignment/service-kit';
import { grpcurl, spawnProcess, waitFor, type SpawnedProcess } from '@alignment/service-kit/testing';
import { ROOT, getRun as getRunAt, groupAlive, startStack, stopStack, waitFinished as waitFinishedAt, type RunView, type Stack } from './harness';

jest.setTimeout(240_000);

let dataDir: string;
let spansFile: string;
let stack: Stack | undefined;
let coordinator: SpawnedProcess | undefined;
/** The runs that ended, by id (GetRun's view: state, trace_id, rounds). */
const finished = new Map<string, RunView>();

const coordinatorAddress = () => stack!.address('coordinator');
const getRun = (runId: string) => getRunAt(coordinatorAddress(), runId);
const waitFinished = (runId: string, timeoutMs: number) => waitFinishedAt(coordinatorAddress(), runId, timeoutMs);
const tracingEnv = () => ({ OTEL_TRACES_EXPORTER: 'jsonl', OTEL_TRACES_FILE: spansFile });

/** An examples/ RunSpec request with its `.data/micro/` paths moved to this test's DATA_DIR. */
function microRequest(example: string, runId: string): string {
  const text = fs.readFileSync(path.join(ROOT, 'examples', example), 'utf8').split('.data/micro/').join(`${dataDir}/micro/`);
  const request = JSON.parse(text);
  request.run_id = runId;
  return JSON.stringify(request);
}

async function startRun(runId: string, example = 'micro-run.json'): Promise<void> {
  const result = await grpcurl(['-plaintext', '-d', '@', coordinatorAddress(), 'alignment.v1.Coordinator/StartRun'], microRequest(example, runId));
  if (result.code !== 0) throw new Error(`StartRun failed: ${result.stderr}${result.stdout}`);
  expect(JSON.parse(result.stdout).run.runId).toBe(runId);
}

function expectEvaluated(run: RunView): void {
  expect({ state: run.state, error: run.error }).toEqual({ state: 'JOB_STATE_SUCCEEDED', error: undefined });
  const rounds = (run.rounds ?? []).map((r) => r.round ?? 0).sort();
  expect(rounds).toEqual([0, 1, 2]);
  for (const round of run.rounds ?? []) {
    expect(round.metrics).toEqual(
      expect.objectContaining({
        'eval/win_rate': expect.any(Number),
        'eval/win_rate_ci_low': expect.any(Number),
        'eval/win_rate_ci_high': expect.any(Number),
        'eval/gold_reward': expect.any(Number),
      }),
    );
    expect(round.metrics['eval/comparisons']).toBe(16); // 8 held-out prompts x samples_per_prompt 2
  }
  expect(run.traceId).toMatch(/^[0-9a-f]{32}$/);
  finished.set(run.runId, run);
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-e2e-'));
  spansFile = path.join(dataDir, 'spans.jsonl');
  // STACK_KEEP_GOING: the coordinator is killed on purpose below.
  stack = await startStack(dataDir, { STACK_KEEP_GOING: '1', ...tracingEnv() });
});

afterAll(async () => {
  await coordinator?.stop('SIGTERM');
  if (stack) await stopStack(stack);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the micro runs of examples/micro-run.json (SPA) and micro-run-wdro.json (W-DRO) succeed with eval metrics in every round', async () => {
  for (const file of ['model/checkpoint/config.json', 'model/onnx/model.onnx', 'seed_pairs.jsonl', 'round-1.jsonl', 'round-2.jsonl', 'eval.jsonl']) {
    expect(fs.existsSync(path.join(dataDir, 'micro', file))).toBe(true);
  }
  await Promise.all([startRun('micro'), startRun('micro-wdro', 'micro-run-wdro.json')]);
  const [spa, wdro] = await Promise.all([waitFinished('micro', 150_000), waitFinished('micro-wdro', 150_000)]);
  expectEvaluated(spa);
  expectEvaluated(wdro);
  // The W-DRO rounds report the adversary (the trainer's dro/* metrics); SPA's do not.
  for (const round of wdro.rounds!.filter((r) => (r.round ?? 0) > 0)) {
    expect(Object.keys(round.metrics).filter((k) => k.startsWith('dro/')).length).toBeGreaterThan(0);
  }
  expect(Object.keys(spa.rounds!.find((r) => r.round === 1)!.metrics).filter((k) => k.startsWith('dro/'))).toEqual([]);
  expect(spa.traceId).not.toBe(wdro.traceId);
  // ListRuns sees them.
  const list = await grpcurl(['-plaintext', '-d', '{}', coordinatorAddress(), 'alignment.v1.Coordinator/ListRuns']);
  expect(list.stdout).toContain('"runId": "micro"');
  expect(list.stdout).toContain('"runId": "micro-wdro"');
});

test('a run survives kill -9 of the coordinator mid-run and a restart of the coordinator alone', async () => {
  const runId = 'micro-kill';
  await startRun(runId);
  // As soon as round 1 has started (its stage directory exists), kill the coordinator's whole process group.
  const round1 = path.join(dataDir, 'runs', runId, 'round-1');
  await waitFor(async () => fs.existsSync(round1), 120_000, 'round 1 to start');
  const pgid = stack!.groups().get('coordinator')!;
  expect(pgid).toBeGreaterThan(0);
  process.kill(-pgid, 'SIGKILL');
  await waitFor(async () => !groupAlive(pgid), 10_000, 'the coordinator to die');
  const before = await getRun(runId).catch(() => undefined);
  expect(before).toBeUndefined(); // nothing answers on the coordinator's port now

  coordinator = spawnProcess(
    'npx',
    ['nx', 'run', 'coordinator:serve', '--outputStyle=stream'],
    {
      DATA_DIR: dataDir,
      PORT: String(stack!.ports.coordinator),
      GENERATOR_ADDRESS: `localhost:${stack!.ports.generator}`,
      JUDGE_ADDRESS: `localhost:${stack!.ports.judge}`,
      TRAINER_ADDRESS: `localhost:${stack!.ports.trainer}`,
      ...tracingEnv(),
      NX_DAEMON: 'false',
      NX_TUI: 'false',
      LOG_LEVEL: 'info',
    },
    ROOT,
  );
  await waitFor(async () => (await getRun(runId)).runId === runId, 120_000, 'the restarted coordinator to answer GetRun').catch((error: Error) => {
    throw new Error(`${error.message}\n--- coordinator output ---\n${coordinator!.output().slice(-4000)}`);
  });
  const ready = await waitFor(
    async () => coordinator!.output().split('\n').find((l) => l.includes('"coordinator ready"')),
    20_000,
    'the restarted coordinator to log that it is ready',
  );
  expect(ready).toContain(`"resumed":["${runId}"]`);
  const run = await waitFinished(runId, 120_000);
  expectEvaluated(run);
});

// ------------------------------------------------------------------------------------------------------ traces

const SERVICES = ['coordinator', 'generator', 'judge', 'dro-solver', 'trainer'];
const ROUND_STAGES = ['GENERATE', 'JUDGE', 'LEARN', 'EVALUATE'];
/** Every stage of a 2-round run with evaluation, as "<round> <STAGE>". */
const ALL_STAGES = ['0 LEARN', '0 EVALUATE', ...[1, 2].flatMap((r) => ROUND_STAGES.map((s) => `${r} ${s}`))].sort();
/** The stages whose spans may call a service's method. */
const CALLED_FROM: Record<string, string[]> = {
  'alignment.v1.Generator/Generate': ['GENERATE', 'EVALUATE'],
  'alignment.v1.Judge/JudgePairs': ['JUDGE', 'EVALUATE'],
  'alignment.v1.Trainer/StartJob': ['LEARN'],
  'alignment.v1.Trainer/WatchJob': ['LEARN'],
};

function readSpans(): SpanRecord[] {
  return fs
    .readFileSync(spansFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as SpanRecord);
}

/** The one SpanRecord shape, whichever service (TypeScript or Python) wrote it. */
function expectSpanRecord(r: SpanRecord): void {
  expect(Object.keys(r).sort()).toEqual(
    ['attributes', 'end_unix_nanos', 'kind', 'name', 'parent_span_id', 'service', 'span_id', 'start_unix_nanos', 'status', 'trace_id'],
  );
  expect(r.trace_id).toMatch(/^[0-9a-f]{32}$/);
  expect(r.span_id).toMatch(/^[0-9a-f]{16}$/);
  if (r.parent_span_id !== null) expect(r.parent_span_id).toMatch(/^[0-9a-f]{16}$/);
  expect(SERVICES).toContain(r.service);
  expect(['SERVER', 'CLIENT', 'INTERNAL', 'PRODUCER', 'CONSUMER']).toContain(r.kind);
  expect(['UNSET', 'OK', 'ERROR']).toContain(r.status);
  expect(Number.isInteger(r.start_unix_nanos) && Number.isInteger(r.end_unix_nanos)).toBe(true);
  expect(r.end_unix_nanos).toBeGreaterThanOrEqual(r.start_unix_nanos);
  expect(r.attributes !== null && typeof r.attributes === 'object' && !Array.isArray(r.attributes)).toBe(true);
}

/** One run's spans (one trace), with parent links. */
class RunTrace {
  readonly byId: Map<string, SpanRecord>;
  constructor(readonly spans: SpanRecord[]) {
    this.byId = new Map(spans.map((s) => [s.span_id, s]));
  }
  /** Parent first, up to the first span whose parent is not in the trace (exported). Throws on a cycle. */
  ancestors(span: SpanRecord): SpanRecord[] {
    const chain: SpanRecord[] = [];
    for (let p = span.parent_span_id && this.byId.get(span.parent_span_id); p; p = p.parent_span_id && this.byId.get(p.parent_span_id)) {
      if (p === span || chain.includes(p)) throw new Error(`span ${span.service} ${span.name} ${span.span_id} is its own ancestor`);
      chain.push(p);
    }
    return chain;
  }
  descendants(span: SpanRecord): SpanRecord[] {
    return this.spans.filter((s) => this.ancestors(s).includes(span));
  }
  stageSpans(): SpanRecord[] {
    return this.spans.filter((s) => s.service === 'coordinator' && s.name.startsWith('coordinator.stage '));
  }
  /** The coordinator stage span a span runs under. */
  stageOf(span: SpanRecord): SpanRecord | undefined {
    return this.ancestors(span).find((a) => a.service === 'coordinator' && a.name.startsWith('coordinator.stage '));
  }
  /** The generator's, judge's and trainer's SERVER spans (the calls of the coordinator). */
  serviceCalls(): SpanRecord[] {
    return this.spans.filter((s) => s.kind === 'SERVER' && ['generator', 'judge', 'trainer'].includes(s.service));
  }
}

const stageKey = (s: SpanRecord) => `${s.attributes['stage.round']} ${s.attributes['stage.name']}`;

/**
 * A service's SERVER span is the child of the coordinator's CLIENT span of the same call, under a stage span that
 * makes that call; the trainer's job runs under its StartJob call; the DRO solver serves calls of a trainer job.
 */
function expectCallTree(t: RunTrace, s: SpanRecord): void {
  const parent = s.parent_span_id ? t.byId.get(s.parent_span_id) : undefined;
  const where = `${s.service} ${s.name} (${s.span_id})`;
  if (['generator', 'judge', 'trainer'].includes(s.service) && s.kind === 'SERVER') {
    expect({ where, parent: parent && [parent.service, parent.kind, parent.name] }).toEqual({ where, parent: ['coordinator', 'CLIENT', s.name] });
    const stage = t.stageOf(s);
    expect({ where, stage: stage && CALLED_FROM[s.name]?.includes(String(stage.attributes['stage.name'])) }).toEqual({ where, stage: true });
  }
  if (s.service === 'trainer' && s.name.startsWith('trainer.job ')) {
    expect({ where, parent: parent && [parent.service, parent.kind, parent.name] }).toEqual({ where, parent: ['trainer', 'SERVER', 'alignment.v1.Trainer/StartJob'] });
  }
  if (s.service === 'dro-solver') {
    expect({ where, parent: parent && [parent.service, parent.kind, parent.name] }).toEqual({ where, parent: ['trainer', 'CLIENT', 'alignment.v1.DroSolver/Solve'] });
    expect({ where, underJob: t.ancestors(s).some((a) => a.service === 'trainer' && a.name.startsWith('trainer.job ')) }).toEqual({ where, underJob: true });
  }
}

test('every service exports the same span records, and each run is one trace from the coordinator to the DRO solver', async () => {
  expect([...finished.keys()].sort()).toEqual(['micro', 'micro-kill', 'micro-wdro']);
  const traceOf = (runId: string) => finished.get(runId)!.traceId!;
  // The runs' last spans end just after GetRun reports them finished: wait for the roots (the killed run's root span
  // died with its coordinator; its resumed execution's span ends last).
  await waitFor(
    async () => {
      const spans = readSpans();
      const ended = (runId: string, name: string) => spans.some((s) => s.trace_id === traceOf(runId) && s.name === name);
      return ended('micro', 'coordinator.run') && ended('micro-wdro', 'coordinator.run') && ended('micro-kill', 'coordinator.run.resume');
    },
    10_000,
    'the runs’ root spans to be exported',
  );
  const spans = readSpans();
  spans.forEach(expectSpanRecord);
  // Span ids are unique (64 random bits each): none repeats, none is its own parent.
  const repeated = spans.filter((s, i) => spans.findIndex((o) => o.span_id === s.span_id) !== i);
  expect(repeated.map((s) => `${s.service} ${s.name} ${s.span_id}`)).toEqual([]);
  expect(new Set(spans.map((s) => s.service))).toEqual(new Set(SERVICES));

  // One trace per run: every span of the services is in one of the three runs' traces, and every coordinator span
  // of a run carries that run's trace id. The rest are grpcurl's own calls to the Coordinator API (each its own
  // root: grpcurl sends no traceparent).
  const runTraces = new Set([...finished.values()].map((r) => r.traceId!));
  expect(runTraces.size).toBe(3);
  for (const s of spans.filter((s) => !runTraces.has(s.trace_id))) {
    expect({ span: [s.service, s.kind, s.name.split('/')[0], s.parent_span_id] }).toEqual({ span: ['coordinator', 'SERVER', 'alignment.v1.Coordinator', null] });
  }
  for (const s of spans.filter((s) => typeof s.attributes['run.id'] === 'string')) {
    expect({ run: s.attributes['run.id'], name: s.name, trace: s.trace_id }).toEqual({ run: s.attributes['run.id'], name: s.name, trace: traceOf(String(s.attributes['run.id'])) });
  }

  // The two uninterrupted runs: a whole tree under the coordinator's root span.
  for (const runId of ['micro', 'micro-wdro']) {
    const t = new RunTrace(spans.filter((s) => s.trace_id === traceOf(runId)));
    const roots = t.spans.filter((s) => s.parent_span_id === null);
    expect(roots.map((s) => [s.service, s.name, s.attributes['run.id']])).toEqual([['coordinator', 'coordinator.run', runId]]);
    const root = roots[0];
    expect(t.spans.filter((s) => s.parent_span_id !== null && !t.byId.has(s.parent_span_id))).toEqual([]); // nothing missing
    // A span per stage, each once, under the root.
    const stages = t.stageSpans();
    expect(stages.map(stageKey).sort()).toEqual(ALL_STAGES);
    expect(stages.every((s) => s.parent_span_id === root.span_id)).toBe(true);
    // The services' spans hang under the stages that called them, and every stage called its services.
    t.spans.forEach((s) => expectCallTree(t, s));
    for (const stage of stages) {
      const called = t.descendants(stage).filter((s) => s.kind === 'SERVER' || s.name.startsWith('trainer.job '));
      const names = new Set(called.map((s) => `${s.service} ${s.name}`));
      const expected = {
        GENERATE: ['generator alignment.v1.Generator/Generate'],
        JUDGE: ['judge alignment.v1.Judge/JudgePairs'],
        LEARN: ['trainer alignment.v1.Trainer/StartJob', 'trainer alignment.v1.Trainer/WatchJob', 'trainer trainer.job preference'],
        EVALUATE: ['generator alignment.v1.Generator/Generate', 'judge alignment.v1.Judge/JudgePairs'],
      }[String(stage.attributes['stage.name'])]!;
      expect({ stage: stageKey(stage), called: expected.filter((n) => names.has(n)) }).toEqual({ stage: stageKey(stage), called: expected });
      // The DRO solver: under the W-DRO rounds' trainer jobs only (round 0 is DPO; SPA never calls it).
      const solves = called.filter((s) => s.service === 'dro-solver' && s.name === 'alignment.v1.DroSolver/Solve');
      const wdroLearn = runId === 'micro-wdro' && stage.attributes['stage.name'] === 'LEARN' && stage.attributes['stage.round'] !== 0;
      expect({ stage: stageKey(stage), solves: solves.length > 0 }).toEqual({ stage: stageKey(stage), solves: wdroLearn });
    }
  }

  // The killed run: the spans before the kill and the resumed execution's share the trace and the root span.
  const t = new RunTrace(spans.filter((s) => s.trace_id === traceOf('micro-kill')));
  const resumes = t.spans.filter((s) => s.name === 'coordinator.run.resume');
  expect(resumes.map((s) => [s.service, s.attributes['run.id']])).toEqual([['coordinator', 'micro-kill']]);
  const [resume] = resumes;
  const rootSpanId = resume.parent_span_id;
  expect(rootSpanId).toMatch(/^[0-9a-f]{16}$/);
  const stages = t.stageSpans();
  const beforeKill = stages.filter((s) => s.parent_span_id === rootSpanId);
  const afterRestart = stages.filter((s) => s.parent_span_id === resume.span_id);
  expect(beforeKill.length + afterRestart.length).toBe(stages.length);
  // Round 0 before the kill; the restart skips it (verified) and executes what was left: round 1's GENERATE, cut
  // short by the kill (its span never ended), unless it had just finished, and everything after it.
  expect(beforeKill.map(stageKey).filter((k) => k.startsWith('0 ')).sort()).toEqual(['0 EVALUATE', '0 LEARN']);
  expect(afterRestart.map(stageKey).filter((k) => k.startsWith('0 '))).toEqual([]);
  expect([...new Set([...beforeKill, ...afterRestart].map(stageKey))].sort()).toEqual(ALL_STAGES);
  // Everything the services did after the restart is under the resumed execution.
  const afterResume = t.spans.filter((s) => s.start_unix_nanos > resume.start_unix_nanos && s.service !== 'coordinator');
  expect(afterResume.length).toBeGreaterThan(0);
  for (const s of afterResume) {
    expect({ span: `${s.service} ${s.name}`, underResume: t.ancestors(s).includes(resume) }).toEqual({ span: `${s.service} ${s.name}`, underResume: true });
    expectCallTree(t, s);
  }
});
