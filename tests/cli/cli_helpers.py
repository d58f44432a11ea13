"""Running the command line as a shell does: through ``poisonlab.cli.main.main`` (the console
script), with stdout and stderr captured apart, so that tests see the real exit codes and the
real error lines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from poisonlab.cli.main import main


@dataclass
class Outcome:
    """What one ``poisonlab ...`` call did."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        """The non-blank lines of stderr."""
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def poisonlab(*args, env: dict | None = None, columns: int = 120) -> Outcome:
    """Run ``poisonlab ARGS`` in-process through ``main()``; never raises."""
    runner = CliRunner()
    merged = {"COLUMNS": str(columns), **(env or {})}
    with runner.isolation(env=merged) as (out, err, _):
        code = main([str(a) for a in args])
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return Outcome(code=code, stdout=stdout, stderr=stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(*paths: Path) -> dict[Path, str]:
    """sha256 of every file under ``paths`` (files or folders)."""
    out = {}
    for p in paths:
        p = Path(p)
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        out.update({f: sha256(f) for f in files})
    return out


def assert_one_line_error(outcome: Outcome, *, code: int = 2, contains: str | tuple[str, ...] = ()) -> str:
    """The call failed with ``code`` and printed one ``error:`` line (no traceback, at most two
    lines on stderr); returns the line."""
    assert outcome.code == code, (outcome.code, outcome.output[-3000:])
    assert "Traceback" not in outcome.output, outcome.output[-3000:]
    lines = outcome.error_lines()
    assert 1 <= len(lines) <= 2, lines
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, lines
    for text in (contains,) if isinstance(contains, str) else contains:
        assert text in errors[0], (text, errors[0])
    return errors[0]
