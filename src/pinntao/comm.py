"""MPI helpers: split global point sets over ranks, sum local contributions, pin threads, and the
rank-agreed decisions (stop, fail, accept a file) every rank must take alike."""

from __future__ import annotations

import os

import numpy as np
import torch


def split_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """Contiguous slice [start, stop) of n items owned by ``rank``; the first n % size ranks
    get one extra, so any n works for any rank count and the union is always 0..n-1."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def allreduce_sum(mpicomm, arr: np.ndarray) -> np.ndarray:
    """In-place Allreduce(SUM) of a contiguous float64 array; returns it."""
    from mpi4py import MPI

    if mpicomm.Get_size() > 1:
        mpicomm.Allreduce(MPI.IN_PLACE, arr, op=MPI.SUM)
    return arr


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A contiguous float64 host copy of a tensor (safe to reduce in place)."""
    return np.array(t.detach().to("cpu", torch.float64).contiguous().numpy(), dtype=np.float64, copy=True)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def configure_threads(mpicomm, threads: int = 0) -> int:
    """Set torch's thread count so ranks on one node do not oversubscribe its cores:
    cores ÷ (ranks on this node) unless ``threads`` > 0 forces a count."""
    from mpi4py import MPI

    if threads <= 0:
        local = mpicomm.Split_type(MPI.COMM_TYPE_SHARED)
        per_node = local.Get_size()
        local.Free()
        threads = max(1, available_cores() // per_node)
    torch.set_num_threads(threads)
    return threads


def max_flags(mpicomm, flags: list[float]) -> np.ndarray:
    """Element-wise maximum of small per-rank flags over all ranks: every rank gets the same
    answer, so decisions taken from it (stop, fail) are collective."""
    arr = np.asarray(flags, dtype=np.float64)
    if mpicomm is not None and mpicomm.Get_size() > 1:
        from mpi4py import MPI

        mpicomm.Allreduce(MPI.IN_PLACE, arr, op=MPI.MAX)
    return arr


def agreed_stop(mpicomm, signal: float, timeout: bool, failure: str) -> tuple[int, bool, str]:
    """One collective stop decision of a training monitor, the same on every rank: (signal
    received on any rank, time limit hit on any rank, failure message of the highest-numbered failing rank
    prefixed with its rank, or '')."""
    rank = mpicomm.Get_rank() if mpicomm is not None else 0
    size = mpicomm.Get_size() if mpicomm is not None else 1
    sig, over, bad = max_flags(mpicomm, [signal, float(timeout), float(rank + 1) if failure else 0.0])
    msg = ""
    if bad:
        root = int(bad) - 1
        msg = mpicomm.bcast(failure, root=root) if size > 1 else failure
        msg = f"rank {root}: {msg}" if size > 1 else msg
    return int(sig), bool(over), msg


def rank0_decides(mpicomm, check) -> str | None:
    """Run ``check()`` on rank 0 only (it returns an error message or None, or raises) and
    broadcast the verdict, so every rank accepts or refuses together."""
    msg = None
    if mpicomm is None or mpicomm.Get_rank() == 0:
        try:
            msg = check()
        except Exception as exc:  # the check itself failed: that is the verdict
            msg = str(exc) or type(exc).__name__
    if mpicomm is not None and mpicomm.Get_size() > 1:
        msg = mpicomm.bcast(msg, root=0)
    return msg


def abort_all(mpicomm, message: str, code: int = 1) -> None:
    """Print one line and end every rank: MPI_Abort on more than one rank (a rank that failed
    alone must not leave the others waiting in a collective), else SystemExit."""
    import sys

    rank = mpicomm.Get_rank() if mpicomm is not None else 0
    size = mpicomm.Get_size() if mpicomm is not None else 1
    where = f" (rank {rank} of {size}; aborting all ranks)" if size > 1 else ""
    print(f"pinntao: error: {message}{where}", file=sys.stderr, flush=True)
    if size > 1:
        import time

        sys.stdout.flush()
        time.sleep(0.5)  # let the launcher forward the line: MPI_Abort kills the ranks, pending output with them
        mpicomm.Abort(code)
    raise SystemExit(code)
