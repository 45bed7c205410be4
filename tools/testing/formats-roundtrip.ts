/**
 * The TypeScript half of the cross-language round trip of the formats.proto records (docs/formats.md), driven by
 * services/trainer/tests/test_formats.py:
 *
 *   tsx tools/testing/formats-roundtrip.ts write DIR   TypeScript writes one file per format into DIR (<Format>.jsonl;
 *                                                     log lines go to stderr, where the services write them)
 *   tsx tools/testing/formats-roundtrip.ts check DIR   every <Format>.jsonl in DIR (and ArtifactManifest.json) must
 *                                                     pass checkRecord; prints {"<Format>": {"records", "identical"}}
 *                                                     where identical = JSON.stringify re-writes each record unchanged
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkRecord, FormatError, RECORD_FORMATS } from '@alignment/contracts';
import { JsonlWriter, type Manifest } from '@alignment/artifacts';
import { createLogger, initTracing, shutdownTracing, withSpan, SpanKind } from '@alignment/service-kit';

async function writeJsonl(file: string, records: unknown[]): Promise<void> {
  const writer = await JsonlWriter.open(file);
  for (const record of records) await writer.append(record);
  await writer.commit();
}

async function write(dir: string): Promise<void> {
  process.env.OTEL_TRACES_FILE = path.join(dir, 'SpanRecord.jsonl');
  initTracing('formats-roundtrip', 'jsonl');
  const log = createLogger('formats-roundtrip');
  log.info({ port: 50055, nested: { ratio: 0.25 } }, 'outside any span');
  await withSpan(
    'alignment.v1.Judge/JudgePairs',
    async () => {
      await withSpan('judge.score', async () => log.warn({ pairs: 3 }, 'inside a span: “quotes” and ünïcode'), {
        attributes: { 'judge.pairs': 3, ratio: 0.5, ok: true },
      });
    },
    { kind: SpanKind.SERVER, attributes: { 'rpc.method': 'alignment.v1.Judge/JudgePairs' } },
  );
  await shutdownTracing();

  // The generator's and the judge's record shapes (services/generator/src/generation, services/judge/src/judging).
  await writeJsonl(path.join(dir, 'ResponsesRecord.jsonl'), [
    { prompt_index: 0, id: 'p-0', prompt: 'Say hi', responses: ['hi', 'hello'], finish_reasons: ['eos', 'length'] },
    { prompt_index: 7, prompt: 'Ünïcode “prompt”', responses: ['a', 'b'], finish_reasons: ['eos', 'stop'] },
  ]);
  await writeJsonl(path.join(dir, 'LabelledPair.jsonl'), [
    { prompt_index: 0, id: 3, prompt: 'Say hi', chosen: 'hello', rejected: 'hi', chosen_score: -1.25, rejected_score: -3.5, margin: 2.25, method: 'spa_implicit' },
    { prompt_index: 7, prompt: 'p', chosen: 'b', rejected: 'a', chosen_score: 0.75, rejected_score: 0.125, margin: 0.625, method: 'rule' },
  ]);
  // Keys in sorted order, as the trainer's export writes manifests (a manifest's sha256 is that of its bytes).
  const manifest: Manifest = {
    files: [{ path: 'model.onnx', sha256: 'ab'.repeat(32), size_bytes: 1234 }],
    total_size_bytes: 1234,
    version: 1,
  };
  fs.writeFileSync(path.join(dir, 'ArtifactManifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

function check(dir: string): void {
  const report: Record<string, { records: number; identical: boolean }> = {};
  for (const format of RECORD_FORMATS) {
    const jsonl = path.join(dir, `${format}.jsonl`);
    const json = path.join(dir, `${format}.json`);
    const lines = fs.existsSync(jsonl)
      ? fs.readFileSync(jsonl, 'utf8').split('\n').filter((line) => line.trim() !== '')
      : fs.existsSync(json)
        ? [fs.readFileSync(json, 'utf8')]
        : [];
    let identical = true;
    // JSONL is one compact object per line; a manifest is a JSON document indented by 2 and ending in a newline.
    const rewrite = (value: unknown) => (fs.existsSync(jsonl) ? JSON.stringify(value) : JSON.stringify(value, null, 2) + '\n');
    lines.forEach((line, i) => {
      const value: unknown = JSON.parse(line);
      try {
        checkRecord(format, value);
      } catch (error) {
        if (error instanceof FormatError) throw new Error(`${format} record ${i + 1}: ${error.message}`);
        throw error;
      }
      identical &&= rewrite(value) === line;
    });
    if (lines.length > 0) report[format] = { records: lines.length, identical };
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

async function main(): Promise<void> {
  const [command, dir] = process.argv.slice(2);
  if (command === 'write' && dir) return write(dir);
  if (command === 'check' && dir) return check(dir);
  throw new Error('usage: formats-roundtrip.ts write|check DIR');
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
