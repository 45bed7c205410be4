// The end-to-end suites of `npm run stack`, all five services as processes: stack.e2e.spec.ts (the micro runs
// through grpcurl, a kill -9 of the coordinator mid-run, one trace per run across the services; about 65 s on 2
// cores) and readme.e2e.spec.ts (the README's Coordinator commands as written; about 35 s). Each file starts its own
// stack, on free ports.
module.exports = { ...require('../../jest.preset.js'), displayName: 'stack', rootDir: __dirname };
