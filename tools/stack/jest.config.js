// The end-to-end suites, the services as processes: stack.e2e.spec.ts (`npm run stack`, all five services: the micro
// runs through grpcurl, a kill -9 of the coordinator mid-run, one trace per run across the services; about 65 s on 2
// cores), readme.e2e.spec.ts (the README's Coordinator commands as written; about 35 s), finish-aware.e2e.spec.ts
// (cut responses through the real generator, judge and trainer; about 20 s) and engine.e2e.spec.ts (two micro runs,
// one whose GENERATE, SPA judge and EVALUATE go through the generator's /v1 endpoint as its RunSpec engine; about
// 3 min on a loaded machine) and model-store.e2e.spec.ts (the micro run with its models in a moto S3 bucket,
// MODEL_STORE_URI; about 1 min). Each file starts its own services, on free ports.
module.exports = { ...require('../../jest.preset.js'), displayName: 'stack', rootDir: __dirname };
