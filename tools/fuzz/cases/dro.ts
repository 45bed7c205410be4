/** alignment.v1.DroSolver (Solve): the numbers, the budget, the modes and the sample-count caps. */
import { DroSolverService, SolveMode, SolveRequest } from '@alignment/contracts';
import type { CaseSpec } from '../model';
import { BAD_DOUBLES, BAD_ENUMS, NON_FINITE } from '../values';
import { doubleField, varintField } from '../wire';
import { fieldCases, rawCase, rpcsOf, variant } from './build';

export const DRO_RPCS = rpcsOf('dro-solver', DroSolverService);

/** DRO_MAX_SAMPLES' default (services/dro-solver/src/service.ts). */
const MAX_SAMPLES = 1_000_000;

export function validSolve(): any {
  return { logXi: [-0.1, -0.5, -1, -2], weights: [], radius: { $case: 'rho', value: 0.25 }, delta: 0.01, mode: SolveMode.SOLVE_MODE_EXACT, omitAtoms: false };
}

const MODES: Array<readonly [string, SolveMode]> = [
  ['EXACT', SolveMode.SOLVE_MODE_EXACT],
  ['LP', SolveMode.SOLVE_MODE_LP],
  ['DUAL', SolveMode.SOLVE_MODE_DUAL],
];

function solveFamilies(): Record<string, CaseSpec[]> {
  const base = validSolve;
  const v = (name: string, expect: CaseSpec['expect'], edit: (r: any) => void) => variant(SolveRequest, base, name, expect, edit);
  const perMode = (name: string, expect: CaseSpec['expect'], edit: (r: any) => void) =>
    MODES.map(([label, mode]) => v(`${name}/${label}`, expect, (r) => {
      r.mode = mode;
      edit(r);
    }));
  return {
    baseline: MODES.map(([label, mode]) => v(`baseline:valid-${label}`, 'ok', (r) => (r.mode = mode))),
    'non-finite': [
      ...NON_FINITE.slice(0, 2).flatMap(([label, x]) => perMode(`non-finite:log_xi[1]=${label}`, 'reject', (r) => (r.logXi[1] = x))),
      ...perMode('non-finite:log_xi[1]=-Inf', 'any', (r) => (r.logXi[1] = -Infinity)),
      ...NON_FINITE.flatMap(([label, x]) => perMode(`non-finite:weights[0]=${label}`, 'reject', (r) => (r.weights = [x, 1, 1, 1]))),
      ...fieldCases(SolveRequest, base, 'non-finite', ['delta'], NON_FINITE, 'reject'),
      ...NON_FINITE.map(([label, x]) => v(`non-finite:epsilon=${label}`, 'reject', (r) => (r.radius = { $case: 'epsilon', value: x }))),
      ...NON_FINITE.map(([label, x]) => v(`non-finite:rho=${label}`, 'reject', (r) => (r.radius = { $case: 'rho', value: x }))),
    ],
    'odd-double': [
      ...BAD_DOUBLES.slice(3).flatMap(([label, x]) => perMode(`odd-double:log_xi[0]=${label}`, 'any', (r) => (r.logXi[0] = x))),
      ...BAD_DOUBLES.slice(3).map(([label, x]) => v(`odd-double:delta=${label}`, 'any', (r) => (r.delta = x))),
      ...BAD_DOUBLES.slice(3).map(([label, x]) => v(`odd-double:epsilon=${label}`, 'any', (r) => (r.radius = { $case: 'epsilon', value: x }))),
      ...BAD_DOUBLES.slice(3).map(([label, x]) => v(`odd-double:rho=${label}`, 'any', (r) => (r.radius = { $case: 'rho', value: x }))),
      ...perMode('odd-double:weights=all-1e308', 'any', (r) => (r.weights = [1e308, 1e308, 1e308, 1e308])),
      ...perMode('odd-double:weights=5e-324', 'any', (r) => (r.weights = [5e-324, 0, 0, 0])),
      ...perMode('odd-double:log_xi=all--1e308', 'any', (r) => (r.logXi = [-1e308, -1e308, -1e308, -1e308])),
      ...perMode('odd-double:log_xi=-0', 'any', (r) => (r.logXi = [-0, -0, -0, -0])),
      ...perMode('odd-double:delta=0.5-eps', 'any', (r) => (r.delta = 0.5 - 2 ** -53)),
      ...perMode('odd-double:rho=1-eps', 'any', (r) => (r.radius = { $case: 'rho', value: 1 - 2 ** -53 })),
    ],
    enum: fieldCases(SolveRequest, base, 'enum', ['mode'], BAD_ENUMS, 'reject'),
    missing: [
      v('missing:radius', 'reject', (r) => delete r.radius),
      v('missing:delta', 'reject', (r) => (r.delta = 0)),
      v('missing:log_xi', 'reject', (r) => (r.logXi = [])),
      v('missing:weights=all-zero', 'reject', (r) => (r.weights = [0, 0, 0, 0])),
      v('missing:weights=length-mismatch', 'reject', (r) => (r.weights = [1, 1])),
      v('missing:weights=negative', 'reject', (r) => (r.weights = [1, -1, 1, 1])),
    ],
    repeated: [
      v('repeated:log_xi=DRO_MAX_SAMPLES', 'ok', (r) => (r.logXi = Array.from({ length: MAX_SAMPLES }, (_, i) => -((i % 1000) + 1) / 500))),
      v('repeated:log_xi=DRO_MAX_SAMPLES+1', 'reject', (r) => (r.logXi = new Array(MAX_SAMPLES + 1).fill(-0.5))),
      v('repeated:log_xi=4e6-within-64MiB', 'reject', (r) => (r.logXi = new Array(4_000_000).fill(-0.5))),
      v('repeated:log_xi=1e6-DUAL', 'ok', (r) => {
        r.logXi = Array.from({ length: MAX_SAMPLES }, (_, i) => -((i % 997) + 1) / 300);
        r.mode = SolveMode.SOLVE_MODE_DUAL;
      }),
      v('repeated:log_xi=LP_MAX+1/LP', 'reject', (r) => {
        r.logXi = new Array(301).fill(-0.5);
        r.mode = SolveMode.SOLVE_MODE_LP;
      }),
      v('repeated:log_xi=300-equal/LP', 'ok', (r) => {
        r.logXi = new Array(300).fill(-0.5);
        r.mode = SolveMode.SOLVE_MODE_LP;
      }),
      v('repeated:log_xi=300-spread/LP', 'ok', (r) => {
        r.logXi = Array.from({ length: 300 }, (_, i) => -i / 10);
        r.weights = Array.from({ length: 300 }, (_, i) => (i % 7) + 1e-300);
        r.mode = SolveMode.SOLVE_MODE_LP;
      }),
      v('repeated:weights=1e6-vs-4-samples', 'reject', (r) => (r.weights = new Array(MAX_SAMPLES).fill(1))),
    ],
    'wire-range': [
      rawCase('wire-range:log_xi-unpacked-NaN', 'reject', () => Buffer.concat([doubleField(1, Number.NaN), doubleField(5, 0.01), doubleField(4, 0.25)])),
      rawCase('wire-range:both-epsilon-and-rho', 'any', () => Buffer.concat([doubleField(1, -0.5), doubleField(3, 0.1), doubleField(4, 0.25), doubleField(5, 0.01)])),
      rawCase('wire-range:mode=-1-as-10-byte-varint', 'reject', () => Buffer.concat([doubleField(1, -0.5), doubleField(4, 0.25), doubleField(5, 0.01), varintField(6, -1)])),
      rawCase('wire-range:mode=2^40', 'any', () => Buffer.concat([doubleField(1, -0.5), doubleField(4, 0.25), doubleField(5, 0.01), varintField(6, 2n ** 40n)])),
      rawCase('wire-range:packed-log_xi-odd-length', 'reject', () => Buffer.from([0x0a, 0x07, 0, 0, 0, 0, 0, 0, 0xe0])),
    ],
  };
}

export function droFamilies(): Record<string, Record<string, CaseSpec[]>> {
  return { Solve: solveFamilies() };
}
