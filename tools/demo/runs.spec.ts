// The demo's configurations are the coordinator's, by report name: dpo-gold is the coordinator's CONFIGURATION_DPO_GOLD;
// gold-rounds is wdro with round_gold_labels from the stack's judge, its rounds trained as round 0.
import { Configuration, PromptEncoding } from '@alignment/contracts';
import { getWorld } from '@alignment/toyworld';
import { parseOptions, type DemoOptions } from './options';
import { DEMO_CONFIGURATIONS, DEMO_PROMPT_ENCODING, RECOMMENDED_CONFIGURATION, runSpec } from './runs';
import type { WorldInputs } from './world-model';

describe('demo configurations', () => {
  it("names the coordinator's configurations, dpo-gold included, without the judge-model baselines", () => {
    expect(DEMO_CONFIGURATIONS.get('dpo-gold')).toBe(Configuration.CONFIGURATION_DPO_GOLD);
    expect(DEMO_CONFIGURATIONS.get('dpo-seed')).toBe(Configuration.CONFIGURATION_DPO_SEED);
    expect([...DEMO_CONFIGURATIONS.keys()].sort()).toEqual(['cdpo', 'dpo-gold', 'dpo-seed', 'drdpo', 'gold-rounds', 'rdpo', 'spa', 'spa-no-dnd', 'spa-no-sr', 'wdro', 'wdro-sr']);
    expect(DEMO_CONFIGURATIONS.get('gold-rounds')).toBe(Configuration.CONFIGURATION_WDRO);
    expect(RECOMMENDED_CONFIGURATION).toBe('gold-rounds');
  });

  it('gives gold-rounds the stack judge as its annotator, 2% of the budget a round, and rounds trained as round 0', () => {
    const inputs = { model: { hfCheckpoint: { uri: '/m/hf', sha256: '', sizeBytes: 0 } }, roundPrompts: ['/p/r1.jsonl', '/p/r2.jsonl'] } as unknown as WorldInputs;
    const options = parseOptions(['--port-base', '50351']) as DemoOptions;
    const spec = runSpec('gold-rounds', getWorld('arithmetic'), inputs, '/p/seed.jsonl', { ...options.run, rounds: 2, seed: 1 });
    expect(spec.roundGoldLabels).toEqual({ annotatorAddress: 'localhost:50353', rule: 'toyworld/arithmetic', pairsPerRound: 30, discardSelfLabels: true });
    expect(spec.loss?.wdro?.radius).toEqual({ $case: 'rho', value: 0.1 });
    const seed = spec.seedTraining!;
    expect([spec.roundTraining?.epochs, spec.roundTraining?.batchSize, spec.roundTraining?.learningRate]).toEqual([seed.epochs, seed.batchSize, 1e-4]);
    expect([seed.epochs, seed.batchSize]).toEqual([4, 8]);
    // wdro itself keeps one epoch in batches of 16 and no annotator.
    const wdro = runSpec('wdro', getWorld('arithmetic'), inputs, '/p/seed.jsonl', { ...options.run, rounds: 2, seed: 1 });
    expect([wdro.roundGoldLabels, wdro.roundTraining?.epochs, wdro.roundTraining?.batchSize]).toEqual([undefined, 1, 16]);
    // The share follows the budget; --lr sets the rounds' rate too.
    const big = parseOptions(['--prompt-budget', '15000', '--lr', '3e-5']) as DemoOptions;
    expect([big.run.goldRounds.pairsPerRound, big.run.goldRounds.learningRate, big.run.goldRounds.annotatorAddress]).toEqual([300, 3e-5, 'localhost:50153']);
    // Sentiment's rounds run at 1e-4, below its seed rate (3e-4), unless --lr says otherwise.
    const sentiment = parseOptions(['--world', 'sentiment']) as DemoOptions;
    expect([sentiment.run.seedTraining.learningRate, sentiment.run.goldRounds.learningRate]).toEqual([3e-4, 1e-4]);
  });

  it('gives dpo-gold a round-0-only spec on its pairs, and spa the round prompt sets', () => {
    const options = parseOptions([]) as DemoOptions;
    const inputs = { model: { hfCheckpoint: { uri: '/m/hf', sha256: '', sizeBytes: 0 } }, roundPrompts: ['/p/r1.jsonl', '/p/r2.jsonl'] } as unknown as WorldInputs;
    const settings = { ...options.run, rounds: 2, seed: 1 };
    const gold = runSpec('dpo-gold', getWorld('arithmetic'), inputs, '/p/gold.jsonl', settings);
    expect([gold.configuration, gold.seedPairs?.uri, gold.prompts]).toEqual([Configuration.CONFIGURATION_DPO_GOLD, '/p/gold.jsonl', undefined]);
    const spa = runSpec('spa', getWorld('arithmetic'), inputs, '/p/seed.jsonl', settings);
    expect(spa.prompts?.$case === 'roundPrompts' && spa.prompts.value.rounds.map((r) => r.uri)).toEqual(['/p/r1.jsonl', '/p/r2.jsonl']);
  });

  it('asks for the chat template explicitly: the toy worlds were trained and published with templated prompts', () => {
    const options = parseOptions([]) as DemoOptions;
    const inputs = { model: { hfCheckpoint: { uri: '/m/hf', sha256: '', sizeBytes: 0 } }, roundPrompts: ['/p/r1.jsonl'] } as unknown as WorldInputs;
    for (const config of DEMO_CONFIGURATIONS.keys()) {
      const spec = runSpec(config, getWorld('arithmetic'), inputs, '/p/seed.jsonl', { ...options.run, rounds: 1, seed: 1 });
      expect([config, spec.promptEncoding]).toEqual([config, PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE]);
    }
    expect(DEMO_PROMPT_ENCODING).toBe(PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE);
  });
});
