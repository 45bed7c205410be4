// StartRun's validation refuses each out-of-range value of the cross-language cases (libs/contracts/testing/
// range-cases.json, also refused by the Python client with the same field path and message) before it opens a file.
import { RunSpec } from '@alignment/contracts';
import { mergeJson, rangeCases } from '@alignment/contracts/testing';
import { InvalidArgumentError } from '@alignment/errors';
import { validateSpec } from '../run-spec';

const cases = rangeCases();

async function refusal(json: Record<string, unknown>): Promise<InvalidArgumentError> {
  const error = await validateSpec(RunSpec.fromJSON(json)).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InvalidArgumentError)) throw new Error(`expected an InvalidArgumentError, got ${String(error)}`);
  return error;
}

describe('validateSpec: the buf.validate ranges', () => {
  it.each(cases.runSpec.map((c) => [c.field, c] as const))('refuses %s with its range', async (_field, c) => {
    const error = await refusal(mergeJson(cases.runSpecBase, c.set));
    expect([error.field, error.reason]).toEqual([c.field, c.description]);
  });

  it('gets past the ranges with the base (it is refused later, for its files)', async () => {
    const error = await refusal(cases.runSpecBase);
    expect(error.field).toBe('spec.base_model.onnx.uri');
  });
});
