#!/usr/bin/env bash
# Bootstraps (or reuses) the Python virtualenv of a Python project in this repo and prints its path on stdout;
# all progress goes to stderr, so callers can write  venv=$(bash tools/python/venv.sh)  and use "$venv/bin/python".
#
#   bash tools/python/venv.sh [PROJECT_DIR]        PROJECT_DIR defaults to services/trainer
#
# The venv lives OUTSIDE the clone, at
#   ${ALIGNMENT_VENV_ROOT:-$HOME/.cache/alignment/venvs}/<project>-<key>
# where <key> is the first 16 hex digits of a sha256 over the interpreter ABI (see py_id below) and every
# PROJECT_DIR/requirements*.txt (names and contents, sorted by name). Change any pin, add a
# requirements-train.txt, or switch interpreter, and a new venv is built beside the old one; otherwise the
# existing one is reused in milliseconds. Old venvs are never deleted here (another clone or branch may use them).
#
# Venvs are not relocatable (their scripts embed absolute paths), so the venv is built at its final path and a
# .complete marker is written last. A directory without the marker is a killed or failed build: it is deleted and
# rebuilt. Concurrent callers serialise on a flock, so two builds never race in one directory.
#
# The project itself is NOT installed into the venv (one venv is shared by every clone with the same pins, so an
# editable install would tie it to one checkout); callers put PROJECT_DIR/src on PYTHONPATH (pytest does it via
# pythonpath = src).
#
# Environment: ALIGNMENT_VENV_ROOT (see above), ALIGNMENT_PYTHON (interpreter, default python3.11, else python3;
# must be >= 3.11). Needs only python3 with the venv module and network (or a wheel mirror) reachable by pip.
set -euo pipefail

log() { printf 'venv.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
project_dir=${1:-services/trainer}
case "$project_dir" in /*) ;; *) project_dir="$root/$project_dir" ;; esac
[ -d "$project_dir" ] || die "no such project directory: $project_dir"
name=$(basename "$project_dir")

if [ -n "${ALIGNMENT_PYTHON:-}" ]; then py=$ALIGNMENT_PYTHON
elif command -v python3.11 >/dev/null 2>&1; then py=python3.11
else py=python3; fi
command -v "$py" >/dev/null 2>&1 || die "python interpreter not found: $py"
# The key uses the interpreter's ABI (implementation, major.minor, machine), not its patch level: wheels are built per
# cp3XX ABI, and npx puts /usr/bin ahead of pyenv's shims, so the same machine can resolve python3.11 to two patch
# releases depending on who calls; both then share one venv.
py_id=$("$py" -c 'import sys, platform
if sys.version_info < (3, 11): sys.exit("Python >= 3.11 required, found " + sys.version.split()[0])
print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.machine(), sys.platform)') \
  || die "$py is not usable"

shopt -s nullglob
reqs=("$project_dir"/requirements*.txt)
shopt -u nullglob
[ ${#reqs[@]} -gt 0 ] || die "no requirements*.txt in $project_dir"
# Sorted by file name so the key does not depend on glob order; each file contributes its name and contents.
mapfile -t reqs < <(printf '%s\n' "${reqs[@]}" | LC_ALL=C sort)
key=$({
  printf 'interpreter %s\n' "$py_id"
  for f in "${reqs[@]}"; do printf 'file %s %s\n' "$(basename "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"; done
} | sha256sum | cut -c1-16)

venv_root=${ALIGNMENT_VENV_ROOT:-$HOME/.cache/alignment/venvs}
venv="$venv_root/$name-$key"

# A venv is usable when its marker exists and its interpreter still resolves (bin/python is a symlink to the base
# interpreter, which an upgrade or pyenv uninstall can remove).
usable() { [ -f "$venv/.complete" ] && [ -x "$venv/bin/python" ]; }

# Fast path: a finished venv is reused without taking the lock.
if usable; then
  printf '%s\n' "$venv"
  exit 0
fi

mkdir -p "$venv_root"
exec 9>"$venv.lock"
if ! flock -n 9; then
  log "waiting for another build of $venv"
  flock 9
fi
if usable; then   # another process finished it while we waited
  printf '%s\n' "$venv"
  exit 0
fi

if [ -e "$venv" ]; then
  log "removing unusable venv $venv (no .complete marker, or its base interpreter is gone)"
  rm -rf "$venv"
fi

start=$(date +%s)
log "building $venv ($py_id; ${reqs[*]#"$root/"})"
# If anything below fails or we are killed, the directory has no marker and the next run rebuilds it.
"$py" -m venv "$venv" >&2
req_args=()
for f in "${reqs[@]}"; do req_args+=(-r "$f"); done
# --only-binary: wheels only, so a bootstrap never compiles (grpcio from source takes many minutes); every pin
# here has manylinux wheels for CPython 3.11.
"$venv/bin/python" -m pip install --no-input --disable-pip-version-check --only-binary=:all: \
  "${req_args[@]}" >&2
"$venv/bin/python" -m pip check >&2

{
  printf 'interpreter: %s (%s)\nkey: %s\nbuilt: %s\n' "$py_id" "$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0], sys._base_executable)')" \
    "$key" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for f in "${reqs[@]}"; do printf 'requirements: %s %s\n' "${f#"$root/"}" "$(sha256sum < "$f" | cut -d' ' -f1)"; done
} > "$venv/.complete.tmp"
mv "$venv/.complete.tmp" "$venv/.complete"
log "built $venv in $(( $(date +%s) - start ))s"
printf '%s\n' "$venv"
