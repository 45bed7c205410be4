import { parseOptions, SCALES, UsageError, type DemoOptions } from './options';

const parse = (...argv: string[]) => parseOptions(argv) as DemoOptions;

describe('demo options', () => {
  it('defaults to the arithmetic world, dpo-seed / spa / wdro / gold-rounds, two rounds, one seed, the CPU scale', () => {
    const options = parse();
    expect(options).toMatchObject({ world: 'arithmetic', configs: ['dpo-seed', 'spa', 'wdro', 'gold-rounds'], rounds: 2, seeds: [1], scale: 'cpu', portBase: 50151 });
    expect(options.base.promptBudget).toBe(SCALES.cpu.promptBudget);
    expect(options.worldCache).toBe(`${options.dataDir}/worlds`);
  });

  it('takes β and the learning rate tuned for the world unless --beta / --lr say otherwise', () => {
    expect(parse().run).toMatchObject({ beta: 0.25, seedTraining: { learningRate: 1e-4 }, roundTraining: { learningRate: 1e-4 } });
    expect(parse('--world', 'sentiment').run).toMatchObject({ beta: 0.5, seedTraining: { learningRate: 3e-4 } });
    expect(parse('--lr', '2e-5', '--beta', '1').run).toMatchObject({ beta: 1, seedTraining: { learningRate: 2e-5 }, roundTraining: { learningRate: 2e-5 } });
    expect(() => parseOptions(['--lr=-1'])).toThrow("--lr: expected a positive number, got '-1'");
    expect(() => parseOptions(['--lr', '-1'])).toThrow("--lr: needs a value (write a value that starts with '-' as --lr=VALUE)");
  });

  it('reads every option, as --flag value and --flag=value', () => {
    const options = parse('--world', 'sentiment', '--configs=dpo-gold,wdro-sr', '--rounds', '3', '--seeds', '1,2,3', '--scale', 'paper', '--prompt-budget', '3000', '--eval-prompts=50', '--port-base', '52000');
    expect(options).toMatchObject({ world: 'sentiment', configs: ['dpo-gold', 'wdro-sr'], rounds: 3, seeds: [1, 2, 3], scale: 'paper', portBase: 52000 });
    expect(options.base).toMatchObject({ promptBudget: 3000, evalPrompts: 50, sftExamples: SCALES.paper.sftExamples });
    expect(parseOptions(['--help'])).toBe('help');
    expect(parseOptions(['-h'])).toBe('help');
  });

  it("runs the trainer at its pinned kernel level unless --cpu-capability or ATEN_CPU_CAPABILITY names another", () => {
    const saved = process.env.ATEN_CPU_CAPABILITY;
    delete process.env.ATEN_CPU_CAPABILITY;
    try {
      expect(parse()).toMatchObject({ stackEnv: { ATEN_CPU_CAPABILITY: 'avx2' }, base: { cpuCapability: 'avx2' } });
      expect(parse('--cpu-capability', 'default')).toMatchObject({ stackEnv: { ATEN_CPU_CAPABILITY: 'default' }, base: { cpuCapability: 'default' } });
      process.env.ATEN_CPU_CAPABILITY = 'avx512';
      expect(parse().base.cpuCapability).toBe('avx512');
      expect(parse('--cpu-capability', 'avx2').base.cpuCapability).toBe('avx2');
    } finally {
      if (saved === undefined) delete process.env.ATEN_CPU_CAPABILITY;
      else process.env.ATEN_CPU_CAPABILITY = saved;
    }
  });

  it.each([
    [['--cpu-capability', 'sse9'], "--cpu-capability: expected one of default, avx2, avx512, got 'sse9'"],
    [['--world', 'chess'], "--world: unknown world 'chess'"],
    [['--configs', 'spa,ppo'], "--configs: unknown configuration 'ppo'"],
    [['--configs', 'spa,spa'], '--configs: a configuration is listed twice'],
    [['--rounds', '4'], '--rounds: expected an integer in 1..3'],
    [['--rounds', 'two'], "--rounds: expected an integer in 1..3, got 'two'"],
    [['--seeds', '1,1'], '--seeds: a seed is listed twice'],
    [['--scale', 'huge'], "--scale: unknown scale 'huge'"],
    [['--prompt-budget', '50'], '--prompt-budget: at least 100 prompts'],
    [['--frobnicate', '1'], "unknown option '--frobnicate'"],
    [['--world'], '--world: needs a value'],
    // Issue 13: words that are no option's value used to be ignored, and the demo ran its defaults.
    [['arithmetic', 'sentiment'], "unexpected argument 'arithmetic': options are written --name value"],
    [['--world', 'sentiment', 'listing'], "unexpected argument 'listing'"],
    [['--toy'], "unknown option '--toy'"],
    [['-x'], "unknown option '-x'"],
  ])('rejects %j naming the option', (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});
