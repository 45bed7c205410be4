import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_OK, LocalError, expectPositionals } from '../args';
import type { Command } from '../context';

/** The repo root (this file is tools/cli/src/commands/init.ts). */
const ROOT = path.resolve(__dirname, '../../../..');
/** The commented micro run that `init` writes: the one example, kept in examples/. */
export const TEMPLATE = path.join(ROOT, 'examples/micro-run.yaml');
/** How the template names its own path and the default data directory relative to itself. */
const TEMPLATE_NAME = 'examples/micro-run.yaml';
const TEMPLATE_DATA = '../.data';

/**
 * The template for a file at `target`: its default data directory (the repo's ./.data, `npm run stack`'s default)
 * made relative to the new file's folder (absolute outside the repo), and its own name in the usage comment.
 */
export function templateFor(target: string, cwd: string): string {
  const file = path.resolve(cwd, target);
  const dir = path.dirname(file);
  const data = path.join(ROOT, '.data');
  const inRepo = dir === ROOT || dir.startsWith(ROOT + path.sep);
  const dataRef = inRepo ? path.relative(dir, data) : data;
  const shown = path.relative(cwd, file) || file;
  return fs
    .readFileSync(TEMPLATE, 'utf8')
    .split(TEMPLATE_DATA)
    .join(dataRef)
    .split(TEMPLATE_NAME)
    .join(shown.startsWith('..') ? file : shown);
}

export const initCommand: Command = {
  name: 'init',
  synopsis: 'init [FILE]',
  summary: 'write an example run file (the micro run, every field commented); never overwrites',
  help: `  FILE               where to write it (default run.yaml); an existing file is left alone (exit 2)

The micro run of \`npm run stack\` (examples/micro-run.yaml), its data paths made relative to FILE's folder.`,
  options: {},
  async run(ctx, _values, positionals) {
    const [target = 'run.yaml'] = expectPositionals(positionals, ['FILE'], 'init', true);
    const text = templateFor(target, process.cwd());
    try {
      fs.writeFileSync(target, text, { flag: 'wx' });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new LocalError(`${target} exists; not overwritten (remove it, or name another FILE)`);
      throw new LocalError(`cannot write ${target}: ${(error as Error).message}`);
    }
    ctx.print(target);
    ctx.note(`wrote ${target}: the micro run, commented. With \`npm run stack\` running: npx alignment run -f ${target} --wait`);
    return EXIT_OK;
  },
};
