"""Numerical reference solutions computed on demand and cached: in memory for the process and
on disk (``$PINNTAO_CACHE``, default ``~/.cache/pinntao``) as .npz files named by the solver's
parameters, written atomically (temporary file + rename), so ranks computing the same reference
at once never see a partial file. ``PINNTAO_CACHE=off`` disables the disk cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

_MEMORY: dict[str, dict[str, np.ndarray]] = {}


def cache_dir() -> Path | None:
    """The disk cache folder, or None when disabled."""
    env = os.environ.get("PINNTAO_CACHE", "")
    if env.lower() == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "pinntao"


def cached(key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays for ``key`` (a file-name-safe string naming solver and parameters)."""
    if key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir()
    path = folder / f"{key}.npz" if folder is not None else None
    if path is not None and path.exists():
        try:
            with np.load(path) as data:
                out = {k: data[k] for k in data.files}
            _MEMORY[key] = out
            return out
        except (OSError, ValueError):
            pass  # unreadable: recompute and overwrite
    out = compute()
    _MEMORY[key] = out
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **out)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the in-memory copy still serves this process
    return out
