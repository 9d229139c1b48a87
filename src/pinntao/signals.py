"""SIGINT/SIGTERM: the first one asks the run to stop cleanly at the next iteration (the
Trainer agrees on it across ranks, writes the final checkpoint and report); a second one
abandons the run at once."""

from __future__ import annotations

import signal
import threading

_received = 0
_installed: dict[int, object] = {}


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
            _installed[sig] = signal.signal(sig, _handler)


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
