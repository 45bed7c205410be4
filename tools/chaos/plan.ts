/**
 * The faults of `npm run chaos`, drawn from the seed: for disturbed run i, a stage of the micro run, a service that
 * stage uses (the coordinator, which drives every stage, or the service it calls), how far into that stage (a
 * fraction of the time it took in the undisturbed run), and what happens to the service there — kill -9 (then a restart, as an orchestrator
 * restarts a crashed container) or SIGSTOP for PAUSE_MS, then SIGCONT. The same seed gives the same faults.
 */
import { createHash } from 'node:crypto';
import { Xoshiro128StarStar } from '@alignment/random';
import type { StackServiceName } from '../stack/services';

export type FaultAction = 'kill' | 'pause';

/** A stage of the micro run (examples/micro-run-wdro.json: 2 rounds, evaluated): round 0 LEARN and EVALUATE, then four per round. */
export interface PlannedStage {
  round: number;
  /** As in the stage directory's name and stage.json, upper case: GENERATE, JUDGE, LEARN, EVALUATE. */
  stage: string;
}

/**
 * The services a stage of the W-DRO micro run calls besides the coordinator: round 0's LEARN is DPO on the seed
 * pairs (no DRO solver); the rounds' LEARN is W-DRO (the trainer calls the DRO solver every step).
 */
export function stageServices(at: PlannedStage): StackServiceName[] {
  switch (at.stage) {
    case 'GENERATE':
      return ['coordinator', 'generator'];
    case 'JUDGE':
      return ['coordinator', 'judge'];
    case 'EVALUATE':
      return ['coordinator', 'generator', 'judge'];
    case 'LEARN':
      return at.round === 0 ? ['coordinator', 'trainer'] : ['coordinator', 'trainer', 'dro-solver'];
    default:
      throw new Error(`not a stage of the micro run: ${at.stage}`);
  }
}

export const MICRO_STAGES: readonly PlannedStage[] = [
  { round: 0, stage: 'LEARN' },
  { round: 0, stage: 'EVALUATE' },
  ...[1, 2].flatMap((round) => ['GENERATE', 'JUDGE', 'LEARN', 'EVALUATE'].map((stage) => ({ round, stage }))),
];

/**
 * How long a paused service stays stopped: past its clients' retry windows — the coordinator's UNAVAILABLE retries
 * (RETRY_BACKOFF_MS 500 doubling over UNAVAILABLE_ATTEMPTS 6 calls: 7.5 s) and the trainer's DroSolver retries
 * (about 3 s) — and past the DroSolver call's 10 s deadline.
 */
export const PAUSE_MS = 12_000;

export interface Fault {
  /** 1-based disturbed run. */
  run: number;
  service: StackServiceName;
  at: PlannedStage;
  /** In [0, 1): the fault comes this fraction of the stage's undisturbed duration after the stage started. */
  fraction: number;
  action: FaultAction;
}

function rngFor(seed: string, run: number): Xoshiro128StarStar {
  const digest = createHash('sha256').update(`chaos/${seed}/${run}`).digest();
  return new Xoshiro128StarStar([0, 4, 8, 12].map((offset) => digest.readUInt32LE(offset)));
}

/** Run i's fault depends only on (seed, i): `--runs 10` begins with the faults of `--runs 2`. */
export function planFaults(seed: string, runs: number): Fault[] {
  return Array.from({ length: runs }, (_, i) => {
    const rng = rngFor(seed, i + 1);
    const at = MICRO_STAGES[rng.int(MICRO_STAGES.length)];
    const services = stageServices(at);
    return {
      run: i + 1,
      service: services[rng.int(services.length)],
      at,
      fraction: rng.int(100) / 100,
      action: rng.int(2) === 0 ? 'kill' : 'pause',
    };
  });
}

export function describeFault(f: Fault): string {
  const what = f.action === 'kill' ? 'kill -9 + restart' : `SIGSTOP ${PAUSE_MS / 1000} s + SIGCONT`;
  return `${what} of ${f.service} at ${Math.round(f.fraction * 100)}% of round ${f.at.round} ${f.at.stage}`;
}
