"""SIGINT/SIGTERM: the first one asks the run to stop cleanly at the next iteration (the
Trainer agrees on it across ranks, writes the final checkpoint and report); a second one
abandons the run at once. Before that (``python -m pinntao`` importing torch and PETSc, a few
seconds), :func:`guard_startup` turns either signal into one line and exit 128 + signal."""

from __future__ import annotations

import os
import signal
import threading

_received = 0
_installed: dict[int, object] = {}
_startup: dict[int, object] = {}  # the handlers guard_startup() replaced
_stderr_fd = -1  # stderr as it was at start-up (init_petsc redirects fd 2 for a while)
_print_rank = True  # False on ranks other than 0 of a launcher (set by guard_startup)


def _startup_handler(signum: int, frame: object) -> None:
    """Write the line and leave at once: ``os._exit``, not ``SystemExit``. The signal lands inside
    some import (numpy, torch, petsc4py); an exception raised there can be swallowed by that
    package or leave it half-initialised for the code that unwinds (numpy's module ``__getattr__``
    then recurses), and nothing started yet needs cleaning up."""
    if _print_rank:
        msg = f"pinntao: error: interrupted by {name(signum)} during start-up; nothing was trained\n"
        try:
            os.write(_stderr_fd if _stderr_fd >= 0 else 2, msg.encode())
        except OSError:
            pass
    os._exit(exit_code(signum))


def guard_startup() -> None:
    """Until :func:`install`: SIGINT or SIGTERM ends the process with one line on stderr (rank 0)
    and exit 130 / 143, instead of a KeyboardInterrupt traceback from inside an import."""
    global _stderr_fd, _print_rank
    if threading.current_thread() is not threading.main_thread() or _startup:
        return
    try:
        _stderr_fd = os.dup(2)
        os.set_inheritable(_stderr_fd, False)
    except OSError:
        _stderr_fd = -1
    for sig in (signal.SIGINT, signal.SIGTERM):
        _startup[sig] = signal.signal(sig, _startup_handler)
    from .io import env_rank  # after the handlers: no import inside the handler itself

    _print_rank = env_rank() == 0


def _handler(signum: int, frame: object) -> None:
    global _received
    if _received:
        raise KeyboardInterrupt(f"signal {signum} received twice")
    _received = signum


def install() -> None:
    """Catch SIGINT and SIGTERM (main thread only; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        if sig not in _installed:
            old = signal.signal(sig, _handler)
            _installed[sig] = _startup.pop(sig, old)  # uninstall() restores what was there before pinntao


def uninstall() -> None:
    """Restore the handlers :func:`install` replaced."""
    for sig, old in list(_installed.items()):
        signal.signal(sig, old)  # type: ignore[arg-type]
        del _installed[sig]


def received() -> int:
    """The first signal received since :func:`reset` (0: none)."""
    return _received


def reset() -> None:
    global _received
    _received = 0


def name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_code(signum: int) -> int:
    """128 + signal number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)
