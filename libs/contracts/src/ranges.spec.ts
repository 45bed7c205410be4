// The buf.validate ranges as @bufbuild/protovalidate checks them: every cross-language case (testing/range-cases.json,
// also run by the trainer's and the Python client's pytest) is refused with its field path and message, and the bases
// are in range, so it is the case's value that is refused.
import { mergeJson, rangeCases } from '@alignment/contracts/testing';
import { JobSpec, rangeViolations, RunSpec, TrainingHyperparams } from './index';

const cases = rangeCases();
const runSpecViolations = (json: Record<string, unknown>) => rangeViolations('alignment.v1.RunSpec', RunSpec.encode(RunSpec.fromJSON(json)).finish());
const jobSpecViolations = (json: Record<string, unknown>) => rangeViolations('alignment.v1.JobSpec', JobSpec.encode(JobSpec.fromJSON(json)).finish());

describe('rangeViolations', () => {
  it('finds nothing out of range in the bases', () => {
    expect(runSpecViolations(cases.runSpecBase)).toEqual([]);
    expect(jobSpecViolations(cases.jobSpecBase)).toEqual([]);
  });

  it.each(cases.runSpec.map((c) => [c.field, c] as const))('RunSpec: refuses %s', (_field, c) => {
    const [first] = runSpecViolations(mergeJson(cases.runSpecBase, c.set));
    expect(first && { field: `spec.${first.field}`, description: first.description }).toEqual({ field: c.field, description: c.description });
  });

  it.each(cases.jobSpec.map((c) => [c.field, c] as const))('JobSpec: refuses %s', (_field, c) => {
    const [first] = jobSpecViolations(mergeJson(cases.jobSpecBase, c.set));
    expect(first && { field: `spec.${first.field}`, description: first.description }).toEqual({ field: c.field, description: c.description });
  });

  it('names list positions and reports every violation in field order, NaN and strings shown', () => {
    const spec = RunSpec.fromPartial({
      rounds: 21,
      generation: { stop: ['###', ''] },
      loss: { dndLambdaSchedule: [0.5, NaN] },
    });
    expect(rangeViolations('alignment.v1.RunSpec', RunSpec.encode(spec).finish())).toEqual([
      { field: 'rounds', description: 'must be less than or equal to 20, got 21' },
      { field: 'generation.stop[1]', description: 'must be at least 1 characters, got ""' },
      { field: 'loss.dnd_lambda_schedule[1]', description: 'must be greater than or equal to 0, got NaN' },
      { field: 'loss.dnd_lambda_schedule[1]', description: 'must be finite, got NaN' },
    ]);
  });

  it('takes 0 as the default where the proto says so, and refuses values outside a string set', () => {
    const ok = TrainingHyperparams.fromPartial({ learningRate: 0.1, maxLength: 0, lrScheduler: '' });
    expect(rangeViolations('alignment.v1.TrainingHyperparams', TrainingHyperparams.encode(ok).finish())).toEqual([]);
    const bad = TrainingHyperparams.fromPartial({ learningRate: 0.1, maxLength: 1, lrScheduler: 'step' });
    expect(rangeViolations('alignment.v1.TrainingHyperparams', TrainingHyperparams.encode(bad).finish())).toEqual([
      { field: 'max_length', description: 'must be greater than or equal to 2, got 1' },
      { field: 'lr_scheduler', description: 'must be in list [cosine, linear, constant], got "step"' },
    ]);
  });

  it('throws for a type the descriptor set does not have', () => {
    expect(() => rangeViolations('alignment.v1.NoSuchMessage', new Uint8Array())).toThrow(/no message alignment.v1.NoSuchMessage/);
  });
});
