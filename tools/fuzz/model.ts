/** The suite's vocabulary: services, RPCs, cases and the files the cases point at. */

export const SERVICE_NAMES = ['coordinator', 'generator', 'judge', 'dro-solver', 'trainer'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface RpcInfo {
  service: ServiceName;
  /** The method's name as the proto spells it, e.g. StartRun. */
  rpc: string;
  /** /alignment.v1.Coordinator/StartRun */
  path: string;
  /** Server-streaming (read to its end, or cancelled after the first message for the Watch calls). */
  streaming: boolean;
}

/**
 * What a case may be answered with, beyond "no crash, no hang, no UNKNOWN/INTERNAL":
 *   any     any of the expected codes (OK included)
 *   reject  anything but OK: the request is wrong (bytes that do not decode, NaN in a checked field, ...)
 *   ok      OK: the valid request each RPC's variations start from (shows that they reach past validation)
 */
export type Expectation = 'any' | 'reject' | 'ok';

export interface CaseSpec {
  /** Stable across runs and machines: family, field and the bad value's label (never a temporary path). */
  name: string;
  /** The request's bytes; built when the case runs (some are tens of MiB). */
  build: () => Uint8Array;
  expect: Expectation;
}

export interface FuzzCase extends CaseSpec {
  /** Position in the run, from 1. */
  index: number;
  rpc: RpcInfo;
}

/** One RPC's cases by family; the selection takes them family by family, round-robin. */
export interface RpcCatalog {
  rpc: RpcInfo;
  families: Record<string, CaseSpec[]>;
  /** A valid request's bytes, which the endless tail of mutations (flipped bytes, cuts, splices) starts from. */
  seedRequest: () => Uint8Array;
}

/** The files and directories the path cases name (tools/fuzz/fixtures.ts makes them in the run's temp dir). */
export interface Fixtures {
  /** The run's fixture directory (absolute). */
  dir: string;
  /** Tiny real models (tools/testing/tiny-models.ts): ONNX export directories and a Hugging Face checkpoint. */
  models: { policy: string; reference: string; reward: string; checkpoint: string };
  /** Valid inputs, so that a request's other fields get past validation. */
  valid: { seedPairs: string; prompts: string; roundPrompts: string[]; evalPrompts: string; responses: string; sftData: string };
  /** Bad inputs: a 600 KB file with no newline, random bytes, lines that are not JSON, ... */
  bad: {
    longLine: string;
    binary: string;
    notJson: string;
    wrongShape: string;
    empty: string;
    fifo: string | undefined;
    symlinkLoop: string;
    symlinkToPasswd: string;
    emptyDir: string;
    fakeModelDir: string;
  };
  /** Where output cases may write: everything inside the fixture directory (see README, "Outputs"). */
  outputs: { existingFile: string; emptyDir: string; nonEmptyDir: string; missingParent: string; fifo: string | undefined };
}
