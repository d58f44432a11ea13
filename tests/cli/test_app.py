"""The top of the command line (poisonlab.cli.app): one error handler, its exit codes, --debug,
--version, and the exit codes documented where a user looks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from poisonlab import __version__
from tests.cli.cli_helpers import assert_one_line_error, poisonlab

REPO = Path(__file__).resolve().parents[2]


def _broken_loader(monkeypatch, exc):
    def load(*args, **kwargs):
        raise exc

    monkeypatch.setattr("poisonlab.cli.main._load", load)


def test_a_poisonlab_error_is_one_line_and_exit_2():
    r = poisonlab("list", "widgets")
    assert_one_line_error(r, contains="unknown kind 'widgets'; kinds: attack")
    assert r.stdout == ""


def test_an_os_error_naming_a_file_is_one_line_and_exit_2(monkeypatch, tmp_path):
    _broken_loader(monkeypatch, PermissionError(13, "Permission denied", "/data/mnist/train.gz"))
    r = poisonlab("attack", "badnets", "--dataset", "digits", "--out", tmp_path / "o.npz")
    line = assert_one_line_error(r)
    assert line == "error: /data/mnist/train.gz: Permission denied"


def test_an_unexpected_error_is_one_line_with_a_log_and_exit_1(monkeypatch, tmp_path):
    _broken_loader(monkeypatch, RuntimeError("boom\nsecond line"))
    r = poisonlab("attack", "badnets", "--dataset", "digits", "--out", tmp_path / "o.npz")
    line = assert_one_line_error(r, code=1, contains=("unexpected RuntimeError: boom; second line",
                                                      "--debug"))
    log = Path(re.search(r"traceback in (\S+\.log)", line).group(1))
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    assert "_load" in text  # the frame that raised
    log.unlink()


@pytest.mark.parametrize("how", ["--debug", "env"])
def test_debug_prints_the_traceback(monkeypatch, tmp_path, how):
    _broken_loader(monkeypatch, RuntimeError("boom"))
    args = ["attack", "badnets", "--dataset", "digits", "--out", tmp_path / "o.npz"]
    r = poisonlab("--debug", *args) if how == "--debug" else poisonlab(*args, env={"POISONLAB_DEBUG": "1"})
    assert r.code == 1
    assert "Traceback (most recent call last)" in r.stderr and "RuntimeError: boom" in r.stderr
    assert "traceback in" not in r.stderr  # no log when it is shown
    r = poisonlab("--debug", "list", "widgets")  # a PoisonlabError keeps its exit code
    assert r.code == 2 and "Traceback" in r.stderr and "error: unknown kind" in r.stderr


def test_usage_errors_are_clicks_own_without_a_traceback():
    r = poisonlab("attack")
    assert r.code == 2 and "Missing argument 'ATTACK'" in r.output and "Traceback" not in r.output
    r = poisonlab("scan-data", "--no-such-option")
    assert r.code == 2 and "No such option" in r.output


def test_version():
    r = poisonlab("--version")
    assert r.code == 0 and r.stdout.strip() == f"poisonlab {__version__}"


def test_python_dash_m_gives_the_real_exit_codes():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "poisonlab", "--version"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"poisonlab {__version__}"
    r = subprocess.run([sys.executable, "-m", "poisonlab", "list", "widgets"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: unknown kind") and "Traceback" not in r.stderr


def test_the_console_script_is_main():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^poisonlab = "poisonlab\.cli\.main:main"$', text, re.M)


def test_exit_codes_are_documented_in_help():
    r = poisonlab("--help", columns=250)
    assert r.code == 0 and "Exit status: 0 done, nothing flagged; 3 scan-data, scan-model or monitor" in r.stdout
    for args in (["scan-data"], ["scan-model"], ["monitor", "score"]):
        r = poisonlab(*args, "--help", columns=250)
        assert r.code == 0, r.output
        text = " ".join(r.stdout.split())
        assert re.search(r"Exit status: 0 [^;]*; 3 [^;]*\(0 with --no-fail\)", text), text
        assert "--no-fail" in text and "--force" in text


@pytest.mark.parametrize("command", [["demo"], ["attack"], ["train"], ["run"], ["reproduce"], ["scan-data"],
                                     ["scan-model"], ["monitor", "fit"], ["monitor", "score"]])
def test_every_command_that_writes_takes_force(command):
    r = poisonlab(*command, "--help", columns=250)
    assert r.code == 0 and "--force" in r.stdout, r.output


def test_warnings_are_one_line(monkeypatch, tmp_path):
    import warnings

    from poisonlab.exceptions import PoisonlabWarning

    def load(*args, **kwargs):
        warnings.warn("the data looks odd\nsecond line", PoisonlabWarning)
        warnings.warn("a library's own", UserWarning)
        raise RuntimeError("stop here")

    monkeypatch.setattr("poisonlab.cli.main._load", load)
    r = poisonlab("attack", "badnets", "--dataset", "digits", "--out", tmp_path / "o.npz")
    lines = r.error_lines()
    assert lines[:2] == ["warning: the data looks odd; second line", "warning: UserWarning: a library's own"]
    assert r.code == 1 and len(lines) == 3 and lines[2].startswith("error: unexpected RuntimeError: stop here")
    for log in re.findall(r"traceback in (\S+\.log)", lines[2]):
        Path(log).unlink()
