// A RunEngine over in-memory executors, a temporary workspace and its own database, for the engine's tests: start a
// run and watch it, run it to the end, restart the coordinator on the same data, compare two runs' artifacts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JobState, Stage, type GenerateRequest, type JobSpec, type PreferenceJob, type Run } from '@alignment/contracts';
import { createLogger } from '@alignment/service-kit';
import { databasePath } from '../src/config';
import { RunEngine, RunStore, type EngineOptions, type Executors, type RunEvent } from '../src/run';
import { fakeExecutors, type FakeExecutors } from './in-memory-executors';
import { makeWorkspace, validSpec, type SpecPartial, type Workspace } from './run-fixtures';

const logger = createLogger('coordinator-test');
const workspaces: Workspace[] = [];
const stores: RunStore[] = [];

/** Closes every harness's database and removes its workspace (a test file's afterAll). */
export function closeHarnesses(): void {
  for (const store of stores.splice(0)) store.close();
  for (const ws of workspaces.splice(0)) ws.cleanup();
}

export interface Harness {
  ws: Workspace;
  dataDir: string;
  store: RunStore;
  fakes: FakeExecutors;
  engine: RunEngine;
  events: RunEvent[];
  /** A new coordinator on the same database and data directory (the old one must have stopped). */
  restart(): Harness;
}

/**
 * Engine options a test may set; automatic resumes are off unless it sets `autoResume`. `executors` replaces some
 * of the in-memory executors (e.g. a real LEARN executor against a fake Kubernetes API).
 */
export type HarnessOptions = Pick<EngineOptions, 'autoResume' | 'onFatal' | 'modelStoreUri'> & { executors?: Partial<Executors> };

export function harness(ws = makeWorkspace(), dataDir = path.join(ws.root, 'data'), options: HarnessOptions = {}): Harness {
  if (!workspaces.includes(ws)) workspaces.push(ws);
  const store = RunStore.open(databasePath(dataDir));
  stores.push(store);
  const fakes = fakeExecutors();
  const { executors, ...engineOptions } = options;
  const autoResume = options.autoResume ?? { budget: 0, backoffMs: 1, maxBackoffMs: 1 };
  const engine = new RunEngine({ store, dataDir, executors: { ...fakes, ...executors }, logger, ...engineOptions, autoResume });
  return { ws, dataDir, store, fakes, engine, events: [], restart: () => harness(ws, dataDir, options) };
}

export async function runToEnd(h: Harness, overrides: SpecPartial = {}, runId = 'run-1'): Promise<Run> {
  const { unsubscribe } = await startAndWatch(h, overrides, runId);
  await h.engine.settled(runId);
  unsubscribe();
  return h.engine.getRun(runId);
}

export async function startAndWatch(h: Harness, overrides: SpecPartial, runId: string) {
  const run = await h.engine.startRun({ runId, spec: validSpec(h.ws, overrides) });
  const watch = h.engine.watch(runId, (e) => h.events.push(e));
  return { run, unsubscribe: watch.unsubscribe };
}

/** sha256 of every stage output, by "round stage name" — what two runs must agree on to have the same artifacts. */
export function artifactShas(h: Harness, runId: string): Record<string, string> {
  const shas: Record<string, string> = {};
  // The round directories hold the stages (a run's directory also has coordinator/ events and maybe pruned.json).
  for (const round of fs.readdirSync(path.join(h.dataDir, 'runs', runId)).filter((name) => /^round-\d+$/.test(name))) {
    for (const stage of fs.readdirSync(path.join(h.dataDir, 'runs', runId, round))) {
      const file = path.join(h.dataDir, 'runs', runId, round, stage, 'stage.json');
      if (!fs.existsSync(file)) continue;
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
      for (const [name, output] of Object.entries(manifest.outputs as Record<string, { sha256: string }>)) shas[`${round} ${stage} ${name}`] = output.sha256;
    }
  }
  return shas;
}

/** "round STAGE" of every stage that started executing, in order. */
export const stageRuns = (events: RunEvent[]) =>
  events.filter((e): e is Extract<RunEvent, { kind: 'stage' }> => e.kind === 'stage' && e.state === JobState.JOB_STATE_RUNNING).map((e) => `${e.round} ${Stage[e.stage]}`);

/** A LEARN job's preference-training part (undefined! for an SFT job, which the rounds never send). */
export const preferenceOf = (spec: JobSpec): PreferenceJob => (spec.kind?.$case === 'preference' ? spec.kind.value : undefined!);

/** Run `runId`'s GENERATE requests from the generator's call `from` on: its calls less EVALUATE's (the evaluation prompts). */
export function roundGenerateCalls(h: Harness, runId: string, from = 0): GenerateRequest[] {
  const evaluationPrompts = h.engine.getRun(runId).spec!.evaluation!.prompts!.uri;
  return h.fakes.generate.calls.slice(from).filter((c) => c.prompts?.$case === 'promptSet' && c.prompts.value.uri !== evaluationPrompts);
}
