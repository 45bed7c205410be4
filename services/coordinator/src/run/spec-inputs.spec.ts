// RunSpec validation of the paths and prompt files a spec names: round prompts that repeat (issue 13's overlap
// policy) and inputs outside ARTIFACT_ROOTS (issue 12's confinement).
import * as path from 'node:path';
import { RoundPromptOverlap, type RunSpec } from '@alignment/contracts';
import { makeWorkspace, validSpec, type Workspace } from '../../testing/run-fixtures';
import { validateSpec } from './run-spec';

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
