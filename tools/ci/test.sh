#!/usr/bin/env bash
# The whole test run (what `npm test` and .ci/run execute): bootstrap, codegen, lint, type-check, every
# TypeScript suite (jest) and every Python suite (pytest). Ends with one line `N passed, N failed`.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false

venv_line=$(bash tools/bootstrap.sh) || { echo "bootstrap failed"; echo "0 passed, 1 failed"; exit 1; }
export ALIGNMENT_VENV="${venv_line#VENV=}"

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
failed_steps=()
step() {
  local name=$1
  shift
  echo "::: $name"
  if ! "$@"; then failed_steps+=("$name"); fi
}

step codegen npx nx run-many -t codegen --outputStyle=stream
step lint npx nx run-many -t lint --outputStyle=stream
step doc-refs python3 tools/ci/doc-refs.py --check
step proto-docs python3 tools/ci/proto-docs.py
step typecheck npx tsc -p tsconfig.json --noEmit
step jest npx jest --ci --json --outputFile="$reports/jest.json"
step pytest "$ALIGNMENT_VENV/bin/python" -m pytest services/trainer/tests -q --junitxml="$reports/pytest.xml"
# The Python client and examples/python-judge against the real stack (clients/python/tests/conftest.py).
step pytest-client "$ALIGNMENT_VENV/bin/python" -m pytest clients/python/tests -q --junitxml="$reports/pytest-client.xml"

"$ALIGNMENT_VENV/bin/python" - "$reports" "${#failed_steps[@]}" "${failed_steps[@]}" <<'PY'
import json, os, sys
import xml.etree.ElementTree as ET
reports, failed_steps = sys.argv[1], sys.argv[3:]
passed = failed = skipped = 0
jest = os.path.join(reports, "jest.json")
if os.path.exists(jest):
    j = json.load(open(jest))
    passed += j["numPassedTests"]
    failed += j["numFailedTests"] + j.get("numRuntimeErrorTestSuites", 0)
    skipped += j["numPendingTests"] + j.get("numTodoTests", 0)
    # Which suites failed and why, so a CI log that keeps only its tail still names them.
    for suite in j.get("testResults", []):
        if suite.get("status") == "passed":
            continue
        print(f"jest FAILED {os.path.relpath(suite.get('name', '?'))}")
        for test in suite.get("assertionResults", []):
            if test.get("status") == "failed":
                print(f"  test: {test.get('fullName')}")
        message = (suite.get("message") or "").strip().splitlines()
        for line in message[:25]:
            print(f"  {line}")
for junit in (os.path.join(reports, name) for name in ("pytest.xml", "pytest-client.xml")):
    if not os.path.exists(junit):
        continue
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        tests, errors, fails, skips = (int(suite.get(k, 0)) for k in ("tests", "errors", "failures", "skipped"))
        passed += tests - errors - fails - skips
        failed += errors + fails
        skipped += skips
# A step that failed without a failing test (lint, codegen, a runner that crashed) still counts as a failure.
for step in failed_steps:
    if step not in ("jest", "pytest", "pytest-client"):
        failed += 1
if any(step in ("jest", "pytest", "pytest-client") for step in failed_steps) and failed == 0:
    failed = 1
if failed_steps:
    print("failed steps: " + ", ".join(failed_steps))
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if (failed or failed_steps) else 0)
PY
