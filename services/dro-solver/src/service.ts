import {
  type SolveRequest,
  type SolveResponse,
  SolveMode,
  DroSolverService,
} from '@alignment/contracts';
import { InvalidArgumentError } from '@alignment/errors';
import type { ServiceBinding } from '@alignment/service-kit';
import { solveLpOffThread } from './lp-thread';
import {
  LP_MAX_SAMPLES,
  solveDual,
  solveExact,
  type Budget,
  type DroProblem,
  type DroSolution,
} from './solver';
import { serializeSolveResponse } from './wire';

/**
 * The most samples one request may carry (issue 12: N = 10^7 took 1.8-2.9 GB against the pod's 1 Gi, and kept it):
 * DRO_MAX_SAMPLES, default 10^6, whose response (four arrays of N doubles) fits the default message size.
 */
export function maxSamples(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DRO_MAX_SAMPLES?.trim();
  return raw && /^[0-9]{1,9}$/.test(raw) && Number(raw) > 0 ? Number(raw) : 1_000_000;
}

/** SolveRequest -> solver input. Shape errors here; numeric validation is the solver's (it names the field). */
export function toProblem(request: SolveRequest): DroProblem {
  const limit = maxSamples();
  if (request.logXi.length > limit) {
    throw new InvalidArgumentError('log_xi', `has ${request.logXi.length} samples; this solver takes at most ${limit} per request (DRO_MAX_SAMPLES)`);
  }
  if (!request.radius) {
    throw new InvalidArgumentError('radius', 'set either epsilon (absolute radius) or rho (fraction of epsilon_sat)');
  }
  const budget: Budget =
    request.radius.$case === 'epsilon'
      ? { kind: 'epsilon', value: request.radius.value }
      : { kind: 'rho', value: request.radius.value };
  return {
    logXi: request.logXi,
    weights: request.weights.length > 0 ? request.weights : undefined,
    budget,
    delta: request.delta,
  };
}

export function toResponse(solution: DroSolution, omitAtoms = false): SolveResponse {
  return {
    value: solution.value,
    ermValue: solution.ermValue,
    lambdaStar: solution.lambdaStar,
    lambdaStarLeft: solution.lambdaStarLeft,
    epsilon: solution.epsilon,
    epsilonSat: solution.epsilonSat,
    saturated: solution.saturated,
    movedFraction: Array.from(solution.movedFraction),
    gradXi: Array.from(solution.gradXi),
    surrogateA: Array.from(solution.surrogateA),
    surrogateB: Array.from(solution.surrogateB),
    // Atoms are built lazily by the solver; not touching them when omitted keeps per-step calls cheap.
    atoms: omitAtoms ? [] : solution.atoms.map((a) => ({ location: a.location, mass: a.mass, sourceIndex: a.sourceIndex, moved: a.moved })),
    diagnostics: {
      dualGap: solution.dualGap,
      transportCost: solution.transportCost,
      nClipped: solution.nClipped,
      nMoved: solution.nMoved,
      splitIndex: solution.splitIndex,
      solveMicros: 0,
    },
    warnings: solution.warnings,
  };
}

/** Solves one request by its mode (docs/algorithm.md §4). */
export async function solve(request: SolveRequest): Promise<SolveResponse> {
  const problem = toProblem(request);
  const started = process.hrtime.bigint();
  let solution: DroSolution;
  switch (request.mode) {
    case SolveMode.SOLVE_MODE_UNSPECIFIED:
    case SolveMode.SOLVE_MODE_EXACT:
      solution = solveExact(problem);
      break;
    case SolveMode.SOLVE_MODE_DUAL:
      solution = solveDual(problem);
      break;
    case SolveMode.SOLVE_MODE_LP: {
      // Checked here too, so that an oversized LP never costs a worker start.
      if (problem.logXi.length > LP_MAX_SAMPLES) {
        throw new InvalidArgumentError('log_xi', `has ${problem.logXi.length} samples; the LP mode is a verification tool and accepts at most ${LP_MAX_SAMPLES}`);
      }
      const response = await solveLpOffThread(problem, request.omitAtoms);
      response.diagnostics!.solveMicros = Number(process.hrtime.bigint() - started) / 1e3;
      return response;
    }
    default:
      throw new InvalidArgumentError('mode', `unknown solve mode ${String(request.mode)}`);
  }
  const response = toResponse(solution, request.omitAtoms);
  response.diagnostics!.solveMicros = Number(process.hrtime.bigint() - started) / 1e3;
  return response;
}

export function droSolverBinding(): ServiceBinding {
  return {
    definition: {
      ...DroSolverService,
      solve: { ...DroSolverService.solve, responseSerialize: serializeSolveResponse },
    } as unknown as ServiceBinding['definition'],
    handlers: { solve: (request: SolveRequest) => solve(request) },
  };
}
