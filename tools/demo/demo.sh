#!/usr/bin/env bash
# `npm run demo -- [options]` on a fresh clone: installs what is missing (npm packages, the pinned Python
# environment; tools/bootstrap.sh), generates the contracts (cached by Nx), then runs the demo (tools/demo/demo.ts).
# Their output goes to stderr, so the demo's last line on stdout stays the path of its report directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
bash tools/bootstrap.sh >&2
node_modules/.bin/nx run-many -t codegen -p contracts trainer --outputStyle=static >&2
exec node_modules/.bin/tsx tools/demo/demo.ts "$@"
