/**
 * `npm run chaos -- --runs N`: self-healing runs (issue 12). It starts the five services with `npm run stack` (a
 * temporary DATA_DIR, free loopback ports), runs the W-DRO micro run of examples/micro-run-wdro.json once
 * undisturbed for reference, then N more; in each, one service chosen from the seed is killed (kill -9, then
 * restarted as an orchestrator would) or paused (SIGSTOP past its clients' retry windows, then SIGCONT) at a stage
 * chosen from the seed (plan.ts). After the initial StartRun the tool does nothing to the run: the coordinator's
 * automatic resumes must heal it. Each run must end SUCCEEDED with the reference's outputs (sha256) and metrics, the
 * same stage and metric rows, and no orphans in its stage directories (checks.ts). One line per run on stderr; the
 * last stdout line is one JSON object:
 *
 *   {"check":"chaos","runs":N,"succeeded":N,"identical":N,"human_steps":0,...}
 *
 * Exit 0 when every run passed every check, 1 otherwise, 2 for bad options.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { grpcurl } from '@alignment/service-kit/testing';
import { ROOT, getRun, waitFinished, type RunView } from '../stack/harness';
import { differences, snapshotRun, type RunSnapshot } from './checks';
import { ChaosStack } from './faults';
import { USAGE, UsageError, parseChaosOptions, type ChaosOptions } from './options';
import { describeFault, planFaults, type Fault } from './plan';

const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);
const RUN_TIMEOUT_MS = 600_000;

/** Everything the tool asks of the coordinator besides reading: only StartRun, once per run. */
class RunClient {
  startRuns = 0;
  /** Calls beyond one StartRun per run (a person resuming or cancelling it). None are made; counted, not assumed. */
  humanSteps = 0;
  private readonly started = new Set<string>();

  constructor(
    private readonly address: string,
    private readonly dataDir: string,
  ) {}

  async startRun(runId: string): Promise<void> {
    if (this.started.has(runId)) this.humanSteps++;
    this.started.add(runId);
    this.startRuns++;
    const text = fs.readFileSync(path.join(ROOT, 'examples', 'micro-run-wdro.json'), 'utf8').split('.data/micro/').join(`${this.dataDir}/micro/`);
    const request = { ...JSON.parse(text), run_id: runId };
    const result = await grpcurl(['-plaintext', '-d', '@', this.address, 'alignment.v1.Coordinator/StartRun'], JSON.stringify(request));
    if (result.code !== 0) throw new Error(`StartRun ${runId} failed: ${result.stderr}${result.stdout}`);
  }
}

interface RunResult {
  runId: string;
  state: string;
  automaticResumes: number;
  problems: string[];
}

/** The run's own invariants, reference or not: SUCCEEDED, every output re-hashes, each stage reported once, no orphans. */
function ownProblems(run: RunView, snap: RunSnapshot): string[] {
  const problems = [...snap.problems];
  if (run.state !== 'JOB_STATE_SUCCEEDED') problems.push(`ended ${run.state}: ${run.error ?? ''}`);
  const stages = (run.stages ?? []).map((s) => `${s.round ?? 0} ${s.stage}`);
  const repeated = stages.filter((s, i) => stages.indexOf(s) !== i);
  if (repeated.length > 0) problems.push(`stages reported more than once: ${repeated.join(', ')}`);
  if (snap.orphans.length > 0) problems.push(`orphans: ${snap.orphans.join(', ')}`);
  return problems;
}

/** The first few problems (a run that ended early lost every later output: listing them all says nothing more). */
function brief(problems: string[], most = 6): string {
  return problems.slice(0, most).join('; ') + (problems.length > most ? `; ... ${problems.length - most} more` : '');
}

async function finish(stack: ChaosStack, dataDir: string, runId: string, reference?: RunSnapshot): Promise<RunResult & { snapshot: RunSnapshot }> {
  const run = await waitFinished(stack.coordinatorAddress(), runId, RUN_TIMEOUT_MS);
  const snapshot = await snapshotRun(dataDir, runId);
  const problems = ownProblems(run, snapshot);
  if (reference) problems.push(...differences(reference, snapshot));
  const resumes = Number((run as RunView & { automaticResumes?: number }).automaticResumes ?? 0);
  return { runId, state: run.state, automaticResumes: resumes, problems, snapshot };
}

/**
 * Waits for the fault's stage to start (its directory appears), then the fault's fraction of the stage's duration in
 * the undisturbed run, then does it. Resolves with "<delay> ms in, mid-stage" (no stage.json yet) or "..., after the
 * stage", or 'no fault' for a run that ended first (it failed before that stage; its checks say so).
 */
async function disturb(stack: ChaosStack, dataDir: string, runId: string, fault: Fault, reference: RunSnapshot): Promise<string> {
  const dir = path.join(dataDir, 'runs', runId, `round-${fault.at.round}`, fault.at.stage.toLowerCase());
  const until = Date.now() + RUN_TIMEOUT_MS;
  for (let poll = 1; !fs.existsSync(dir); poll++) {
    if (Date.now() > until) throw new Error(`round ${fault.at.round} ${fault.at.stage} of ${runId} did not start within ${RUN_TIMEOUT_MS / 1000} s`);
    const state = poll % 200 === 0 ? await getRun(stack.coordinatorAddress(), runId).then((r) => r.state, () => 'unknown') : 'unknown';
    if (!['JOB_STATE_RUNNING', 'JOB_STATE_PENDING', 'unknown'].includes(state)) {
      return 'no fault';
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const delayMs = Math.round(fault.fraction * (reference.durationsMs[`${fault.at.round} ${fault.at.stage}`] ?? 0));
  await new Promise((r) => setTimeout(r, delayMs));
  const ended = fs.existsSync(path.join(dir, 'stage.json'));
  await stack.fault(fault.service, fault.action);
  return `${delayMs} ms in, ${ended ? 'after the stage' : 'mid-stage'}`;
}

async function main(o: ChaosOptions): Promise<number> {
  const started = Date.now();
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'alignment-chaos-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const faults = planFaults(o.seed, o.runs);
  log(`seed '${o.seed}': ${o.runs} disturbed run${o.runs === 1 ? '' : 's'}; data dir ${dataDir}`);
  const stack = await ChaosStack.start(dataDir);
  log(`services: ${stack.describeGroups()}`);
  const client = new RunClient(stack.coordinatorAddress(), dataDir);
  const results: RunResult[] = [];
  /** Faults done while their stage was still running (the others hit the stages after it). */
  let midStage = 0;
  let failed = false;
  try {
    await client.startRun('chaos-reference');
    const reference = await finish(stack, dataDir, 'chaos-reference');
    log(`reference: ${reference.state}, ${Object.keys(reference.snapshot.outputs).length} outputs, ${Object.keys(reference.snapshot.metrics).length} metrics${reference.problems.length ? `; ${reference.problems.join('; ')}` : ''}`);
    if (reference.problems.length > 0) throw new Error(`the undisturbed run itself failed its checks: ${reference.problems.join('; ')}`);
    for (const fault of faults) {
      const runId = `chaos-${fault.run}`;
      const t0 = Date.now();
      await client.startRun(runId);
      const when = await disturb(stack, dataDir, runId, fault, reference.snapshot);
      if (when.endsWith('mid-stage')) midStage++;
      if (fault.action === 'kill') log(`restarted: ${stack.describeGroups()}`);
      const result = await finish(stack, dataDir, runId, reference.snapshot);
      results.push(result);
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      log(`run ${fault.run}/${o.runs} ${runId}: ${describeFault(fault)} (${when}): ${result.state}, automatic resumes ${result.automaticResumes}, ${seconds} s, ${result.problems.length === 0 ? 'identical, no orphans' : `FAILED: ${brief(result.problems)}`}`);
    }
  } catch (error) {
    failed = true;
    log(`error: ${(error as Error).stack ?? (error as Error).message}`);
  } finally {
    await stack.stop().catch((error: Error) => {
      failed = true;
      log(`stopping the stack: ${error.message}`);
    });
  }
  const succeeded = results.filter((r) => r.state === 'JOB_STATE_SUCCEEDED').length;
  const identical = results.filter((r) => r.problems.length === 0).length;
  failed = failed || identical < o.runs || client.humanSteps > 0;
  if (!failed && o.dataDir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  else log(`data dir kept: ${dataDir}`);
  const summary = {
    check: 'chaos',
    runs: o.runs,
    succeeded,
    identical,
    human_steps: client.humanSteps,
    seed: o.seed,
    restarts: stack.restarts,
    automatic_resumes: results.reduce((s, r) => s + r.automaticResumes, 0),
    faults_mid_stage: midStage,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return failed ? 1 : 0;
}

let options: ChaosOptions | 'help';
try {
  options = parseChaosOptions(process.argv.slice(2), process.env.INIT_CWD || process.cwd());
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
main(options).then(
  (status) => process.exit(status),
  (error: Error) => {
    log(`error: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
