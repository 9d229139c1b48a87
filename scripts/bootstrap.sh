#!/usr/bin/env bash
# Idempotently create .venv with PETSc/petsc4py (built from source), MPI, torch (CPU) and pinntao.
# Re-running is cheap: every step is skipped when its result is already importable.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
PETSC_VERSION=${PETSC_VERSION:-3.26.1}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}   # a CPU wheel that lies on these machines' disk

say() { printf '[bootstrap] %s\n' "$*"; }

# 1. system packages: a BLAS/LAPACK for PETSc, pkg-config for its configure
need_apt=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need_apt+=(libopenblas-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if ((${#need_apt[@]})); then
  say "installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

# 2. the virtual environment and the pure-wheel dependencies
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
VPY="$VENV/bin/python"
export PATH="$PWD/$VENV/bin:$PATH"   # meson, ninja, mpicc from the venv
PIP=("$VPY" -m pip install -q --disable-pip-version-check)
if ! "$VPY" -c "import torch, numpy, scipy, pytest, mpi4py, matplotlib, mesonpy, cython, sphinx, myst_parser" \
    2>/dev/null; then
  say "installing wheels (mpich, mpi4py, numpy, scipy, torch, pytest, matplotlib, sphinx + myst-parser, build tools)"
  "${PIP[@]}" --upgrade pip
  "${PIP[@]}" mpich mpi4py numpy scipy "$TORCH_SPEC" pytest matplotlib sphinx myst-parser \
      meson-python meson ninja cython setuptools wheel ruff
fi

# 3. PETSc then petsc4py, against the venv's MPI (else PETSc silently builds without MPI)
export MPICC="$PWD/$VENV/bin/mpicc" MPICXX="$PWD/$VENV/bin/mpicxx"
export PETSC_CONFIGURE_OPTIONS=${PETSC_CONFIGURE_OPTIONS:-"--with-cuda=0 --with-fc=0 --with-debugging=0"}
if ! "$VPY" -c "import petsc" 2>/dev/null; then
  say "building petsc==$PETSC_VERSION from source (~8 min the first time; pip caches the wheel)"
  "${PIP[@]}" "petsc==$PETSC_VERSION"
fi
if ! "$VPY" -c "import petsc4py; petsc4py.init(); from petsc4py import PETSc" 2>/dev/null; then
  say "building petsc4py==$PETSC_VERSION (~8 min the first time; pip caches the wheel)"
  "${PIP[@]}" --no-build-isolation "petsc4py==$PETSC_VERSION"
fi

# 4. pinntao itself, editable through meson-python
if ! "$VPY" -c "import pinntao" 2>/dev/null; then
  say "installing pinntao (editable)"
  "${PIP[@]}" --no-build-isolation -e .
fi
say "ready: $VENV"
