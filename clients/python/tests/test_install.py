"""`pip install ./clients/python` gives a working package: the client, its run files and the generated stubs (which
codegen wrote into src/, gitignored) all come along. Installed into a temporary folder, offline (no dependencies,
the venv's setuptools) from a copy of the project (so no build/ is left in the repo), and imported from there by a
fresh interpreter outside the repo."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO

CHECK = """
import alignment_client, sys
from alignment_client import Client, load_run_file
from alignment_client.contracts import coordinator_pb2
assert alignment_client.__file__.startswith(sys.argv[1]), alignment_client.__file__
spec = load_run_file(sys.argv[2], {"DATA_DIR": "/data"}).spec
assert isinstance(spec, coordinator_pb2.RunSpec) and spec.seed_pairs.uri == "/data/micro/seed_pairs.conversational.jsonl"
assert "gold_judge_address" in coordinator_pb2.EvaluationConfig.DESCRIPTOR.fields_by_name
assert "judge_address" in coordinator_pb2.RunSpec.DESCRIPTOR.fields_by_name and callable(Client.delete_run)
print("ok", spec.configuration)
"""


def test_pip_install_gives_the_client_with_its_stubs(tmp_path) -> None:
    target, project = tmp_path / "site", tmp_path / "alignment-client"
    shutil.copytree(REPO / "clients/python", project, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(project)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    assert (target / "alignment_client/_gen/alignment/v1/coordinator_pb2.pyi").exists()
    assert (target / "alignment_client/py.typed").exists()
    assert (target / "alignment_client/_gen/buf/validate/validate_pb2.py").exists()  # the range annotations' types
    check = subprocess.run(
        [sys.executable, "-c", CHECK, str(target), str(REPO / "examples/micro-run.yaml")],
        cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "ok 2"  # CONFIGURATION_SPA
