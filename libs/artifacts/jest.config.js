module.exports = { ...require('../../jest.preset.js'), displayName: 'artifacts', rootDir: __dirname };
