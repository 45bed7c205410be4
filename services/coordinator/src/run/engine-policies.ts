import type { EngineModelLoader } from './executors';

// The names a run's policies are served under by its inference engine (RunSpec.engine, coordinator.proto
// InferenceEngine), and the unloading of them. Stages load a round's policy where they use it
// (stages/engine-models.ts); the run's end, and DeleteRun, unload every one the engine still lists (run-resources.ts).

/** The name round `round`'s policy is served under. */
export const policyModelName = (runId: string, round: number) => `${runId}-round-${round}`;

/** The round of `name` when it is one of `runId`'s policies (policyModelName), else undefined. */
export function policyRound(runId: string, name: string): number | undefined {
  const prefix = `${runId}-round-`;
  if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) return undefined;
  return Number(name.slice(prefix.length));
}

/**
 * Unloads every policy of `runId` the engine lists now, whichever execution loaded it (one before a coordinator
 * restart included); returns their names. The first failure throws (the engine's StageFailedError), the policies
 * after it staying loaded.
 */
export async function unloadRunPolicies(loader: EngineModelLoader, runId: string, signal?: AbortSignal): Promise<string[]> {
  const own = (await loader.models(signal)).filter((name) => policyRound(runId, name) !== undefined);
  for (const name of own) await loader.unload(name, signal);
  return own;
}
