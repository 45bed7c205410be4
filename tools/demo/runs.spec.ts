// The demo's configurations are the coordinator's, by report name: dpo-gold is the coordinator's CONFIGURATION_DPO_GOLD.
import { Configuration, PromptEncoding } from '@alignment/contracts';
import { getWorld } from '@alignment/toyworld';
import { parseOptions, type DemoOptions } from './options';
import { DEMO_CONFIGURATIONS, DEMO_PROMPT_ENCODING, runSpec } from './runs';
import type { WorldInputs } from './world-model';

describe('demo configurations', () => {
  it("names the coordinator's configurations, dpo-gold included, without the judge-model baselines", () => {
    expect(DEMO_CONFIGURATIONS.get('dpo-gold')).toBe(Configuration.CONFIGURATION_DPO_GOLD);
    expect(DEMO_CONFIGURATIONS.get('dpo-seed')).toBe(Configuration.CONFIGURATION_DPO_SEED);
    expect([...DEMO_CONFIGURATIONS.keys()].sort()).toEqual(['cdpo', 'dpo-gold', 'dpo-seed', 'drdpo', 'rdpo', 'spa', 'spa-no-dnd', 'spa-no-sr', 'wdro', 'wdro-sr']);
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
