"""θ files and restart files: atomic checkpoints (.npy), validated loading (.npy or PETSc binary
Vec), and the restart file format (θ, the solver's declared state, strict-JSON metadata).

:func:`load_theta` reads a file a user names with ``-pinn_load`` and refuses, with one line,
anything that is not a finite real vector of the network's size: object arrays, complex or
integer-coded data, truncated files, archives, text.
"""

from __future__ import annotations

import io
import zipfile
from typing import IO, Any

import numpy as np

from .errors import PinnInputError
from .io import atomic_write, json_bytes, read_input

PETSC_VEC_CLASSID = 1211214
_NPY_MAGIC = b"\x93NUMPY"


def save_checkpoint(path: str, theta: np.ndarray) -> None:
    """Write θ to ``path`` (.npy) atomically: a temp file in the same directory, then rename.
    Raises ValueError for a non-finite θ (the previous checkpoint stays) and OSError on I/O."""
    theta = np.asarray(theta, dtype=np.float64)
    if not np.all(np.isfinite(theta)):
        raise ValueError("refusing to checkpoint a non-finite θ")
    atomic_write(path, lambda fh: np.save(fh, theta, allow_pickle=False))


def save_theta(fh: IO[bytes], path: str, theta: np.ndarray) -> None:
    """θ in the format ``path`` names: ``.npy``, else a PETSc binary Vec (what VecView writes to a
    binary viewer: class id, length as PetscInt, big-endian float64), readable by VecLoad on any
    rank count and by ``-pinn_load``."""
    theta = np.asarray(theta, dtype=np.float64)
    if path.endswith(".npy"):
        np.save(fh, theta, allow_pickle=False)
        return
    from petsc4py import PETSc

    int_type = ">i8" if np.dtype(PETSc.IntType).itemsize == 8 else ">i4"
    fh.write(np.array([PETSC_VEC_CLASSID], dtype=">i4").tobytes())
    fh.write(np.array([theta.size], dtype=int_type).tobytes())
    fh.write(theta.astype(">f8").tobytes())


def _read_npy(data: bytes, path: str, flag: str) -> np.ndarray:
    fh = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _shape, _fortran, dtype = reader(fh)
    except Exception as exc:
        raise PinnInputError(f"{flag}: {path!r} has a corrupt .npy header ({exc})") from None
    if dtype.hasobject:
        raise PinnInputError(f"{flag}: {path!r} holds Python objects (dtype {dtype}); save θ as a float64 array")
    if dtype.kind not in "f":
        raise PinnInputError(f"{flag}: {path!r} holds dtype {dtype}; θ must be real floating point (float64)")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise PinnInputError(f"{flag}: {path!r} is truncated or corrupt ({exc})") from None
    return np.asarray(arr)


def _read_petsc_binary(data: bytes, path: str, flag: str) -> np.ndarray:
    size = len(data)
    head = np.frombuffer(data[:16][: len(data[:16]) // 4 * 4], dtype=">i4")
    if head.size < 2:
        raise PinnInputError(f"{flag}: {path!r} is a truncated PETSc binary Vec")
    for int_bytes in (4, 8):  # PetscInt of 32 or 64 bits
        if int_bytes == 8 and head.size < 3:
            continue
        n = int(head[1]) if int_bytes == 4 else int(np.frombuffer(head[1:3].tobytes(), dtype=">i8")[0])
        if n >= 0 and size == 4 + int_bytes + 8 * n:
            return np.frombuffer(data, dtype=">f8", offset=4 + int_bytes, count=n).astype(np.float64)
    n = int(head[1])
    raise PinnInputError(
        f"{flag}: {path!r} is a truncated or malformed PETSc binary Vec ({size} bytes; a real float64 Vec of "
        f"length {n} has {8 + 8 * n}); complex or single-precision PETSc builds are not supported"
    )


def theta_max_bytes(n_params: int) -> int:
    """The largest plausible θ file: 8 bytes a parameter plus 1 MiB for headers (and a wrong shape,
    still reported as such); anything larger is refused before it is read."""
    return 8 * int(n_params) + 2**20


def load_theta(path: str, n_params: int, flag: str = "-pinn_load") -> np.ndarray:
    """θ from a .npy file or a PETSc binary Vec, validated: shape (n_params,), real, finite."""
    data = read_input(path, flag, theta_max_bytes(n_params))  # a regular file of plausible size, or one line
    magic = data[:8]
    if magic.startswith(_NPY_MAGIC):
        theta = _read_npy(data, path, flag)
    elif magic[:4] == PETSC_VEC_CLASSID.to_bytes(4, "big"):
        theta = _read_petsc_binary(data, path, flag)
    elif zipfile.is_zipfile(io.BytesIO(data)):
        raise PinnInputError(f"{flag}: {path!r} is an archive (.npz/zip); give θ as a .npy file or a PETSc binary Vec")
    else:
        raise PinnInputError(
            f"{flag}: {path!r} is neither a .npy file nor a PETSc binary Vec (it starts with {magic[:8]!r})"
        )
    if theta.shape != (n_params,):
        raise PinnInputError(f"{flag}: {path!r} holds shape {theta.shape}, the network needs ({n_params},)")
    bad = int(np.count_nonzero(~np.isfinite(theta)))
    if bad:
        raise PinnInputError(f"{flag}: {path!r} holds {bad} non-finite value(s) (NaN/Inf); θ must be finite")
    return theta.astype(np.float64)


RESTART_FORMAT = "pinntao-restart-1"


def restart_path(checkpoint: str) -> str:
    """The restart state written beside a θ checkpoint: ``<checkpoint>.restart.npz``."""
    return checkpoint + ".restart.npz"


def save_restart(fh: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A restart file: an uncompressed .npz of θ and the solver's arrays plus strict-JSON metadata."""
    np.savez(fh, meta=np.frombuffer(json_bytes(meta), dtype=np.uint8), **arrays)


def read_restart(path: str, flag: str = "-pinn_restart") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a restart file; ``path`` may name the θ checkpoint it sits beside.
    Raises PinnInputError with one line for anything that is not a complete restart file."""
    import json
    import os

    from .io import RESTART_MAX_BYTES, check_input, check_restart_meta, open_input

    given = os.path.lexists(path)
    if given:
        check_input(path, flag, RESTART_MAX_BYTES)  # a FIFO or device: one line, never opened
    cand = path if given and zipfile.is_zipfile(path) else restart_path(path)
    if not os.path.lexists(cand):
        raise PinnInputError(f"{flag}: no restart state at {cand!r} (written by -pinn_checkpoint)")
    with open_input(cand, flag, RESTART_MAX_BYTES) as fh:
        try:
            with np.load(fh, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in z.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
        except Exception as exc:
            raise PinnInputError(f"{flag}: {cand!r} is not a readable restart file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != RESTART_FORMAT or "theta" not in arrays:
        raise PinnInputError(f"{flag}: {cand!r} is not a {RESTART_FORMAT} file")
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise PinnInputError(f"{flag}: {cand!r} holds non-finite values")
    check_restart_meta(meta, f"{flag}: {cand!r}")
    return arrays, meta


def load_initial(obj: Any, x: Any, path: str, flag: str = "-pinn_load") -> None:
    """θ from a file into x: read and validated on rank 0, broadcast to every rank."""
    theta, msg = None, None
    if obj.rank == 0:
        try:
            theta = load_theta(path, obj.n_params, flag)
        except PinnInputError as exc:
            msg = str(exc)
    if obj.size > 1:
        msg = obj.mpi.bcast(msg, root=0)
        if msg is None:
            theta = obj.mpi.bcast(theta, root=0)
    if msg:
        raise PinnInputError(msg)
    obj.set_from_full(x, theta)
