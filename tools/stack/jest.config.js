// The end-to-end suite of `npm run stack` (tools/stack/stack.e2e.spec.ts): all five services as processes, a micro
// run through grpcurl, and a kill -9 of the coordinator mid-run. About 1 min on 2 cores (see the spec).
module.exports = { ...require('../../jest.preset.js'), displayName: 'stack', rootDir: __dirname };
