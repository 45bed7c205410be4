// Tests of the CI tools themselves (tools/ci/doc-refs.py through plain python3).
module.exports = { ...require('../../jest.preset.js'), displayName: 'ci', rootDir: __dirname };
