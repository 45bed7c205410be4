// The spec's input files: what pinning says about one that cannot be used.
import { InvalidArgumentError } from '@alignment/errors';
import { pinFile } from './pinning';

describe('pinFile', () => {
  // tools/fuzz: a file that is there but cannot be read (/proc/self/mem: EIO) was an INTERNAL error.
  it('names an input file that cannot be read', async () => {
    const error = await pinFile({ uri: '/proc/self/mem', sha256: '', sizeBytes: 0 }, 'seed_pairs').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect([(error as InvalidArgumentError).field, (error as Error).message]).toEqual([
      'spec.seed_pairs.uri',
      'invalid spec.seed_pairs.uri: /proc/self/mem: cannot be read (EIO)',
    ]);
  });
});
