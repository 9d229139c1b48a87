"""Numerical reference solutions computed on demand and cached: in memory for the process and
on disk (``$PINNTAO_CACHE``, default ``~/.cache/pinntao``) as .npz files named by the solver's
parameters. ``PINNTAO_CACHE=off`` disables the disk cache.

A cache file is read only if it is a regular file of plausible size (:func:`pinntao.io.open_input`:
a FIFO or device is never opened) and used only if it is complete: every array finite, the
expected shapes (the caller's ``check``) and a SHA-256 checksum of the arrays stored beside them.
A bad file (truncated, empty, NaN, an older file without checksum) is recomputed, with one warning
line naming it, and replaced; it is written like a checkpoint (:func:`pinntao.io.atomic_write`:
temp file + fsync + rename over a regular file), so ranks computing the same reference at once
never see a partial file. Anything but a regular file at the cache path (a device node, a FIFO,
a directory) is neither read nor replaced: a :class:`~pinntao.errors.PinnInputError` says so.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import atomic_write, env_rank, open_input

_MEMORY: dict[str, dict[str, np.ndarray]] = {}
#: the largest cache file read (a 2001² grid of five fields is 160 MiB)
CACHE_MAX_BYTES = 2**30
_SUM = "sha256"


def cache_dir() -> Path | None:
    """The disk cache folder, or None when disabled."""
    env = os.environ.get("PINNTAO_CACHE", "")
    if env.lower() == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "pinntao"


def checksum(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """SHA-256 over each array's name, dtype, shape and bytes (sorted by name), as uint8."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def _load(path: Path, check: Callable[[dict[str, np.ndarray]], str] | None) -> tuple[dict[str, np.ndarray] | None, str]:
    """(arrays, "") from a valid cache file, or (None, why it is not); raises PinnInputError for a
    path that is not a regular file (never opened)."""
    with open_input(str(path), "reference cache", CACHE_MAX_BYTES) as fh:
        data = fh.read()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            out = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:  # empty, truncated, not a zip, bad member
        return None, f"unreadable ({type(exc).__name__}: {exc})"
    stored = out.pop(_SUM, None)
    if stored is None:
        return None, "it has no checksum"
    if not np.array_equal(stored, checksum(out)):
        return None, "its checksum does not match its data"
    bad = [k for k, v in out.items() if v.dtype.kind in "fc" and not np.all(np.isfinite(v))]
    if bad:
        return None, f"non-finite values in {', '.join(bad)}"
    why = check(out) if check is not None else ""
    return (None, why) if why else (out, "")


def cached(key: str, compute: Callable[[], dict[str, np.ndarray]],
           check: Callable[[dict[str, np.ndarray]], str] | None = None) -> dict[str, np.ndarray]:
    """``compute()``'s arrays for ``key`` (a file-name-safe string naming solver and parameters).
    ``check(arrays)`` returns why stored arrays do not fit (wrong keys or shapes), or ""."""
    if key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir()
    path = folder / f"{key}.npz" if folder is not None else None
    if path is not None and os.path.lexists(path):
        if not os.path.exists(path):  # a dangling symlink: a new file is written at its target
            out, why = None, ""
        else:
            out, why = _load(path, check)
        if out is not None:
            _MEMORY[key] = out
            return out
        if why and env_rank() == 0:
            print(f"pinntao: warning: reference cache {str(path)!r} is bad ({why}); recomputing it",
                  file=sys.stderr, flush=True)
    out = compute()
    bad = [k for k, v in out.items() if not np.all(np.isfinite(v))]
    if bad:
        raise RuntimeError(f"reference {key}: the solver returned non-finite values in {', '.join(bad)}")
    _MEMORY[key] = out
    if path is not None:
        data = {**out, _SUM: checksum(out)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(str(path), lambda fh: np.savez(fh, **data))
        except OSError:
            pass  # a read-only home: the in-memory copy still serves this process
    return out


def expect_shapes(shapes: dict[str, tuple[int, ...]]) -> Callable[[dict[str, np.ndarray]], str]:
    """A ``check`` for :func:`cached`: exactly these arrays with these shapes."""

    def check(arrays: dict[str, np.ndarray]) -> str:
        if set(arrays) != set(shapes):
            return f"arrays {sorted(arrays)}, expected {sorted(shapes)}"
        wrong = [f"{k} {arrays[k].shape} (expected {s})" for k, s in shapes.items() if arrays[k].shape != s]
        return "wrong shape: " + ", ".join(wrong) if wrong else ""

    return check


__all__ = ["CACHE_MAX_BYTES", "cache_dir", "cached", "checksum", "expect_shapes"]
