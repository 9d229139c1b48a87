"""Imported first by ``pinntao/__init__``: under ``python -m pinntao`` (runpy sets ``sys.argv[0]``
to ``-m`` while it imports the package), SIGINT/SIGTERM during the seconds of importing torch and
PETSc end the process with one line and exit 130/143 (:func:`pinntao.signals.guard_startup`)
instead of a KeyboardInterrupt traceback. A library import leaves the handlers alone."""

import sys

from .signals import guard_startup

if sys.argv[:1] == ["-m"]:
    guard_startup()
