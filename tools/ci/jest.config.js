// Tests of the CI tools themselves (doc-refs.py, ts-import-cycles.py and proto-docs.py through plain python3).
module.exports = { ...require('../../jest.preset.js'), displayName: 'ci', rootDir: __dirname };
