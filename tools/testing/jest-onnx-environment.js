// A jest environment for suites that run onnxruntime-node. Jest runs each test file in its own VM context, whose
// typed-array constructors differ from the main realm's; onnxruntime's native addon returns tensors backed by
// main-realm typed arrays, which onnxruntime-common's `instanceof Float32Array` checks inside the test context
// then reject ("A float32 tensor's data must be type of function Float32Array()"). Sharing the main realm's
// typed-array constructors with the test context makes both sides agree.
const { TestEnvironment } = require('jest-environment-node');

const TYPED_ARRAYS = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED_ARRAYS) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
