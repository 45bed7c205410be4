import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

/** Lower-case hex sha256 of a file, streamed (files may be larger than memory). */
export function sha256File(filePath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(filePath)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}
