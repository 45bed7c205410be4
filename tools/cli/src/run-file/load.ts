import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { RunSpec, StartRunRequest } from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import { interpolateValues } from './interpolate';
import { messageType, normalizeMessage } from './proto-json';

/**
 * A run file: YAML (or JSON, by its `.json` extension) holding either a StartRunRequest (`run_id` and `spec`, as
 * examples/micro-run.json) or a bare RunSpec. String values are interpolated from the environment (interpolate.ts),
 * then checked against the proto and normalised (proto-json.ts), and the relative URIs resolved against the file's
 * directory. Errors: RunFileError (the file cannot be read or parsed) or InvalidArgumentError naming the field.
 */

export interface RunFile {
  /** The file's run_id ('' when it has none). */
  runId: string;
  spec: RunSpec;
}

/** A run file that cannot be read or parsed (not a field's fault). */
export class RunFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFileError';
  }
}

/** The document in a run file's text: JSON for `.json`, else YAML (with line and column in errors). */
export function parseRunText(text: string, file: string): unknown {
  if (file.toLowerCase().endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new RunFileError(`not valid JSON: ${(error as Error).message}`);
    }
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new RunFileError(`not valid YAML: ${doc.errors[0].message}`);
  return doc.toJS({ maxAliasCount: 1000 });
}

/** A parsed run file document as a run: interpolated, checked, its URIs resolved against `baseDir`. */
export function runFromDocument(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv): RunFile {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new RunFileError('must be a mapping: a RunSpec, or `run_id` and `spec` (a StartRunRequest)');
  }
  // `spec` or `run_id` at the top: a StartRunRequest, whose paths (spec.x, run_id) are the coordinator's; else a
  // bare RunSpec, named `spec.x` all the same.
  const request = ['spec', 'run_id', 'runId'].some((key) => key in doc);
  const prefix = request ? '' : 'spec';
  const interpolated = interpolateValues(doc, env, (error, at) => {
    throw new InvalidArgumentError(prefix === '' ? at : `${prefix}.${at}`, error.message);
  });
  if (request) {
    const json = normalizeMessage(messageType('alignment.v1.StartRunRequest'), interpolated, prefix, baseDir);
    const parsed = StartRunRequest.fromJSON(json);
    if (!parsed.spec) throw new InvalidArgumentError('spec', 'is required (the RunSpec)');
    return { runId: parsed.runId, spec: parsed.spec };
  }
  return { runId: '', spec: RunSpec.fromJSON(normalizeMessage(messageType('alignment.v1.RunSpec'), interpolated, prefix, baseDir)) };
}

/** Reads a run file; its relative URIs are resolved against its own directory. */
export function loadRunFile(file: string, env: NodeJS.ProcessEnv = process.env): RunFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RunFileError(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message);
  }
  const doc = parseRunText(text, file);
  if (doc === null || doc === undefined) throw new RunFileError('is empty');
  return runFromDocument(doc, path.dirname(path.resolve(file)), env);
}
