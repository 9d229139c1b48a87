"""MPI helpers: split global point sets over ranks, sum local contributions, pin threads."""

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
