/** The bad values the structured cases put in fields, each with the label that names it in a case name. */
import type { Fixtures } from './model';

export type Labelled<T> = readonly [label: string, value: T];

export const MIB = 1024 * 1024;

/** Doubles no field should take as they are (a few are in range for some fields: those cases expect 'any'). */
export const BAD_DOUBLES: Labelled<number>[] = [
  ['NaN', Number.NaN],
  ['+Inf', Number.POSITIVE_INFINITY],
  ['-Inf', Number.NEGATIVE_INFINITY],
  ['-1', -1],
  ['1e308', 1e308],
  ['-1e308', -1e308],
  ['5e-324', 5e-324],
  ['2^53+2', 2 ** 53 + 2],
];

/** The doubles that are never valid anywhere (the fields that take them must refuse). */
export const NON_FINITE: Labelled<number>[] = BAD_DOUBLES.slice(0, 3);

/** uint32 values at the edges of the type. */
export const EDGE_UINT32: Labelled<number>[] = [
  ['2^31', 2 ** 31],
  ['2^32-1', 2 ** 32 - 1],
  ['1e6', 1_000_000],
];

/** Enum numbers no enum of alignment.v1 defines. */
export const BAD_ENUMS: Labelled<number>[] = [
  ['999', 999],
  ['-1', -1],
  ['2^31-1', 2 ** 31 - 1],
];

/** Strings for id-like and name-like fields. */
export function badStrings(): Labelled<() => string>[] {
  return [
    ['1MiB', () => 'a'.repeat(MIB)],
    ['nul', () => 'run\0id'],
    ['traversal', () => '../../../../etc/passwd'],
    ['slash', () => 'a/b'],
    ['newline', () => 'a\nb'],
    ['unicode', () => 'ŕüñ-\u202e-😀'],
    ['sql', () => "x' OR '1'='1"],
    ['format', () => '%s%n%x{}${}'],
    ['space', () => ' '],
    ['lone-surrogate', () => 'a\ud800b'],
  ];
}

/** Identifiers that look valid but name nothing. */
export const UNKNOWN_IDS: Labelled<string>[] = [
  ['missing-id', 'fuzz-no-such-id-0001'],
  ['dot', '.'],
  ['dotdot', '..'],
  ['64-chars', 'a'.repeat(64)],
  ['65-chars', 'b'.repeat(65)],
  ['129-chars', 'c'.repeat(129)],
];

/** Page tokens a client might forge. */
export const BAD_PAGE_TOKENS: Labelled<string>[] = [
  ['1e22', '1e22'],
  ['0x10', '0x10'],
  ['-1', '-1'],
  ['NaN', 'NaN'],
  ['Infinity', 'Infinity'],
  ['20-digits', '99999999999999999999'],
  ['superscript-2', '²'],
  ['arabic-digits', '١٢'],
  ['digit-nul', '1\0'],
  ['base64', 'eyJvZmZzZXQiOi0xfQ=='],
];

/**
 * URIs for input fields (files and directories the service reads). System paths are only read: no case ever names
 * one as an output (README, "Outputs").
 */
export function inputUris(f: Fixtures): Labelled<string>[] {
  const list: Labelled<string>[] = [
    ['/etc/passwd', '/etc/passwd'],
    ['/dev/zero', '/dev/zero'],
    ['/dev/urandom', '/dev/urandom'],
    ['/proc/self/environ', '/proc/self/environ'],
    ['/proc/self/mem', '/proc/self/mem'],
    ['root-dir', '/'],
    ['empty-dir', f.bad.emptyDir],
    ['fake-model-dir', f.bad.fakeModelDir],
    ['dotdot-escape', `${f.dir}/../../../../../../etc/passwd`],
    ['relative-escape', '../../../../../../../../etc/hostname'],
    ['file-localhost', 'file://localhost/etc/passwd'],
    ['file-remote-host', 'file://example.com/etc/passwd'],
    ['file-nonexistent', 'file:///nonexistent/fuzz/input.jsonl'],
    ['file-pct-nul', 'file:///tmp/a%00b'],
    ['file-bad-pct', 'file:///tmp/%E0%A4%A'],
    ['file-no-path', 'file://'],
    ['s3', 's3://bucket/key.jsonl'],
    ['http', 'http://127.0.0.1:9/x.jsonl'],
    ['nul-byte', `${f.valid.prompts}\0.txt`],
    ['name-too-long', `/tmp/${'n'.repeat(5000)}`],
    ['1MiB-uri', '/'.repeat(MIB)],
    ['600KB-no-newline', f.bad.longLine],
    ['binary-file', f.bad.binary],
    ['not-json-lines', f.bad.notJson],
    ['wrong-shape-json', f.bad.wrongShape],
    ['empty-file', f.bad.empty],
    ['symlink-loop', f.bad.symlinkLoop],
    ['symlink-to-passwd', f.bad.symlinkToPasswd],
    ['windows-path', 'C:\\Windows\\system32\\config'],
    ['tilde', '~/x.jsonl'],
    ['whitespace', ' \t\n'],
  ];
  if (f.bad.fifo) list.push(['fifo', f.bad.fifo]);
  return list;
}

/** URIs for output fields: bad ones, but every one that can be written lies inside the fixture directory. */
export function outputUris(f: Fixtures): Labelled<string>[] {
  const list: Labelled<string>[] = [
    ['existing-file', f.outputs.existingFile],
    ['empty-dir', f.outputs.emptyDir],
    ['non-empty-dir', f.outputs.nonEmptyDir],
    ['missing-parent', f.outputs.missingParent],
    ['under-a-file', `${f.outputs.existingFile}/out.jsonl`],
    ['dotdot-inside', `${f.outputs.emptyDir}/../out-dotdot.jsonl`],
    ['file-localhost', `file://localhost${f.outputs.emptyDir}/out-localhost.jsonl`],
    ['file-remote-host', 'file://example.com/tmp/out.jsonl'],
    ['file-bad-pct', 'file:///tmp/%E0%A4%A'],
    ['s3', 's3://bucket/out.jsonl'],
    ['nul-byte', `${f.outputs.emptyDir}/out\0.jsonl`],
    ['name-too-long', `${f.outputs.emptyDir}/${'n'.repeat(5000)}`],
    ['1MiB-uri', `${f.outputs.emptyDir}/${'d/'.repeat(MIB / 2)}`],
    ['whitespace', ' \t\n'],
  ];
  if (f.outputs.fifo) list.push(['fifo', f.outputs.fifo]);
  return list;
}

/** sha256 fields: not hex, the wrong length, upper case of a wrong digest, 1 MiB. */
export const BAD_SHA256: Labelled<() => string>[] = [
  ['not-hex', () => 'z'.repeat(64)],
  ['short', () => 'abc'],
  ['wrong-digest', () => 'A'.repeat(64)],
  ['1MiB', () => 'f'.repeat(MIB)],
];
