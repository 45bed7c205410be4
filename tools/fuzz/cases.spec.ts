import { createHash } from 'node:crypto';
import {
  CoordinatorService,
  DroSolverService,
  GeneratorService,
  JudgeService,
  TrainerService,
} from '@alignment/contracts';
import { ALL_RPCS, caseStream, catalogSizes, catalogs, pickCases, pickMatching } from './cases';
import { malformedCases } from './cases/raw';
import { fakeFixtures } from './fixtures';
import { SERVICE_NAMES, type FuzzCase } from './model';

const fixtures = fakeFixtures('/fuzz-fixtures-dir');
const all = catalogs(fixtures, 'spec');
const pick = (n: number, seed = 'spec') => pickCases(catalogs(fixtures, seed), n, seed);
const names = (cases: FuzzCase[]) => cases.map((c) => `${c.rpc.path} ${c.name}`);
/** Cases small enough to build in a unit test (the others are tens of MiB or 10^5 items). */
const small = (c: FuzzCase) => !/oversized|1e5|1e6|4e6|10000|MAX_SAMPLES|1MiB|100k|5000|over-MAX_TEXT_BYTES/.test(c.name);
const digest = (c: FuzzCase) => createHash('sha256').update(c.build()).digest('hex');

describe('the case list', () => {
  it('is the same for the same seed, bytes included, and another for another seed', () => {
    const a = pick(300);
    const b = pick(300);
    expect(names(a)).toEqual(names(b));
    const sample = a.filter(small);
    expect(sample.length).toBeGreaterThan(150);
    expect(sample.map(digest)).toEqual(b.filter(small).map(digest));
    expect(names(pick(300, 'other seed'))).not.toEqual(names(a));
  });

  it('has exactly N cases, numbered 1..N, and a larger N only adds cases', () => {
    for (const n of [1, 7, 60, 301]) {
      const cases = pick(n);
      expect(cases).toHaveLength(n);
      expect(cases.map((c) => c.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
    expect(names(pick(400)).slice(0, 60)).toEqual(names(pick(60)));
  });

  it('gives each service N/5 cases and reaches every RPC of every service, at the CI size already', () => {
    const cases = pick(60);
    for (const service of SERVICE_NAMES) expect(cases.filter((c) => c.rpc.service === service)).toHaveLength(12);
    const reached = new Set(cases.map((c) => c.rpc.path));
    expect([...reached].sort()).toEqual(Object.values(ALL_RPCS).flat().map((r) => r.path).sort());
  });

  it('covers every method of the five protos, with the streaming ones marked', () => {
    const definitions = [CoordinatorService, GeneratorService, JudgeService, DroSolverService, TrainerService];
    const paths = definitions.flatMap((d) => Object.values(d).map((m) => m.path)).sort();
    expect(all.map((c) => c.rpc.path).sort()).toEqual(paths);
    const streaming = all.filter((c) => c.rpc.streaming).map((c) => c.rpc.rpc).sort();
    expect(streaming).toEqual(['Generate', 'JudgePairs', 'WatchJob', 'WatchRun']);
  });

  it('starts each RPC that has a valid request with it, then takes one case of every family in turn', () => {
    for (const catalog of all) {
      const familyOf = new Map(Object.entries(catalog.families).flatMap(([family, list]) => list.map((c) => [c.name, family] as const)));
      const stream = caseStream(catalog, 'spec');
      const baselines = catalog.families.baseline?.length ?? 0;
      if (baselines > 0) expect(familyOf.get(stream.next().value!.name)).toBe('baseline');
      const queues = Object.keys(catalog.families).filter((f) => f !== 'baseline' || baselines > 1);
      const round = Array.from({ length: queues.length }, () => familyOf.get(stream.next().value!.name));
      expect(round.sort()).toEqual(queues.sort());
    }
  });

  it('names cases uniquely within an RPC and never with a temporary path', () => {
    for (const catalog of all) {
      const list = Object.values(catalog.families).flat().map((c) => c.name);
      expect(new Set(list).size).toBe(list.length);
      expect(list.filter((n) => n.includes(fixtures.dir))).toEqual([]);
    }
    expect(Object.values(catalogSizes(all)).reduce((s, n) => s + n, 0)).toBeGreaterThan(1500);
  });

  it('goes on past the catalogs with mutations of a valid request', () => {
    const dro = all.find((c) => c.rpc.rpc === 'Solve')!;
    const stream = caseStream(dro, 'spec');
    const size = catalogSizes(all)[dro.rpc.path];
    for (let i = 0; i < size; i++) stream.next();
    const tail = Array.from({ length: 8 }, () => stream.next().value!);
    const kinds = ['mutation:flip', 'mutation:cut', 'mutation:splice', 'mutation:append'];
    expect(tail.map((c) => c.name.split('#')[0])).toEqual([...kinds, ...kinds]);
    expect(tail.map(digest)).toEqual(tail.map(digest));
  });

  it('--only picks the catalog cases whose "service RPC name" matches', () => {
    const only = pickMatching(all, 1000, 'spec', /^trainer StartJob sha256:/);
    expect(only.length).toBe(8);
    expect(only.every((c) => c.rpc.rpc === 'StartJob' && c.name.startsWith('sha256:'))).toBe(true);
    expect(pickMatching(all, 3, 'spec', /./)).toHaveLength(3);
  });
});

describe('the malformed-bytes family', () => {
  // Each is 'reject': it must not decode as any request of alignment.v1 (ts-proto's decoders; grpcio's are stricter).
  it('fails to decode as every request message', () => {
    const definitions = [CoordinatorService, GeneratorService, JudgeService, DroSolverService, TrainerService];
    const methods = definitions.flatMap((d) => Object.values(d) as Array<{ path: string; requestDeserialize: (b: Buffer) => unknown }>);
    for (const c of malformedCases().filter((m) => !m.name.includes('oversized'))) {
      const bytes = Buffer.from(c.build());
      const decoded = methods.filter((m) => {
        try {
          m.requestDeserialize(bytes);
          return true;
        } catch {
          return false;
        }
      });
      expect([c.name, decoded.map((m) => m.path)]).toEqual([c.name, []]);
    }
  });
});
