// Every TypeScript project's tests in one jest run (what .ci/run executes).
module.exports = {
  projects: [
    '<rootDir>/libs/*/jest.config.js',
    '<rootDir>/services/*/jest.config.js',
    '<rootDir>/deploy/jest.config.js',
    '<rootDir>/tools/stack/jest.config.js',
    '<rootDir>/tools/demo/jest.config.js',
    '<rootDir>/tools/ci/jest.config.js',
    '<rootDir>/tools/campaign/jest.config.js',
    '<rootDir>/tools/cli/jest.config.js',
    '<rootDir>/tools/fuzz/jest.config.js',
    '<rootDir>/tools/chaos/jest.config.js',
  ],
};
