import * as os from 'node:os';
import * as path from 'node:path';
import { parseCampaignOptions, UsageError, type CampaignOptions } from './cli-options';
import { ROOT } from '../demo/stack';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCampaignOptions(argv, env) as CampaignOptions;

describe('campaign options', () => {
  it('needs a plan, and defaults the rest', () => {
    expect(() => parse([])).toThrow(UsageError);
    expect(parse(['--plan', 'experiments/ci.yaml'])).toEqual({
      plan: path.join(ROOT, 'experiments/ci.yaml'),
      dataDir: undefined,
      bookDir: path.join(ROOT, 'docs'),
      worldCache: path.join(os.homedir(), '.cache/alignment/worlds'),
      portBase: 50251,
      cpuCapability: 'avx2',
      stackEnv: { ATEN_CPU_CAPABILITY: 'avx2' },
      bookOnly: false,
    });
    expect(parseCampaignOptions(['--help'])).toBe('help');
  });

  it('reads every option, as --flag value and --flag=value', () => {
    const options = parse(['--plan=/p.yaml', '--data-dir', '/d', '--book', '/b', '--world-cache=/w', '--port-base', '52000', '--cpu-capability', 'default']);
    expect(options).toMatchObject({ plan: '/p.yaml', dataDir: '/d', bookDir: '/b', worldCache: '/w', portBase: 52000, cpuCapability: 'default' });
    expect(parse(['--plan', 'p'], { ALIGNMENT_WORLD_CACHE: '/cache', ATEN_CPU_CAPABILITY: 'avx512' })).toMatchObject({ worldCache: '/cache', cpuCapability: 'avx512' });
    expect(parse(['--book-only', '--plan', 'p'])).toMatchObject({ bookOnly: true, plan: path.join(ROOT, 'p') });
  });

  it('rejects unknown options and bad values, naming them', () => {
    expect(() => parse(['--plan', 'p', '--seeds', '1'])).toThrow("unknown option '--seeds'");
    expect(() => parse(['--plan', 'p', '--port-base', '70000'])).toThrow('--port-base: expected an integer in 1..65530');
    expect(() => parse(['--plan', 'p', '--cpu-capability', 'sse'])).toThrow('--cpu-capability: expected one of default, avx2, avx512');
    expect(() => parse(['--plan'])).toThrow('--plan: needs a value');
    expect(() => parse(['--plan', 'p', 'experiments/main.yaml'])).toThrow("unexpected argument 'experiments/main.yaml'");
    expect(() => parse(['--plan', 'p', '--book-only=yes'])).toThrow('--book-only: takes no value');
  });
});
