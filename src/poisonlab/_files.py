"""Atomic file writing, and the one writer every command's outputs go through.

:func:`atomic_write_bytes` writes to a temporary file in the same folder, fsyncs, then renames:
a crash or a full disk leaves either the old file or the new one, never half of one.
:class:`OutputGuard` is what the command line writes with: it refuses, before any work, every
output path that would lose a file (an input, also through links; an existing file without
``force``; a folder; a path under a file), then writes atomically. This module sits below every
package (``models/`` saves weights with it, ``reports/`` re-exports it) so that no lower layer has
to import a higher one to write a file.

Examples
--------
>>> import tempfile, pathlib
>>> from poisonlab._files import atomic_write_text
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a.txt", "hello").read_text()
'hello'
>>> sorted(p.name for p in folder.iterdir())  # no temporary file left behind
['a.txt']
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .exceptions import PoisonlabError


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars and arrays to Python; NaN/inf to None (strict JSON); tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _file_mode(path: Path) -> int:
    """The permissions ``path`` would have if written in place: an existing file's own, else
    0o666 less the umask (``mkstemp`` alone would leave 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename);
    create missing parent folders; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# --- the one writer of the command line ------------------------------------------------------

class OutputError(PoisonlabError, ValueError):
    """An output path poisonlab refuses to write: an input of the command, a folder, a path
    under a file, or an existing file without ``force``."""


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _file_in_the_way(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder, if any."""
    for parent in Path(os.path.abspath(path)).parents:
        st = _stat(parent)
        if st is not None:
            return None if stat.S_ISDIR(st.st_mode) else parent
        if _lexists(parent):  # a dangling symbolic link where a folder should be
            return parent
    return None


def check_input(path: str | os.PathLike, what: str = "input", *, folder: bool = False) -> Path:
    """Refuse an input that is missing, or a folder where a file is wanted (and the reverse).

    Parameters
    ----------
    path : path
        What a command reads.
    what : str, default="input"
        How the messages name it (a command-line option such as ``"--input"``).
    folder : bool, default=False
        Whether ``path`` must be a folder rather than a file.

    Returns
    -------
    Path

    Raises
    ------
    DataError
        One line naming the path and what it must be (an input problem is a data problem, so
        ``except DataError`` catches it; :class:`OutputError` is for outputs).
    """
    from .exceptions import DataError

    path = Path(path)
    st = _stat(path)
    if st is None:
        blocker = _file_in_the_way(path)
        if blocker is not None:
            raise DataError(f"{what} {path} does not exist: {blocker} is a file, not a folder")
        raise DataError(f"{what} {path} does not exist")
    if folder and not stat.S_ISDIR(st.st_mode):
        raise DataError(f"{what} {path} is a file; give a folder")
    if not folder and stat.S_ISDIR(st.st_mode):
        raise DataError(f"{what} {path} is a folder; give a file")
    return path


class OutputGuard:
    """Plan every file a command writes before any work, then write each one atomically.

    A command makes one guard with what it reads (``inputs``: files and folders) and declares
    every path it will write, main output and sidecars alike, with :meth:`file` and
    :meth:`folder` *before* it starts working; problems surface then, as one
    :class:`OutputError`, and cost no work. The writes themselves go through
    :meth:`write_bytes` / :meth:`write_text` (or, for library functions that write their own
    files, inside :meth:`writing`), which check again and write atomically
    (:func:`atomic_write_bytes`).

    Refused, always (``force`` or not):

    - a path that is one of the inputs, also through a symbolic or hard link (compared by
      resolved path and by ``st_dev``/``st_ino``), or an existing file inside an input folder;
    - a path that is a folder, or whose parent is an existing file;
    - a path declared twice (two outputs of one command on the same file).

    Refused without ``force``: a path that exists (or is a dangling link). A file this guard
    wrote itself may be written again (a record updated after every seed).

    Parameters
    ----------
    inputs : iterable of path or None
        What the command reads, where it exists (``None`` entries and missing paths are
        skipped).
    force : bool, default=False
        Replace existing files (never an input).
    force_hint : str, default="--force"
        How messages tell the user to allow replacing (``"force=True"`` from Python).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> data = folder / "data.npz"; _ = data.write_bytes(b"mine")
    >>> guard = OutputGuard([data])
    >>> guard.file(data, "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    poisonlab._files.OutputError: --out ... is the input ... poisonlab never writes over its inputs; choose another path
    >>> out = guard.file(folder / "scores.csv", "--out")
    >>> guard.write_text(out, "id,score\\n").read_text()
    'id,score\\n'
    >>> OutputGuard().file(out, "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    poisonlab._files.OutputError: --out ... exists; pass --force to replace it
    """

    def __init__(self, inputs: Iterable[str | os.PathLike | None] = (), *, force: bool = False,
                 force_hint: str = "--force") -> None:
        self.force = bool(force)
        self.force_hint = force_hint
        self._inputs: list[tuple[Path, Path, os.stat_result | None]] = []
        self._planned: dict[Path, str] = {}
        self._written: set[Path] = set()
        for path in inputs:
            self.add_input(path)

    # -- declaring ---------------------------------------------------------------------------

    def add_input(self, path: str | os.PathLike | None) -> None:
        """Add something the command reads (a file or a folder); ``None`` and paths that do not
        exist (nothing there to lose: a sidecar the input may have) are ignored."""
        if path is None or not _lexists(Path(path)):
            return
        path = Path(path)
        self._inputs.append((path, path.resolve(), _stat(path)))

    @property
    def planned(self) -> list[Path]:
        """The paths declared so far (absolute), in order."""
        return list(self._planned)

    def file(self, path: str | os.PathLike, what: str = "--out") -> Path:
        """Declare a file the command will write; refuse it now if it cannot be written.

        Parameters
        ----------
        path : path
        what : str, default="--out"
            How messages name it: the option (``"--out"``) or ``"sidecar of --out"``.

        Returns
        -------
        Path
            ``path`` as given (as a ``Path``).
        """
        path = Path(path)
        self._check(path, what, planning=True)
        self._planned[self._key(path)] = what
        return path

    def folder(self, path: str | os.PathLike, what: str = "--out-dir",
               files: Iterable[str] = ()) -> Path:
        """Declare an output folder and the files the command will write into it.

        The folder may exist and hold other files (never touched). Files the command would
        write that it already holds are refused together, in one message, unless ``force``.

        Returns
        -------
        Path
            ``path`` as given.
        """
        path = Path(path)
        st = _stat(path)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path} is a file; give a folder (it is created if missing)")
        if st is None and _lexists(path):
            raise OutputError(f"{what} {path} is a dangling link; give a folder")
        blocker = _file_in_the_way(path)
        if blocker is not None:
            raise OutputError(f"{what} {path} cannot be created: {blocker} is a file, not a folder")
        names = list(files)
        if not self.force:
            present = [n for n in names if _lexists(path / n) and self._key(path / n) not in self._written]
            if present:
                shown = ", ".join(present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4 else "")
                raise OutputError(f"{what} {path} already holds {shown} (from an earlier run); pass "
                                  f"{self.force_hint} to replace them, or choose another folder")
        for name in names:
            self.file(path / name, f"{what} file")
        return path

    # -- writing -----------------------------------------------------------------------------

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        """Write ``data`` to a declared ``path`` atomically, after checking it again."""
        path = Path(path)
        self._check_declared(path)
        atomic_write_bytes(path, data)
        self._written.add(self._key(path))
        return path

    def write_text(self, path: str | os.PathLike, text: str) -> Path:
        """:meth:`write_bytes` of ``text`` encoded as UTF-8."""
        return self.write_bytes(path, text.encode("utf-8"))

    @contextmanager
    def writing(self, *paths: str | os.PathLike) -> Iterator[None]:
        """Check declared ``paths`` again, then let a library function write them (it must write
        atomically, as every writer of poisonlab does through this module)."""
        for path in paths:
            self._check_declared(Path(path))
        yield
        self._written.update(self._key(Path(p)) for p in paths)

    # -- checks ------------------------------------------------------------------------------

    @staticmethod
    def _key(path: Path) -> Path:
        return Path(os.path.abspath(path))

    def _check_declared(self, path: Path) -> None:
        if self._key(path) not in self._planned:
            raise RuntimeError(f"{path} was not declared with OutputGuard.file/folder before writing")
        self._check(path, self._planned[self._key(path)], planning=False)

    def _check(self, path: Path, what: str, *, planning: bool) -> None:
        st = _stat(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path} is a folder; give a file name")
        blocker = _file_in_the_way(path)
        if blocker is not None:
            raise OutputError(f"{what} {path} cannot be written: {blocker} is a file, not a folder")
        resolved = path.resolve()
        for given, inp, inp_st in self._inputs:  # the input itself first, then input folders
            if resolved == inp or (st is not None and inp_st is not None
                                   and (st.st_dev, st.st_ino) == (inp_st.st_dev, inp_st.st_ino)):
                raise OutputError(f"{what} {path} is the input {given}: poisonlab never writes over its "
                                  f"inputs; choose another path")
        for given, inp, inp_st in self._inputs:
            if (st is not None and inp_st is not None and stat.S_ISDIR(inp_st.st_mode)
                    and resolved.is_relative_to(inp)):
                raise OutputError(f"{what} {path} is a file inside the input folder {given}: poisonlab "
                                  f"never writes over its inputs; choose another path")
        key = self._key(path)
        if planning and key in self._planned:
            raise OutputError(f"{what} {path} is also {self._planned[key]}: give the outputs different paths")
        if not self.force and key not in self._written and _lexists(path):
            raise OutputError(f"{what} {path} exists; pass {self.force_hint} to replace it")


def plan_outputs(*, inputs: Iterable[str | os.PathLike | None] = (),
                 outputs: Iterable[tuple[str | os.PathLike, str] | str | os.PathLike] = (),
                 force: bool = False) -> OutputGuard:
    """An :class:`OutputGuard` for ``inputs`` with every file of ``outputs`` declared (each a
    path, or ``(path, what)``); raises :class:`OutputError` before any work."""
    guard = OutputGuard(inputs, force=force)
    for item in outputs:
        path, what = item if isinstance(item, tuple) else (item, "--out")
        guard.file(path, what)
    return guard
