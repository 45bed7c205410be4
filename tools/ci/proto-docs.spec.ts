import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.join(__dirname, 'proto-docs.py');

/** Runs proto-docs.py with plain python3 (the script uses the standard library only) on ROOT, or this repository. */
function check(root?: string): { status: number | null; stdout: string } {
  const run = spawnSync('python3', root ? [SCRIPT, root] : [SCRIPT], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout };
}

/** A temporary tree holding one file, proto/x/v1/x.proto. */
function tree(proto: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'proto-docs-'));
  fs.mkdirSync(path.join(root, 'proto/x/v1'), { recursive: true });
  fs.writeFileSync(path.join(root, 'proto/x/v1/x.proto'), proto);
  return root;
}

const DOCUMENTED = `syntax = "proto3";

package x.v1;

import "google/protobuf/descriptor.proto";

// An option.
extend google.protobuf.MessageOptions {
  // Whether the record is open.
  bool open = 50001;
}

// The service.
service S {
  // One call.
  rpc Get(Req) returns (stream Req);
  // Another, with a body.
  rpc Put(Req) returns (Req) {
    option deprecated = true;
  }
}

// A request.
message Req {
  option (open) = true;
  reserved 9, 10;
  reserved "old";

  // The name.
  string name = 1;
  // Per-key values,
  // over two lines.
  map<string, double> values = 2;
  optional uint32 size = 3; // Bytes; default 0.
  // One or the other.
  oneof choice {
    // A number.
    int64 number = 4 [deprecated = true];
    /* A text. */
    string text = 5;
  }
  // A nested message.
  message Inner {
    // Its kind.
    Kind kind = 1;
  }
  // A nested enum.
  enum Kind {
    // Unset.
    KIND_UNSPECIFIED = 0;
    KIND_A = 1; // The first.
  }
}
`;

/** The summary line's counts for DOCUMENTED (the extension field counts as a field). */
const COUNTS = '1 proto files, 16 elements (2 messages, 1 enums, 1 services, 2 rpcs, 1 oneofs, 7 fields, 2 enum values)';

describe('proto-docs.py', () => {
  let root: string;
  afterEach(() => root && fs.rmSync(root, { recursive: true, force: true }));

  it('passes a proto whose every element has a leading or trailing comment', () => {
    root = tree(DOCUMENTED);
    const run = check(root);
    expect(run.stdout).toBe(`${COUNTS}, 0 undocumented\n`);
    expect(run.status).toBe(0);
  });

  it('fails on an undocumented field, naming it with file:line', () => {
    root = tree(DOCUMENTED.replace('  // The name.\n', ''));
    const run = check(root);
    expect(run.status).toBe(1);
    expect(run.stdout.trim().split('\n')).toEqual([
      'proto/x/v1/x.proto:29: field x.v1.Req.name has no comment',
      `${COUNTS}, 1 undocumented`,
    ]);
  });

  it('takes no comment across a blank line, nor a trailing one for a message, oneof or rpc', () => {
    root = tree(
      DOCUMENTED.replace('  // A nested message.\n', '  // Detached.\n\n')
        .replace('  // One or the other.\n  oneof choice {', '  oneof choice { // One or the other.')
        .replace('  // One call.\n  rpc Get(Req) returns (stream Req);', '  rpc Get(Req) returns (stream Req); // One call.')
        .replace('    // Unset.\n', ''),
    );
    const run = check(root);
    expect(run.status).toBe(1);
    expect(run.stdout.trim().split('\n').slice(0, -1)).toEqual([
      'proto/x/v1/x.proto:15: rpc x.v1.S.Get has no comment',
      'proto/x/v1/x.proto:34: oneof x.v1.Req.choice has no comment',
      'proto/x/v1/x.proto:42: message x.v1.Req.Inner has no comment',
      'proto/x/v1/x.proto:48: enum value x.v1.Req.Kind.KIND_UNSPECIFIED has no comment',
    ]);
  });

  it("passes this repository's protos", () => {
    const run = check();
    expect(run.stdout).toMatch(/^\d+ proto files, \d+ elements .*, 0 undocumented$/m);
    expect(run.status).toBe(0);
  });
});
