// Shared jest settings. ts-jest only transpiles (isolatedModules); type errors are caught once, workspace-wide,
// by `npm run typecheck`, which keeps the suites fast on two cores.
const path = require('node:path');
const { pathsToModuleNameMapper } = require('ts-jest');
const { compilerOptions } = require('./tsconfig.base.json');

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(__dirname, 'tsconfig.base.json') }],
    // hyparquet (the Parquet reader) is ESM only: Node >= 20.19 require()s it, jest needs it transpiled to CommonJS.
    '/node_modules/hyparquet/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!hyparquet/)'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: pathsToModuleNameMapper(compilerOptions.paths, { prefix: __dirname + '/' }),
  setupFiles: [path.join(__dirname, 'jest.setup.js')],
  testMatch: ['**/?(*.)+(spec|test).ts'],
};
