module.exports = { ...require('../../jest.preset.js'), displayName: 'dro-solver', rootDir: __dirname };
