/**
 * The case list: every RPC's catalog (its structured families plus the raw-bytes ones), and the deterministic pick of
 * N cases from a seed. The i-th case goes to service i mod 5 (coordinator, generator, judge, dro-solver, trainer); a
 * service's k-th case to its RPC k mod (its RPC count); an RPC's cases come first its first baseline (a valid
 * request), then one from each family in turn (families and their cases shuffled by the seed), then endless
 * mutations of the baseline. So any N gives each service N/5 cases and each RPC its share, and a larger N only adds.
 */
import { GetRunRequest } from '@alignment/contracts';
import { SERVICE_NAMES, type CaseSpec, type Fixtures, type FuzzCase, type RpcCatalog, type RpcInfo, type ServiceName } from '../model';
import { FuzzRng } from '../wire';
import { encode } from './build';
import { COORDINATOR_RPCS, coordinatorFamilies } from './coordinator';
import { DRO_RPCS, droFamilies } from './dro';
import { GENERATOR_RPCS, JUDGE_RPCS, generatorFamilies, judgeFamilies } from './generator-judge';
import { malformedCases, mutationCase, oddButDecodableCases, randomBytesCases } from './raw';
import { TRAINER_RPCS, trainerFamilies } from './trainer';

/** Every RPC of the five services, in the protos' order. */
export const ALL_RPCS: Record<ServiceName, RpcInfo[]> = {
  coordinator: Object.values(COORDINATOR_RPCS),
  generator: Object.values(GENERATOR_RPCS),
  judge: Object.values(JUDGE_RPCS),
  'dro-solver': Object.values(DRO_RPCS),
  trainer: Object.values(TRAINER_RPCS),
};

function structuredFamilies(service: ServiceName, f: Fixtures): Record<string, Record<string, CaseSpec[]>> {
  switch (service) {
    case 'coordinator':
      return coordinatorFamilies(f);
    case 'generator':
      return generatorFamilies(f);
    case 'judge':
      return judgeFamilies(f);
    case 'dro-solver':
      return droFamilies();
    case 'trainer':
      return trainerFamilies(f);
  }
}

/** Every RPC's catalog. The path cases need the fixture paths; the case names never contain them. */
export function catalogs(f: Fixtures, seed: string): RpcCatalog[] {
  return SERVICE_NAMES.flatMap((service) => {
    const structured = structuredFamilies(service, f);
    return ALL_RPCS[service].map((rpc): RpcCatalog => {
      const own = structured[rpc.rpc];
      if (!own) throw new Error(`no cases for ${rpc.path}`);
      const families: Record<string, CaseSpec[]> = {
        ...own,
        'raw-malformed': malformedCases(),
        'raw-odd': oddButDecodableCases(),
        'raw-random': randomBytesCases(new FuzzRng(seed, `${rpc.path}/random`)),
      };
      const baseline = own.baseline?.[0];
      // Without a valid request of its own (the id and paging RPCs), mutations start from a plausible id.
      const seedRequest = baseline ? baseline.build : () => encode(GetRunRequest, { runId: 'fuzz-mutation-0001' });
      return { rpc, families, seedRequest };
    });
  });
}

/** An RPC's cases in the order they are taken (see the header); endless. */
export function* caseStream(catalog: RpcCatalog, seed: string): Generator<CaseSpec> {
  const rng = new FuzzRng(seed, `${catalog.rpc.path}/order`);
  const [first, ...otherBaselines] = catalog.families.baseline ?? [];
  if (first) yield first;
  const names = rng.shuffled(Object.keys(catalog.families).filter((n) => n !== 'baseline').sort());
  if (otherBaselines.length > 0) names.unshift('baseline');
  const queues = names.map((n) => (n === 'baseline' ? otherBaselines : rng.shuffled(catalog.families[n])));
  for (;;) {
    const next = queues.filter((q) => q.length > 0);
    if (next.length === 0) break;
    for (const queue of next) yield queue.shift()!;
  }
  for (let k = 0; ; k++) yield mutationCase(catalog.seedRequest, seed, catalog.rpc.path, k);
}

/** The first n cases of the run for a seed (see the header for the order). */
export function pickCases(all: RpcCatalog[], n: number, seed: string): FuzzCase[] {
  const streams = new Map(all.map((c) => [c.rpc.path, caseStream(c, seed)]));
  const byService = new Map<ServiceName, RpcCatalog[]>(SERVICE_NAMES.map((s) => [s, all.filter((c) => c.rpc.service === s)]));
  const taken = new Map<ServiceName, number>();
  const cases: FuzzCase[] = [];
  for (let i = 0; i < n; i++) {
    const service = SERVICE_NAMES[i % SERVICE_NAMES.length];
    const rpcs = byService.get(service)!;
    const k = taken.get(service) ?? 0;
    taken.set(service, k + 1);
    const catalog = rpcs[k % rpcs.length];
    const spec = streams.get(catalog.rpc.path)!.next().value as CaseSpec;
    cases.push({ ...spec, index: i + 1, rpc: catalog.rpc });
  }
  return cases;
}

/**
 * The catalog cases (no mutations) whose `service rpc name` matches `pattern`, at most n, in the order of their
 * RPC's stream: to rerun a failure by its name (`--only 'judge JudgePairs path:output_uri'`).
 */
export function pickMatching(all: RpcCatalog[], n: number, seed: string, pattern: RegExp): FuzzCase[] {
  const cases: FuzzCase[] = [];
  for (const catalog of all) {
    const size = Object.values(catalog.families).reduce((s, f) => s + f.length, 0);
    const stream = caseStream(catalog, seed);
    for (let k = 0; k < size && cases.length < n; k++) {
      const spec = stream.next().value as CaseSpec;
      if (pattern.test(`${catalog.rpc.service} ${catalog.rpc.rpc} ${spec.name}`)) cases.push({ ...spec, index: cases.length + 1, rpc: catalog.rpc });
    }
  }
  return cases;
}

/** How many distinct cases (before the mutation tail) each RPC has. */
export function catalogSizes(all: RpcCatalog[]): Record<string, number> {
  return Object.fromEntries(all.map((c) => [c.rpc.path, Object.values(c.families).reduce((s, f) => s + f.length, 0)]));
}
