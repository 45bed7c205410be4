/**
 * `npm run campaign -- --plan experiments/main.yaml`: runs the sweep a plan describes (tools/campaign/README.md)
 * through the real five-service stack, one coordinator run per cell (world × configuration variant × prompt budget
 * × seed × label-noise rate), skipping cells a previous invocation finished, and writes the results book:
 * RESULTS.md (sections Main, Judges, Seed size, Ablation, Noise), results.json and plots. Progress and ETA go to
 * stderr; the last stdout line is the path of RESULTS.md.
 *
 * Exit status: 0 when every cell has finished, 1 when a cell or the stack failed (the book is still written from the
 * finished cells; rerun to resume), 2 for bad options or an invalid plan.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Progress } from '../demo/progress';
import { connect, defaultPorts, DemoStack, venvPython, type StackClients } from '../demo/stack';
import { writeBook } from './book-writer';
import { CellStore, expandCells, partition } from './cells';
import { parseCampaignOptions, UsageError, USAGE, type CampaignOptions } from './cli-options';
import { CampaignEta } from './eta';
import { checkFindings, parsePlan, PlanError, type Plan } from './plan';
import { runCells } from './runner';

function readPlan(file: string): Plan {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--plan: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const plan = parsePlan(text, path.basename(file).replace(/\.ya?ml$/i, ''));
  if (plan.findingsFile !== undefined) {
    const findingsPath = path.resolve(path.dirname(file), plan.findingsFile);
    try {
      plan.findings = fs.readFileSync(findingsPath, 'utf8');
    } catch (error) {
      throw new PlanError(`findings: cannot read ${findingsPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    checkFindings(plan.findings, plan.findingsFile);
  }
  return plan;
}

async function runCampaign(options: CampaignOptions, plan: Plan, progress: Progress): Promise<{ book: string; failures: string[] }> {
  const dataDir = options.dataDir ?? path.resolve(__dirname, '../../.data/campaign', plan.name);
  const store = new CellStore(dataDir);
  const cells = expandCells(plan, options.cpuCapability);
  const { finished, pending } = partition(cells, store);
  progress.log(`campaign '${plan.name}': ${cells.length} cells, ${finished.size} already finished, ${pending.length} to run; data: ${dataDir}`);
  for (const id of finished.keys()) progress.log(`skip ${id}: already finished (${store.file(id)})`);
  const eta = new CampaignEta(cells.length, finished.size);
  const python = venvPython();
  const failures: string[] = [];
  if (pending.length > 0 && options.bookOnly) progress.log(`--book-only: ${pending.length} cells not run`);
  if (pending.length > 0 && !options.bookOnly) {
    const ports = defaultPorts(options.portBase);
    const stack = new DemoStack(ports, dataDir, path.join(dataDir, 'stack.log'), options.stackEnv);
    let clients: StackClients | undefined;
    try {
      progress.update('starting the services', 0, 1);
      await stack.start();
      progress.done();
      clients = connect(ports);
      const ctx = { clients, python, dataDir, worldCache: options.worldCache, cpuCapability: options.cpuCapability, portBase: options.portBase, store, progress, eta };
      failures.push(...(await runCells(ctx, pending)));
    } catch (error) {
      progress.done();
      failures.push((error as Error).message);
      progress.log(`campaign stopped: ${(error as Error).message}`);
    } finally {
      clients?.close();
      await stack.stop();
    }
  }
  const now = partition(cells, store).finished;
  progress.log(`writing the results book into ${options.bookDir} (${now.size} of ${cells.length} cells finished)`);
  const book = await writeBook(options.bookDir, plan, path.relative(path.resolve(__dirname, '../..'), options.plan), cells, now, python);
  for (const warning of book.warnings) progress.log(`WARNING ${warning}`);
  if (now.size < cells.length && !options.bookOnly) {
    failures.push(`${cells.length - now.size} of ${cells.length} cells have not finished; rerun the same command to resume`);
  }
  return { book: book.resultsMd, failures };
}

async function main(): Promise<number> {
  let options: CampaignOptions | 'help';
  let plan: Plan;
  try {
    options = parseCampaignOptions(process.argv.slice(2));
    if (options === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    plan = readPlan(options.plan);
  } catch (error) {
    if (error instanceof UsageError || error instanceof PlanError) {
      process.stderr.write(`campaign: ${error instanceof PlanError ? `invalid plan: ` : ''}${error.message}\n`);
      if (error instanceof UsageError) process.stderr.write(`\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const progress = new Progress(process.stderr);
  try {
    const { book, failures } = await runCampaign(options, plan, progress);
    for (const failure of failures) process.stderr.write(`campaign: ${failure}\n`);
    process.stdout.write(`${book}\n`);
    return failures.length === 0 ? 0 : 1;
  } catch (error) {
    progress.done();
    process.stderr.write(`campaign failed: ${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
