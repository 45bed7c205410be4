import type { Span } from '@opentelemetry/api';
import type { RunSpec } from '@alignment/contracts';
import type { Logger } from '@alignment/service-kit';
import { unloadRunPolicies } from './engine-policies';
import type { EngineModelLoader } from './executors';
import { storedBytes } from './model-store';
import type { RunStore } from './store';

/** How long a run's end waits for its engine to unload the run's policies, all of them together. */
export const ENGINE_RELEASE_TIMEOUT_MS = 30_000;

export interface RunResourcesOptions {
  store: RunStore;
  /** MODEL_STORE_URI (model-store.ts); unset = the run's models are in its directory, and nothing is listed. */
  modelStoreUri?: string;
  /** The client of a RunSpec.engine (Executors.engine); unset = this coordinator loads nothing into engines. */
  engine?: (baseUrl: string) => EngineModelLoader;
  logger: Logger;
}

/**
 * What a run holds outside its directory, and what becomes of it: its models' objects in the model store, whose
 * bytes are listed at stage and round ends and recorded for GetRun (Run.object_store_bytes), and its policies loaded
 * into its inference engine (RunSpec.engine), unloaded when the run ends or is deleted. Both are best effort: an
 * object store or an engine that fails leaves the run's state as it was, with a warning in the coordinator's log and
 * on the run's trace (and, for the engine, in the WatchRun stream: RunEngine emits the returned warning).
 */
export class RunResources {
  constructor(private readonly options: RunResourcesOptions) {}

  private get log(): Logger {
    return this.options.logger;
  }

  /** Lists the run's objects in the model store and records their bytes; a listing that fails keeps the figure before it. */
  async measure(runId: string, span?: Span): Promise<void> {
    const store = this.options.modelStoreUri;
    if (!store) return;
    let bytes: number;
    try {
      bytes = await storedBytes(store, runId);
    } catch (error) {
      const reason = (error as Error).message;
      this.log.warn({ run_id: runId, model_store: store, error: reason }, "could not list the run's objects in the model store; Run.object_store_bytes keeps its last figure");
      span?.addEvent('coordinator.run.object_store_listing_failed', { 'model_store.uri': store, 'error.message': reason });
      return;
    }
    this.options.store.setObjectStoreBytes(runId, bytes); // a database error here is the coordinator's own (RunEngine's onFatal)
  }

  /**
   * Unloads every policy of the run that its engine still lists (engine-policies.ts), within
   * ENGINE_RELEASE_TIMEOUT_MS. Returns a warning saying what may be left when that failed; undefined otherwise
   * (no engine, nothing left, or everything unloaded).
   */
  async releaseEngine(runId: string, spec: RunSpec, span?: Span): Promise<string | undefined> {
    const engine = spec.engine;
    if (!engine || !this.options.engine) return undefined;
    const signal = AbortSignal.timeout(ENGINE_RELEASE_TIMEOUT_MS);
    try {
      const unloaded = await unloadRunPolicies(this.options.engine(engine.baseUrl), runId, signal);
      if (unloaded.length > 0) {
        this.log.info({ run_id: runId, engine: engine.baseUrl, models: unloaded }, "unloaded the run's policies from its inference engine");
        span?.addEvent('coordinator.run.engine_released', { 'engine.base_url': engine.baseUrl, 'engine.models': unloaded });
      }
      return undefined;
    } catch (error) {
      const reason = signal.aborted ? `inference engine at ${engine.baseUrl}: no answer within ${ENGINE_RELEASE_TIMEOUT_MS / 1000} s` : (error as Error).message;
      this.log.warn({ run_id: runId, engine: engine.baseUrl, error: reason }, "could not unload the run's policies from its inference engine");
      span?.addEvent('coordinator.run.engine_release_failed', { 'engine.base_url': engine.baseUrl, 'error.message': reason });
      return `the run's policies (${runId}-round-*) may still be loaded: unloading them failed: ${reason} (DeleteRun tries again)`;
    }
  }
}
