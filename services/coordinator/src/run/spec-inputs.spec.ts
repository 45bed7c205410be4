// RunSpec validation of the paths and prompt files a spec names: round prompts that repeat (issue 13's overlap
// policy), multi-turn conversational prompt sets and a base model without a chat template (issue 13's TRL prompt
// semantics: RunSpec.prompt_encoding), and inputs outside ARTIFACT_ROOTS (issue 12's confinement).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JudgeMethod, PromptEncoding, RoundPromptOverlap, type RunSpec } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { makeWorkspace, validSpec, type Workspace } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';

/** examples/data's multi-turn prompt set (system, user, assistant, user turns). */
const MULTI_TURN = path.resolve(__dirname, '../../../../examples/data/prompts-multi-turn.jsonl');

let ws: Workspace;
beforeAll(() => {
  ws = makeWorkspace();
});
afterAll(() => ws.cleanup());

describe('spec inputs', () => {
  // Issue 13: real prompt sets repeat; StartRun used to refuse any overlap.
  it('takes overlapping round prompts under DEDUPLICATE (the default) and ALLOW, and refuses them under REJECT', async () => {
    const overlapping = (policy?: RoundPromptOverlap) =>
      validSpec(ws, {
        prompts: { $case: 'promptSplit', value: { prompts: { uri: ws.promptPool, sha256: '', sizeBytes: 0 }, roundFractions: [0.3, 0.3], seedFraction: undefined } },
        ...(policy !== undefined ? { roundPromptOverlap: policy } : {}),
      });
    await expect(validateSpec(overlapping())).resolves.toBeDefined();
    await expect(validateSpec(overlapping(RoundPromptOverlap.ROUND_PROMPT_OVERLAP_ALLOW))).resolves.toBeDefined();
    await expect(validateSpec(overlapping(RoundPromptOverlap.ROUND_PROMPT_OVERLAP_REJECT))).rejects.toThrow("round 1's prompts include a prompt of the seed pairs");
    // A round that is all repeats is refused under DEDUPLICATE too (nothing left to generate); ALLOW takes it.
    const sameTwice = (policy?: RoundPromptOverlap) => {
      const spec = validSpec(ws, policy !== undefined ? { roundPromptOverlap: policy } : {});
      if (spec.prompts?.$case === 'roundPrompts') spec.prompts.value.rounds[1].uri = ws.roundPrompts[0];
      return spec;
    };
    await expect(validateSpec(sameTwice())).rejects.toThrow('invalid spec.round_prompts.rounds[1].uri: round 2 has no prompt left once the 6 that repeat');
    await expect(validateSpec(sameTwice(RoundPromptOverlap.ROUND_PROMPT_OVERLAP_ALLOW))).resolves.toBeDefined();
  });

  it('takes multi-turn conversational round and evaluation prompts (system, user, assistant turns ending with a user turn)', async () => {
    const file = (name: string, records: unknown[]) => {
      const p = path.join(ws.root, name);
      fs.writeFileSync(p, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      return p;
    };
    const turns = (i: number) => [
      { role: 'system', content: 'You answer briefly.' },
      { role: 'user', content: `question ${i}` },
      { role: 'assistant', content: `answer ${i}` },
      { role: 'user', content: `follow-up ${i}` },
    ];
    const spec = validSpec(ws, {
      prompts: { $case: 'roundPrompts', value: { rounds: [{ uri: file('multi-1.jsonl', [0, 1, 2].map((i) => ({ prompt: turns(i) }))) }, { uri: MULTI_TURN }] } },
      evaluation: { prompts: { uri: file('multi-eval.jsonl', [{ prompt: turns(9) }]) }, evaluator: JudgeMethod.JUDGE_METHOD_RULE, rule: 'toy/gold', samplesPerPrompt: 2 },
    });
    const validated = await validateSpec(spec);
    expect(validated.spec.prompts?.$case === 'roundPrompts' && validated.spec.prompts.value.rounds[1].sha256).toMatch(/^[0-9a-f]{64}$/);
    // The same conversation in a round and in the evaluation set is a training prompt held out: refused.
    const held = validSpec(ws, {
      prompts: { $case: 'roundPrompts', value: { rounds: [{ uri: file('multi-2.jsonl', [{ prompt: turns(9) }]) }, { uri: MULTI_TURN }] } },
      evaluation: { prompts: { uri: file('multi-eval.jsonl', [{ prompt: turns(9) }]) }, evaluator: JudgeMethod.JUDGE_METHOD_RULE, rule: 'toy/gold', samplesPerPrompt: 2 },
    });
    await expect(validateSpec(held)).rejects.toThrow('invalid spec.evaluation.prompts.uri: held-out prompt');
    // A conversation ending with the assistant's turn: INVALID_ARGUMENT naming the file's field, file:line and the turn.
    const bad = file('multi-bad.jsonl', [{ prompt: turns(0) }, { prompt: turns(1).slice(0, 3) }]);
    const error = await validateSpec(validSpec(ws, { prompts: { $case: 'roundPrompts', value: { rounds: [{ uri: bad }, { uri: MULTI_TURN }] } } })).catch((e) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.field).toBe('spec.round_prompts.rounds[0].uri');
    expect(error.message).toContain(`${bad}:2: "prompt[2].role" must be "user"`);
  });

  it('accepts a model without a chat template with raw-text prompts, and refuses the template or conversational data naming the field', async () => {
    const bare = makeWorkspace();
    try {
      for (const dir of [bare.hfCheckpoint, bare.onnx]) fs.rmSync(path.join(dir, 'chat_template.jinja'));
      fs.writeFileSync(path.join(bare.onnx, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|eos|>' }));
      await expect(validateSpec(validSpec(bare))).resolves.toBeDefined();
      await expect(validateSpec(validSpec(bare, { promptEncoding: PromptEncoding.PROMPT_ENCODING_RAW_TEXT }))).resolves.toBeDefined();
      const templated = await validateSpec(validSpec(bare, { promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE })).catch((e) => e);
      expect(templated).toBeInstanceOf(InvalidArgumentError);
      expect(templated.field).toBe('spec.prompt_encoding');
      expect(templated.message).toContain('is PROMPT_ENCODING_CHAT_TEMPLATE but base_model has no chat template');
      const conversational = await validateSpec(validSpec(bare, { prompts: { $case: 'roundPrompts', value: { rounds: [{ uri: bare.roundPrompts[0] }, { uri: MULTI_TURN }] } } })).catch((e) => e);
      expect(conversational.field).toBe('spec.round_prompts.rounds[1].uri');
      expect(conversational.message).toContain(`${MULTI_TURN}:1: "prompt" is a conversation (message list), which is rendered with the chat template, and base_model has none`);
      // A tokenizer_config.json chat template counts as one (transformers reads it when chat_template.jinja is absent).
      for (const dir of [bare.hfCheckpoint, bare.onnx]) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{{ messages }}' }));
      await expect(validateSpec(validSpec(bare, { promptEncoding: PromptEncoding.PROMPT_ENCODING_CHAT_TEMPLATE }))).resolves.toBeDefined();
      const unknown = await validateSpec(validSpec(bare, { promptEncoding: 7 as PromptEncoding })).catch((e) => e);
      expect([unknown.field, unknown.message]).toEqual(['spec.prompt_encoding', 'invalid spec.prompt_encoding: value must be one of the defined enum values, got 7']);
    } finally {
      bare.cleanup();
    }
  });

  // Issue 12: StartRun with seed_pairs={uri:/etc/hostname, sha256:0…} returned the real sha256 of any readable file.
  it('confines every input path under ARTIFACT_ROOTS / READ_ONLY_ROOTS: PERMISSION_DENIED naming the field, no digest', async () => {
    process.env.ARTIFACT_ROOTS = ws.root;
    try {
      await expect(validateSpec(validSpec(ws))).resolves.toBeDefined();
      const cases: Array<[string, (s: RunSpec) => void]> = [
        ['spec.seed_pairs.uri', (s) => (s.seedPairs = { uri: '/etc/hostname', sha256: '0'.repeat(64), sizeBytes: 0 })],
        ['spec.base_model.hf_checkpoint.uri', (s) => (s.baseModel!.hfCheckpoint!.uri = '/etc')],
        ['spec.base_model.onnx.uri', (s) => (s.baseModel!.onnx!.uri = path.join(ws.root, '..'))],
        ['spec.round_prompts.rounds[0].uri', (s) => s.prompts?.$case === 'roundPrompts' && (s.prompts.value.rounds[0].uri = '/etc/passwd')],
        ['spec.evaluation.prompts.uri', (s) => (s.evaluation!.prompts!.uri = 'file://localhost/etc/passwd')],
      ];
      for (const [field, mutate] of cases) {
        const spec = validSpec(ws);
        mutate(spec);
        const error = await validateSpec(spec).catch((e) => e);
        expect([field, error.constructor.name, error.field]).toEqual([field, 'PermissionDeniedError', field]);
        expect(error.message).not.toMatch(/[0-9a-f]{64}/);
      }
    } finally {
      delete process.env.ARTIFACT_ROOTS;
    }
  });

});
