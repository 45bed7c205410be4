/**
 * `npm run fuzz -- --cases N`: the bad-input suite over every RPC of the five services (issue 12). It starts the
 * services itself on loopback, sends N cases (malformed bytes, NaN and infinities, out-of-range numbers, unknown
 * enums, huge strings and repeated fields, paths in every URI field), and counts crashes (a service exited or stopped
 * answering its health check), hangs (no status within the deadline) and wrong codes (UNKNOWN, INTERNAL or another
 * code a bad request must not get; OK for a request that must be refused). Progress and the per-service table go to
 * stderr; the last stdout line is one JSON object:
 *
 *   {"check":"fuzz","cases":300,"crashes":0,"hangs":0,"wrong_codes":0,"per_service":{...},...}
 *
 * Exit 0 when crashes = hangs = wrong codes = 0, 1 otherwise (or interrupted), 2 for bad options.
 * See tools/fuzz/README.md.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '@alignment/service-kit/testing';
import { tinyModels, venvPython } from '../testing/tiny-models';
import { catalogSizes, catalogs, pickCases, pickMatching } from './cases';
import { makeFixtures } from './fixtures';
import { SERVICE_NAMES, type ServiceName } from './model';
import { USAGE, UsageError, parseFuzzOptions, type FuzzOptions } from './options';
import { Tally } from './report';
import { runCases } from './runner';
import { Stack } from './services';

const log = (line: string) => process.stderr.write(`[fuzz] ${line}\n`);

async function ports(o: FuzzOptions): Promise<Record<ServiceName, number>> {
  const entries = await Promise.all(SERVICE_NAMES.map(async (name, i) => [name, o.portBase !== undefined ? o.portBase + i : await freePort()] as const));
  return Object.fromEntries(entries) as Record<ServiceName, number>;
}

async function main(o: FuzzOptions): Promise<number> {
  const started = Date.now();
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'alignment-fuzz-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const [models, python] = await Promise.all([tinyModels(), venvPython()]);
  const fixtures = makeFixtures(path.join(dataDir, 'fixtures'), {
    policy: models.policy,
    reference: models.reference,
    reward: models.reward,
    checkpoint: models.policyCheckpoint,
  });
  const all = catalogs(fixtures, o.seed);
  const cases = o.only ? pickMatching(all, o.cases, o.seed, o.only) : pickCases(all, o.cases, o.seed);
  const distinct = Object.values(catalogSizes(all)).reduce((s, n) => s + n, 0);
  log(`seed '${o.seed}'${o.only ? `, only ${o.only}` : ''}${o.confine ? ', confined' : ''}: ${cases.length} cases over ${all.length} RPCs (${distinct} distinct cases in the catalogs, then mutations); data dir ${dataDir}`);

  // Confined as deployed (deploy/k8s): the data dir (fixtures included) read-write, the tiny models read-only.
  const env = o.confine ? { ARTIFACT_ROOTS: dataDir, READ_ONLY_ROOTS: path.dirname(path.dirname(models.policy)) } : {};
  const stack = new Stack({ dataDir, ports: await ports(o), python, env });
  const tally = new Tally();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      stack.killAllNow();
      process.exit(1);
    }
    interrupted = true;
    log(`${signal}: stopping the services`);
    void stack.stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => stack.killAllNow());

  try {
    await stack.startAll((name) => log(`${name} is SERVING on ${stack.services[name].address}`));
    await runCases(stack, cases, tally, { deadlineMs: o.deadlineMs, log, interrupted: () => interrupted });
  } finally {
    log('stopping the services');
    await stack.stopAll();
  }

  log(`failures:\n${tally.failureList()}`);
  log(`codes by service and RPC:\n${tally.codeList()}`);
  log(`per service:\n${tally.table()}`);
  const failed = tally.failures.length > 0 || interrupted;
  if (!failed && o.dataDir === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  else log(`logs and fixtures kept in ${dataDir}`);
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  process.stdout.write(`${tally.summaryLine({ seed: o.seed, confined: o.confine, seconds, ...(interrupted ? { interrupted: true } : {}) })}\n`);
  return failed ? 1 : 0;
}

let options: FuzzOptions | 'help';
try {
  options = parseFuzzOptions(process.argv.slice(2), process.env.INIT_CWD || process.cwd());
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
