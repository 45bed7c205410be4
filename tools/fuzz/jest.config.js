// The bad-input suite (npm run fuzz): cases.spec.ts and options.spec.ts (the case list and the options, no services),
// fuzz.e2e.spec.ts (`npm run fuzz -- --cases 60` against the five services started as processes on free ports, then
// `--cases 30 --confine`; about 30 s on 2 cores, the tiny test models built first on a cold cache).
module.exports = { ...require('../../jest.preset.js'), displayName: 'fuzz', rootDir: __dirname };
