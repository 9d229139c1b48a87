"""Shared fixtures: PETSc initialised once, an options context, an mpiexec launcher."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import petsc4py
import pytest

petsc4py.init([sys.argv[0]])
from petsc4py import PETSc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def petsc_options(**kv: object):
    """Set PETSc options for the duration of a block, then remove them."""
    db = PETSc.Options()
    for k, v in kv.items():
        db.setValue(k, "" if v is None else str(v))
    try:
        yield db
    finally:
        for k in kv:
            db.delValue(k)


def mpiexec() -> str:
    cand = Path(sys.executable).parent / "mpiexec"
    exe = str(cand) if cand.exists() else shutil.which("mpiexec")
    if exe is None:
        pytest.skip("no mpiexec found")
    return exe


def run_cmd(args: list[str], timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=env)


def run_mpi(n: int, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cmd([mpiexec(), "-n", str(n), sys.executable, *args], timeout=timeout)


def run_pinntao(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_cmd([sys.executable, "-m", "pinntao", *args], timeout=timeout)
