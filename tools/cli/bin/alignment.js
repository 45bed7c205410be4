#!/usr/bin/env node
// `npx alignment ...` (the root package.json's "bin"): runs tools/cli/src/main.ts through tsx, in this process,
// with the workspace's tsconfig (its @alignment/* path aliases), and exits with the status main() returns.
'use strict';
const path = require('node:path');

const root = path.resolve(__dirname, '../../..');
process.env.TSX_TSCONFIG_PATH = path.join(root, 'tsconfig.json');
require('tsx/cjs/api').register();

// A closed pipe (`npx alignment ls | head -1`) is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const { main } = require('../src/main.ts');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
