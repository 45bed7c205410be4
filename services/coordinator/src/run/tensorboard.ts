import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { Logger } from '@alignment/service-kit';

/**
 * The coordinator's per-round metrics (RoundMetrics) as TensorBoard scalars, beside the trainer's, so that
 * `tensorboard --logdir $DATA_DIR/runs/<run_id>` shows the run's round metrics (this file's run, `coordinator`) and
 * every LEARN job's per-step curves (the trainer writes event files beside each job's metrics.jsonl, under
 * round-<t>/learn/attempt-<n>/). Each stage's metrics are appended when it succeeds: one scalar per metric, its tag
 * the metric's name (eval/win_rate, judge/self_label_accuracy, train/rewards/margins, …), its step the round.
 *
 * There is no TensorBoard library for Node, and the format is small: a TFRecord file (each record: length as
 * uint64 LE, masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes) of tensorflow.Event protos,
 * the first of which names the file version.
 */

/** Directory of the coordinator's event file inside a run's directory. */
export const COORDINATOR_LOG_DIR = 'coordinator';
/** TensorBoard reads files whose name contains "tfevents"; one file per run, appended to across restarts. */
export const EVENTS_FILE = 'events.out.tfevents.coordinator';

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), as TFRecord checksums use it. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const masked = (crc: number) => (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(masked(crc32c(header.subarray(0, 8))), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(masked(crc32c(data)), 0);
  return Buffer.concat([header, data, footer]);
}

/**
 * tensorflow.Event: wall_time (1, double), step (2, int64), file_version (3, string), summary (5, Summary with
 * repeated Value (1) of tag (1, string) and simple_value (2, float)).
 */
export function encodeEvent(event: { wallTime: number; step?: number; fileVersion?: string; scalars?: Record<string, number> }): Uint8Array {
  const writer = new BinaryWriter();
  writer.uint32(9).double(event.wallTime);
  if (event.step) writer.uint32(16).int64(event.step);
  if (event.fileVersion) writer.uint32(26).string(event.fileVersion);
  if (event.scalars) {
    const summary = writer.uint32(42).fork();
    for (const [tag, value] of Object.entries(event.scalars)) {
      summary.uint32(10).fork().uint32(10).string(tag).uint32(21).float(value).join();
    }
    summary.join();
  }
  return writer.finish();
}

/**
 * Appends one round's scalars to the run's event file (created with its version record first). A failure to write
 * is logged, not thrown: the metrics are in the database and the API either way.
 */
export async function appendRoundScalars(runDir: string, round: number, metrics: Record<string, number>, log: Logger): Promise<void> {
  if (Object.keys(metrics).length === 0) return;
  const file = path.join(runDir, COORDINATOR_LOG_DIR, EVENTS_FILE);
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const wallTime = Date.now() / 1000;
    const exists = await fs.stat(file).then(
      () => true,
      () => false,
    );
    const records = exists ? [] : [tfRecord(encodeEvent({ wallTime, fileVersion: 'brain.Event:2' }))];
    records.push(tfRecord(encodeEvent({ wallTime, step: round, scalars: metrics })));
    await fs.appendFile(file, Buffer.concat(records));
  } catch (error) {
    log.warn({ err: error, file, round }, 'could not append the round metrics to the TensorBoard event file');
  }
}
