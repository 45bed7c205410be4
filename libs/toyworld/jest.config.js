module.exports = { ...require('../../jest.preset.js'), displayName: 'toyworld', rootDir: __dirname };
