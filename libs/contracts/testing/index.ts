import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The cross-language range cases (range-cases.json): out-of-range values that the TypeScript checkers and the Python
 * ones (the trainer, the Python client) must refuse with the same field path and message.
 */
export interface RangeCase {
  /** proto3 JSON merged into the base (mergeJson). */
  set: Record<string, unknown>;
  /** The field path every checker names, `spec.` + the proto path. */
  field: string;
  /** The description every checker gives. */
  description: string;
}

export interface RangeCases {
  /** A RunSpec (proto3 JSON) with every annotated field in range. */
  runSpecBase: Record<string, unknown>;
  runSpec: RangeCase[];
  /** A trainer JobSpec (proto3 JSON) with every annotated field in range. */
  jobSpecBase: Record<string, unknown>;
  jobSpec: RangeCase[];
}

export const RANGE_CASES_PATH = path.join(__dirname, 'range-cases.json');

export function rangeCases(): RangeCases {
  return JSON.parse(fs.readFileSync(RANGE_CASES_PATH, 'utf8')) as RangeCases;
}

/** `base` with `set` merged in: objects key by key, anything else replaced, a null removing the key. */
export function mergeJson(base: Record<string, unknown>, set: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(set)) {
    const current = out[key];
    if (value === null) delete out[key];
    else if (isObject(value) && isObject(current)) out[key] = mergeJson(current, value);
    else out[key] = value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
