// The CLI's tests: unit specs under src/ (run files, tables, progress, option parsing; no server) and
// cli.e2e.spec.ts, the real `npx alignment` binary against `npm run stack` (the micro run; about 1.5 min on 2 cores).
module.exports = { ...require('../../jest.preset.js'), displayName: 'cli', rootDir: __dirname };
