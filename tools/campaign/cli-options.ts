import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags, UsageError } from '../demo/cli-flags';
import { CPU_CAPABILITIES, trainerCpuLevel } from '../demo/cpu-level';
import { ROOT } from '../demo/stack';

export const USAGE = `npm run campaign -- --plan FILE [options]

  --plan FILE          the campaign plan (YAML; tools/campaign/README.md), e.g. experiments/main.yaml
  --data-dir DIR       the campaign's stack state, runs, seed pairs and finished cells (cells/<cell id>.json);
                       rerunning with the same directory skips finished cells (default .data/campaign/<plan name>)
  --book DIR           where RESULTS.md, results.json and plots/ are written (default docs)
  --world-cache DIR    base models, cached by content hash (default $ALIGNMENT_WORLD_CACHE, else ~/.cache/alignment/worlds)
  --port-base P        the stack's five ports are P..P+4 (default 50251)
  --cpu-capability L   the trainer's PyTorch kernel level: ${CPU_CAPABILITIES.join(' | ')} (default: $ATEN_CPU_CAPABILITY, else avx2)
  --book-only          run nothing: write the book from the cells that have finished (the others are listed as pending)
  --help`;

export interface CampaignOptions {
  plan: string;
  /** Undefined: .data/campaign/<plan name>, known once the plan is read. */
  dataDir?: string;
  bookDir: string;
  worldCache: string;
  portBase: number;
  cpuCapability: string;
  /** Environment the stack gets: the trainer's kernel level (none when pins are off). */
  stackEnv: Record<string, string>;
  /** Write the book from the finished cells without running the pending ones. */
  bookOnly: boolean;
}

export { UsageError };

/** The options USAGE lists with a value. */
const VALUED_OPTIONS = [...USAGE.matchAll(/^ {2}(--[a-z-]+) [A-Z]/gm)].map((m) => m[1]);

export function parseCampaignOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): CampaignOptions | 'help' {
  const { values, switches, help } = parseFlags(argv, VALUED_OPTIONS, ['--book-only']);
  if (help) return 'help';
  const bookOnly = switches.has('--book-only');
  const plan = values.get('--plan');
  if (!plan) throw new UsageError('--plan: give the plan file, e.g. --plan experiments/main.yaml');
  const portRaw = values.get('--port-base') ?? '50251';
  const portBase = Number(portRaw);
  if (!/^\d+$/.test(portRaw) || portBase < 1 || portBase > 65530) throw new UsageError(`--port-base: expected an integer in 1..65530, got '${portRaw}'`);
  const capability = values.get('--cpu-capability');
  if (capability !== undefined && !(CPU_CAPABILITIES as readonly string[]).includes(capability)) {
    throw new UsageError(`--cpu-capability: expected one of ${CPU_CAPABILITIES.join(', ')}, got '${capability}'`);
  }
  // As in the demo: the level always goes to the stack explicitly, so the base-model cache key is the level trained at.
  const cpuCapability = trainerCpuLevel(capability ? { ...env, ATEN_CPU_CAPABILITY: capability } : env);
  const resolve = (p: string) => path.resolve(ROOT, p);
  return {
    plan: resolve(plan),
    dataDir: values.has('--data-dir') ? resolve(values.get('--data-dir')!) : undefined,
    bookDir: resolve(values.get('--book') ?? 'docs'),
    worldCache: resolve(values.get('--world-cache') ?? env.ALIGNMENT_WORLD_CACHE ?? path.join(os.homedir(), '.cache/alignment/worlds')),
    portBase,
    cpuCapability,
    stackEnv: cpuCapability === 'native' ? {} : { ATEN_CPU_CAPABILITY: cpuCapability },
    bookOnly,
  };
}
