module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'lm',
  rootDir: __dirname,
  testEnvironment: require.resolve('../../tools/testing/jest-onnx-environment.js'),
};
