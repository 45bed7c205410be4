#!/usr/bin/env bash
# `npm run campaign -- --plan FILE [options]`: like `npm run demo` (tools/demo/demo.sh), installs what is missing and
# generates the contracts first (output on stderr), then runs tools/campaign/campaign.ts, whose last stdout line is
# the path of the results book's RESULTS.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false
bash tools/bootstrap.sh >&2
node_modules/.bin/nx run-many -t codegen -p contracts trainer --outputStyle=static >&2
exec node_modules/.bin/tsx tools/campaign/campaign.ts "$@"
