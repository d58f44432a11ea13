"""The Typer application every command registers on, its error handler, and the helpers commands
share.

Command modules (``main``, ``model_cmds``, ...) import from here, never from each other, so the
CLI has no import cycle; :mod:`poisonlab.cli.main` imports them all to register their commands.

Errors: every command lets its exceptions rise; :class:`PoisonlabGroup` turns them into exit
codes at the top of the application, so ``poisonlab``, ``python -m poisonlab`` and Typer's test
runner behave alike:

- a :class:`~poisonlab.exceptions.PoisonlabError` (bad input, bad parameter, refused output) or
  an ``OSError`` naming a file prints one line ``error: ...`` on stderr and exits 2;
- usage errors (unknown option, missing argument) are Click's own: usage, one ``Error:`` line,
  exit 2;
- anything else prints one line with the path of a log file holding the traceback and exits 1;
- ``poisonlab --debug ...`` (or ``POISONLAB_DEBUG=1``) prints the traceback as well.

Warnings print as one line ``warning: ...`` on stderr (Python's own format with ``--debug``).

Commands that scan exit 3 when they flag something (:data:`EXIT_FLAGGED`), unless ``--no-fail``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from .._files import OutputGuard
from ..exceptions import DataError, PoisonlabError

#: Exit status of a scan that flagged something (``scan-data``, ``scan-model``, ``monitor score``).
EXIT_FLAGGED = 3
#: Exit status of bad input, a bad parameter or a refused output (one ``error:`` line).
EXIT_ERROR = 2
#: Exit status of an unexpected error (one line and the path of a log with the traceback).
EXIT_BUG = 1
#: Set to ``1`` to print tracebacks, as ``--debug`` does.
DEBUG_ENV = "POISONLAB_DEBUG"

EXIT_CODES_HELP = (
    "Exit status: 0 done, nothing flagged; 3 scan-data, scan-model or monitor score (also canary "
    "run, drift) flagged something (0 with --no-fail); 1 gate: a check failed and the release is "
    "blocked (verify-signature: no match); 2 bad input, a bad parameter or a refused output (one line "
    "'error: ...'); 1 an unexpected error (one line and the path of a log holding the traceback; "
    "--debug prints it)."
)
FORCE_HELP = "Replace output files that exist (never an input of the command)."
NO_FAIL_HELP = f"Exit 0 even when something is flagged (default: exit {EXIT_FLAGGED})."
DATA_DIR_HELP = "Folder holding the datasets (one sub-folder each); default: $POISONLAB_DATA_DIR."


def _one_line(text: str) -> str:
    """``text`` on one line: its lines joined with ``"; "``."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def error_message(exc: BaseException) -> str:
    """The one line (without ``error:``) that the command line prints for ``exc``."""
    if isinstance(exc, OSError) and getattr(exc, "filename", None) is not None and not isinstance(exc, PoisonlabError):
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if getattr(exc, "filename2", None) else "")
        return f"{where}: {exc.strerror or type(exc).__name__}"
    return _one_line(str(exc)) or type(exc).__name__


def _echo_error(line: str) -> None:
    # Plain text, never rich: no markup eating "[0, 1]", no wrapping into several lines.
    click.echo(f"error: {line}", err=True)


def _write_log(exc: BaseException) -> Path | None:
    """Write ``exc``'s traceback to a new file under the temporary folder; its path, or None."""
    folder = Path(tempfile.gettempdir()) / "poisonlab-logs"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"error-{stamp}-", suffix=".log", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"poisonlab {' '.join(sys.argv[1:])}\n\n")
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return Path(name)
    except OSError:
        return None


def _debugging(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("poisonlab.debug")) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    """Warnings as one line on stderr (``warning: ...``), not Python's two-line format with a
    source line; ``--debug`` keeps Python's."""
    from ..exceptions import PoisonlabWarning

    kind = "" if issubclass(category, PoisonlabWarning) else f"{category.__name__}: "
    click.echo(f"warning: {kind}{_one_line(str(message))}", err=True)


class PoisonlabGroup(TyperGroup):
    """The root command group: runs a command and turns what it raises into one line and an exit
    code (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                if not _debugging(ctx):
                    warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the top of the command line: every error ends here
            debug = _debugging(ctx)
            expected = isinstance(exc, PoisonlabError) or (
                isinstance(exc, OSError) and getattr(exc, "filename", None) is not None)
            if debug:
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            if expected:
                _echo_error(error_message(exc))
                raise click.exceptions.Exit(EXIT_ERROR) from exc
            log = None if debug else _write_log(exc)
            where = f"traceback in {log}; " if log is not None else ""
            _echo_error(f"unexpected {type(exc).__name__}: {error_message(exc)} ({where}rerun with "
                        f"--debug to see it; please report it)")
            raise click.exceptions.Exit(EXIT_BUG) from exc


app = typer.Typer(cls=PoisonlabGroup, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Red-team and defend ML training pipelines against data poisoning.\n\n"
                       + EXIT_CODES_HELP)
console = Console()
err_console = Console(stderr=True)


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("poisonlab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        from .. import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        click.echo(f"poisonlab {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print poisonlab's version and exit."),
    debug: bool = typer.Option(False, "--debug", help=f"Print the traceback of any error (also "
                               f"{DEBUG_ENV}=1)."),
) -> None:
    ctx.meta["poisonlab.debug"] = debug


def _fail(exc: Exception) -> None:
    """Print ``exc`` as one ``error:`` line and exit 2 (commands may simply raise instead)."""
    _echo_error(error_message(exc))
    raise typer.Exit(code=EXIT_ERROR)


def exit_for(flagged: bool, no_fail: bool) -> None:
    """End a scanning command: exit :data:`EXIT_FLAGGED` when it flagged something, unless
    ``no_fail``; else return (exit 0)."""
    if flagged and not no_fail:
        raise typer.Exit(code=EXIT_FLAGGED)


def output_guard(inputs: Iterable[Any] = (), *, force: bool = False) -> OutputGuard:
    """The command's :class:`~poisonlab._files.OutputGuard` (messages say ``--force``)."""
    return OutputGuard(inputs, force=force, force_hint="--force")


def data_root_inputs(data_dir: Optional[Path]) -> list[Path]:
    """The datasets folder (``--data-dir`` or $POISONLAB_DATA_DIR) as an input no output may
    overwrite; empty when none is set (loading a dataset that needs files will say so)."""
    from ..data import data_root

    try:
        return [data_root(data_dir)]
    except DataError:
        return []


def dataset_inputs(dataset: Optional[str], data_dir: Optional[Path]) -> list[Path]:
    """:func:`data_root_inputs` when ``dataset`` is a built-in dataset read from files; else
    empty (digits ships with scikit-learn)."""
    from ..data import DATASETS

    if dataset is None or dataset not in DATASETS or not DATASETS[dataset][1]:
        return []
    return data_root_inputs(data_dir)


def json_text(obj: Any) -> str:
    """``obj`` as strict, indented JSON (numpy values converted, NaN as null)."""
    from ..reports import to_jsonable

    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"


def check_one_source(dataset: Optional[str], input: Optional[Path]) -> None:
    """Exactly one of ``--dataset`` and ``--input``."""
    if (dataset is None) == (input is None):
        raise PoisonlabError("give exactly one of --dataset NAME or --input FILE.npz")


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, lists, null)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param takes key=value; got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip().replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    return out


def _load(dataset: str, data_dir: Optional[Path], *, waveforms: bool = False):
    """A built-in dataset; with ``waveforms``, audio datasets come as raw waveforms (audio
    triggers are mixed into the waveform, before any features)."""
    from ..data import DATASETS, load_dataset

    if waveforms and dataset in DATASETS and DATASETS[dataset][2] == "audio":
        return load_dataset(dataset, data_dir, features="waveform")
    return load_dataset(dataset, data_dir)
