import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, PermissionDeniedError } from '@alignment/errors';

/**
 * Where a service may read and write the paths its callers name (issue 12: output_uri wrote anywhere, JSONL and hash
 * checks read anywhere). `readWrite` (ARTIFACT_ROOTS: the data root, where outputs go) may be read and written;
 * `readOnly` (READ_ONLY_ROOTS: models and data sets) only read. Both colon-separated lists of directories.
 */
export interface ArtifactRoots {
  readWrite: string[];
  readOnly: string[];
}

/** The roots from the environment, real paths; undefined when ARTIFACT_ROOTS is unset (paths are not confined). */
export function artifactRootsFromEnv(env: NodeJS.ProcessEnv = process.env): ArtifactRoots | undefined {
  const list = (raw: string | undefined) => (raw ?? '').split(':').map((r) => r.trim()).filter((r) => r !== '').map(realPathOf);
  if (!env.ARTIFACT_ROOTS?.trim()) return undefined;
  return { readWrite: list(env.ARTIFACT_ROOTS), readOnly: list(env.READ_ONLY_ROOTS) };
}

/** Linux's limit on a path, in bytes, its NUL included. */
const PATH_MAX = 4096;

let cached: { key: string; roots: ArtifactRoots | undefined } | undefined;

function currentRoots(): ArtifactRoots | undefined {
  const key = `${process.env.ARTIFACT_ROOTS ?? ''}\0${process.env.READ_ONLY_ROOTS ?? ''}`;
  if (cached?.key !== key) cached = { key, roots: artifactRootsFromEnv() };
  return cached.roots;
}

/**
 * `localPath` with its symbolic links resolved, if it lies under a root this service may `mode` — else a
 * PermissionDeniedError on `field`, whose message is the same whether or not the path exists. Without roots
 * (ARTIFACT_ROOTS unset) the path is returned as given.
 */
export function confinePath(localPath: string, field: string, mode: 'read' | 'write', roots = currentRoots()): string {
  if (!roots) return localPath;
  // No longer path names a file, and realPathOf would walk it one component at a time: a 1 MiB output_uri of "d/d/…"
  // kept the event loop (health checks included) busy for minutes (tools/fuzz). INVALID_ARGUMENT, leaking nothing.
  const bytes = Buffer.byteLength(path.resolve(localPath));
  if (bytes >= PATH_MAX) throw new InvalidArgumentError(field, `the path is ${bytes} bytes long; at most ${PATH_MAX - 1} name a file`);
  const allowed = mode === 'write' ? roots.readWrite : [...roots.readWrite, ...roots.readOnly];
  const real = realPathOf(localPath);
  if (!allowed.some((root) => real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep))) {
    const where = mode === 'write' ? 'ARTIFACT_ROOTS' : 'ARTIFACT_ROOTS or READ_ONLY_ROOTS';
    throw new PermissionDeniedError(field, `the path is outside the directories this service may ${mode} (${where})`);
  }
  return real;
}

/** The real path of `p`: symbolic links of its longest existing prefix resolved, the rest appended as written. */
function realPathOf(p: string): string {
  const absolute = path.resolve(p);
  const rest: string[] = [];
  let head = absolute;
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...rest.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return absolute;
      rest.push(path.basename(head));
      head = parent;
    }
  }
}
