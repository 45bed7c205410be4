import { randomBytes } from 'node:crypto';
import * as path from 'node:path';

/**
 * The local artifact store: a root directory under which a service puts the outputs whose location the caller
 * left to it (an empty output_uri in a request). Callers that key outputs themselves (the coordinator, by run,
 * round and stage) pass an explicit URI instead.
 */
export class ArtifactStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /**
   * A fresh path `<root>/<kind>/<UTC timestamp>-<random>.<extension>`: sortable by creation time, and unique
   * without coordination between replicas sharing the root.
   */
  allocate(kind: string, extension: string): string {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(kind)) throw new Error(`artifact kind must be a simple lower-case name, got '${kind}'`);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    return path.join(this.root, kind, `${stamp}-${randomBytes(6).toString('hex')}.${extension.replace(/^\./, '')}`);
  }
}
