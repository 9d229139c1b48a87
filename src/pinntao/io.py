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


# -- input files ---------------------------------------------------------------------------------
def env_rank() -> int:
    """This process's MPI rank from the launcher's environment (0 without one), before MPI is up."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _size_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def check_input(path: str, what: str, max_bytes: int) -> os.stat_result:
    """Refuse (PinnInputError, one line) ``path`` unless it is a regular file (symlinks followed)
    of at most ``max_bytes``. Only ``os.stat``: a FIFO or device is never opened, nothing blocks."""
    from .errors import PinnInputError

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise PinnInputError(f"{what}: cannot read {path!r}: no such file") from None
    except OSError as exc:
        raise PinnInputError(f"{what}: cannot read {path!r}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise PinnInputError(f"{what}: cannot read {path!r}: it is {_describe(st.st_mode)}; only regular files "
                             "are read")
    if st.st_size > max_bytes:
        raise PinnInputError(f"{what}: {path!r} is {_size_text(st.st_size)}, more than the {_size_text(max_bytes)} "
                             "such a file can plausibly hold; refused")
    return st


def open_input(path: str, what: str, max_bytes: int) -> IO[bytes]:
    """``path`` opened for reading after :func:`check_input` accepted it; opened with O_NONBLOCK
    and checked again on the open descriptor, so a file swapped for a FIFO or device in between is
    refused too. The one way every input file of pinntao is opened."""
    from .errors import PinnInputError

    check_input(path, what, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PinnInputError(f"{what}: cannot read {path!r}: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
        os.close(fd)
        raise PinnInputError(f"{what}: cannot read {path!r}: it changed while being opened (now "
                             f"{_describe(st.st_mode) if not stat.S_ISREG(st.st_mode) else 'larger'})")
    if hasattr(os, "O_NONBLOCK"):  # regular files never block; plain reads from here on
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return os.fdopen(fd, "rb")


def read_input(path: str, what: str, max_bytes: int) -> bytes:
    """The whole content of an input file accepted by :func:`open_input` (at most ``max_bytes``)."""
    from .errors import PinnInputError

    with open_input(path, what, max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PinnInputError(f"{what}: {path!r} grew beyond {_size_text(max_bytes)} while being read; refused")
    return data


#: the largest restart state read (θ, a few θ-sized solver arrays, points, history)
RESTART_MAX_BYTES = 4 * 2**30


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_RESTART_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "iteration": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "n_params": (lambda v: _is_int(v) and v > 0, "an integer > 0"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**63, "an integer in [0, 2**63)"),
    "wall_s": (lambda v: _is_num(v) and v >= 0, "a finite number >= 0"),
    "loss": (lambda v: v is None or _is_num(v), "a finite number or null"),
    "initial_loss": (lambda v: v is None or _is_num(v), "a finite number or null"),
    "problem": (lambda v: isinstance(v, str), "a string"),
    "tao_type": (lambda v: isinstance(v, str), "a string"),
    "solver": (lambda v: isinstance(v, str), "a string"),
    "n_points": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_int(n) and n >= 0
                                                       for k, n in v.items()), "a map of block names to counts >= 0"),
    "history": (lambda v: isinstance(v, list) and all(
        isinstance(r, list) and len(r) == 4 and _is_int(r[0]) and r[0] >= 0 and all(x is None or _is_num(x)
                                                                                   for x in r[1:]) for r in v),
        "a list of [iteration, wall_s, loss, rel_l2] rows"),
    "solver_scalars": (lambda v: isinstance(v, dict), "a map of names to values"),
    "options": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
                "a map of option names to strings"),
}


def check_restart_meta(meta: dict[str, Any], where: str) -> None:
    """Every field of a restart file's metadata present and of its kind (iteration an integer >= 0,
    ...); raises PinnInputError naming the first bad field and what is allowed."""
    from .errors import PinnInputError

    for key, (ok, text) in _RESTART_FIELDS.items():
        if key not in meta:
            raise PinnInputError(f"{where} lacks the field {key!r}; not a complete restart file")
        if not ok(meta[key]):
            raise PinnInputError(f"{where}: field {key!r} is {meta[key]!r}; must be {text}")


#: the largest options file read (PETSc reads them whole, line by line)
OPTIONS_FILE_MAX_BYTES = 16 * 2**20


def _included_files(text: str) -> list[str]:
    """The ``-options_file NAME`` lines of a PETSc options file (PETSc's rules: ``#`` starts a
    comment, one option and its value per line, the value may be quoted)."""
    out = []
    for line in text.splitlines():
        tokens = line.split("#", 1)[0].replace("\t", " ").replace("\r", " ").split()
        if len(tokens) >= 2 and tokens[0].lower() == "-options_file":
            out.append(tokens[1].strip('"'))
    return out


def check_options_files(argv: list[str]) -> str | None:
    """Every ``-options_file`` of ``argv`` and every file those include, checked before PETSc
    reads them: a regular file of plausible size, and no include cycle (PETSc would recurse until
    the stack overflows, exit 139 without a message). Returns one line saying what is wrong, or None."""
    from .errors import PinnInputError

    def visit(path: str, chain: list[str]) -> str | None:
        real = os.path.realpath(os.path.expanduser(path))
        if real in chain:
            loop = " → ".join([*(repr(c) for c in chain[chain.index(real):]), repr(real)])
            return f"-options_file: {path!r} includes itself ({loop}); PETSc would recurse without end"
        if len(chain) >= 32:
            return f"-options_file: {path!r}: options files nested more than 32 deep"
        try:
            text = read_input(os.path.expanduser(path), "-options_file", OPTIONS_FILE_MAX_BYTES).decode(
                errors="replace")
        except PinnInputError as exc:
            return str(exc)
        for inc in _included_files(text):
            msg = visit(inc, [*chain, real])
            if msg:
                return msg
        return None

    for i, tok in enumerate(argv[:-1]):
        if tok.lower() in ("-options_file", "-options_file_yaml"):
            if tok.lower() == "-options_file_yaml":
                try:
                    check_input(os.path.expanduser(argv[i + 1]), tok, OPTIONS_FILE_MAX_BYTES)
                except PinnInputError as exc:
                    return str(exc)
                continue
            msg = visit(argv[i + 1], [])
            if msg:
                return msg
    return None
