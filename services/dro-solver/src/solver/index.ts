/**
 * Domain logic of the DRO solver service: the Wasserstein-DRO adversary of docs/algorithm.md §4, with no gRPC or
 * network dependency. `solveExact` is the production path; `solveDual` and `solveLp` are independent checks.
 */
export * from './types';
export { validateProblem } from './problem';
export { solveExact } from './exact';
export { solveDual } from './dual';
export { solveLp, LP_MAX_SAMPLES } from './lp';
export { solveNoSplitting, NO_SPLIT_MAX_SAMPLES } from './no-splitting';
