// Self-healing runs (npm run chaos): options.spec.ts, plan.spec.ts and checks.spec.ts (the options, the faults drawn
// from a seed, the comparison and the orphan scan; no services), chaos.e2e.spec.ts (`npm run chaos -- --runs 2`: the
// five services by `npm run stack`, an undisturbed W-DRO micro run and two disturbed ones; about 1.5 min on 2 cores).
module.exports = { ...require('../../jest.preset.js'), displayName: 'chaos', rootDir: __dirname };
