"""The Makefile's set-up: torch from PyTorch's CPU index only when TORCH_INDEX is given."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry(*args: str) -> list[str]:
    r = subprocess.run(["make", "-n", "-B", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_default_install_leaves_torch_to_the_constraints():
    lines = [ln for ln in _dry("install") if "pip install" in ln]
    assert lines and all("-c constraints.txt" in ln for ln in lines)
    assert not any("index-url" in ln for ln in lines)


def test_torch_index_installs_torch_alone_from_it_first():
    index = "https://download.pytorch.org/whl/cpu"
    lines = [ln for ln in _dry("install", f"TORCH_INDEX={index}") if "pip install" in ln]
    torch_line = next(i for i, ln in enumerate(lines) if f"--index-url {index}" in ln)
    project_line = next(i for i, ln in enumerate(lines) if "-e '.[" in ln)
    assert torch_line < project_line
    assert lines[torch_line].endswith(" torch") and "-c constraints.txt" in lines[torch_line]
    assert "index-url" not in lines[project_line]


def test_reproduce_runs_the_configurable_ids_and_demo_owns_its_record():
    assert any(ln.endswith("poisonlab reproduce R3 --seeds 1") for ln in _dry("reproduce", "REPRODUCE=R3 --seeds 1"))
    assert any(ln.endswith("poisonlab demo --force") for ln in _dry("demo"))
