import * as path from 'node:path';
import { confineS3Uri, isS3Uri, listKeys, parseS3Uri, s3RootsFromEnv, s3Uri } from '@alignment/artifacts';

/**
 * Where LEARN stages put their models (MODEL_STORE_URI, config.ts): by default a directory under the stage's own
 * ($DATA_DIR/runs/<run>/round-<t>/learn/attempt-<k>); with a model store, the prefix
 * `<MODEL_STORE_URI>/<run>/round-<t>/learn/attempt-<k>` in object storage, which the trainer publishes to when its
 * job succeeds (manifest last) and the generator, judge and next LEARN read through their s3:// caches. Each attempt
 * has a prefix of its own: the trainer never replaces a published one (StartJob refuses it), so a stage executed
 * again writes beside the attempt before it, never over it.
 */

/**
 * MODEL_STORE_URI from the environment, normalised (no trailing `/`); undefined when unset. A value that is not an
 * s3:// URI, or one outside S3_ARTIFACT_ROOTS when those are set (the coordinator must be allowed to write there:
 * retention and DeleteRun delete the models), is an Error naming MODEL_STORE_URI.
 */
export function modelStoreFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const raw = env.MODEL_STORE_URI?.trim();
  if (!raw) return undefined;
  if (!isS3Uri(raw)) throw new Error(`MODEL_STORE_URI must be an s3://bucket/prefix URI, got '${raw}'`);
  const bare = /^s3:\/\/([^/]+)\/*$/i.exec(raw);
  let uri: string;
  try {
    uri = bare ? `s3://${parseS3Uri(`s3://${bare[1]}/x`).bucket}` : s3Uri(parseS3Uri(raw.replace(/\/+$/, '')));
  } catch (error) {
    throw new Error(`MODEL_STORE_URI: ${(error as Error).message}`);
  }
  try {
    // A key under the store stands for every model it will hold: a root covers all of them or none.
    confineS3Uri(`${uri}/run/round-0/learn/attempt-1`, 'MODEL_STORE_URI', 'write', s3RootsFromEnv(env));
  } catch {
    throw new Error(`MODEL_STORE_URI ${uri} is outside S3_ARTIFACT_ROOTS (${env.S3_ARTIFACT_ROOTS?.trim() || 'unset'}): the coordinator must be allowed to write its models`);
  }
  return uri;
}

/**
 * Where a LEARN attempt's trainer job writes: `<store>/<run>/round-<t>/learn/attempt-<k>`, else `<stageDir>/attempt-<k>`;
 * round 0's frozen-judge job (`job` 'judge', RunSpec.judge_learning_rate) writes beside it, at `judge-attempt-<k>`.
 */
export function learnOutput(args: { store?: string; runId: string; round: number; attempt: number; stageDir: string; job?: 'learn' | 'judge' }): string {
  const attempt = `${args.job === 'judge' ? 'judge-' : ''}attempt-${args.attempt}`;
  if (!args.store) return path.join(args.stageDir, attempt);
  return `${args.store}/${args.runId}/round-${args.round}/learn/${attempt}`;
}

/**
 * The bytes a run holds in the store: the sum of the sizes of every object under `<store>/<run>/` (every LEARN
 * attempt's prefix, published, half-written or left by a failed deletion), listed with ListObjectsV2 page by page.
 * A failure is the artifact library's error naming the prefix.
 */
export async function storedBytes(store: string, runId: string): Promise<number> {
  return (await listKeys(parseS3Uri(`${store}/${runId}`))).reduce((total, object) => total + object.size, 0);
}
