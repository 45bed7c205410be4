import { StageFailedError } from './executors';

/**
 * Self-healing runs (issue 12): a run whose stage failed in a way that the same inputs may well get past later
 * (a trainer job INTERRUPTED by the trainer's own restart, a service that stayed UNAVAILABLE through every call-level
 * retry) is resumed by the coordinator itself after a backoff, up to `budget` times per run. StartRun by a person
 * resets the count. Every other failure (invalid data, a job that FAILED) ends the run at once, as before.
 */
export interface AutoResumePolicy {
  /** Automatic resumes per run; 0 turns them off. */
  budget: number;
  /** Wait before the first automatic resume; doubles each time, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_AUTO_RESUME: AutoResumePolicy = { budget: 3, backoffMs: 5_000, maxBackoffMs: 60_000 };

export function isResumable(error: unknown): boolean {
  return error instanceof StageFailedError && (error.interrupted || error.serviceUnavailable);
}

/** The wait before the n-th automatic resume (n ≥ 1). */
export function backoffBefore(n: number, policy: AutoResumePolicy): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (n - 1));
}
