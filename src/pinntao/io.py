"""Safe output files: checked before a run, written atomically, never destroying what a path names.

A write goes to a temp file in the target's directory, is fsync'ed, and is renamed over the
target only when the target is a regular file (a symlink is followed to its regular target)
or does not exist yet. Device nodes, directories, FIFOs and paths in missing or unwritable
directories are refused. :class:`OutputFile` turns write failures during a run into one
warning per file and a record for the report, so a full disk never kills a solve.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from typing import IO, Any


class OutputPathError(OSError):
    """An output path that pinntao refuses to write (the message says why)."""


def _describe(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def resolve_target(path: str) -> str:
    """The file a write to ``path`` replaces: symlinks followed; raises OutputPathError if that is
    not a regular file or a new name in an existing, writable directory."""
    if not path:
        raise OutputPathError("empty path")
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"cannot inspect it: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        via = f" (via the symlink {path!r} → {real!r})" if real != os.path.abspath(path) else ""
        raise OutputPathError(f"it is {_describe(st.st_mode)}{via}; only regular files are replaced")
    parent = os.path.dirname(real) or "."
    if not os.path.isdir(parent):
        raise OutputPathError(f"its directory {parent!r} does not exist")
    return real


def check_writable(path: str) -> str:
    """Refuse ``path`` now (OutputPathError) unless a later atomic write can succeed: the target is
    valid and a temp file can really be created (and removed) in its directory. Returns the target."""
    real = resolve_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=os.path.dirname(real))
    except OSError as exc:
        raise OutputPathError(f"cannot create files in {os.path.dirname(real)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(tmp)
    return real


def _umask_mode(default: int = 0o666) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return default & ~mask


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fh)`` on a temp file beside the target, fsync, rename over the target.
    On any failure the temp file is removed, the target is untouched and the error is raised."""
    real = resolve_target(path)
    directory = os.path.dirname(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mode = _umask_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def strict_json(data: Any) -> tuple[Any, list[str]]:
    """A copy of ``data`` with every non-finite float replaced by None, and the paths replaced
    (``loss``, ``history[3][2]``), so ``json.dumps(..., allow_nan=False)`` accepts it."""
    found: list[str] = []

    def walk(v: Any, where: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            found.append(where or "<root>")
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{where}.{k}" if where else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # numpy / torch scalars
            return walk(v.item(), where)
        return v

    return walk(data, ""), found


def json_bytes(report: dict[str, Any]) -> bytes:
    """Strict JSON of a report; non-finite numbers become null and are listed in ``nonfinite``."""
    clean, found = strict_json(report)
    if found:
        clean["nonfinite"] = found
    return (json.dumps(clean, indent=1, allow_nan=False) + "\n").encode()


class OutputFile:
    """One output file of a run. :meth:`write` never raises: the first failure prints one warning
    (which file, why) on stderr, every failure is counted, and :attr:`errors` feeds the report."""

    def __init__(self, path: str, what: str, *, warn: bool = True) -> None:
        self.path, self.what, self.warn = path, what, warn
        self.failures = 0
        self.writes = 0
        self.last_error = ""

    def write(self, write: Callable[[IO[bytes]], None]) -> bool:
        try:
            atomic_write(self.path, write)
        except Exception as exc:  # OSError, OutputPathError, or a serialisation error
            self.failures += 1
            self.last_error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if self.failures == 1 and self.warn:
                print(f"pinntao: warning: {self.what} {self.path!r} could not be written ({self.last_error}); "
                      "training continues, the failures are counted in the report", file=sys.stderr, flush=True)
            return False
        self.writes += 1
        return True

    def status(self) -> dict[str, Any]:
        return {"path": self.path, "writes": self.writes, "failures": self.failures, "last_error": self.last_error}
