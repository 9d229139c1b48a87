"""PETSc log events for pinntao's own phases, shown by ``-log_view``.

Torch work is invisible to PETSc's own events; these name it: the residual evaluation
(loss, gradient, line-search candidates), the explicit Jacobian, the low-rank or kernel
factorisation, and the natural-gradient line search.
"""

from __future__ import annotations

from petsc4py import PETSc

RESIDUAL = PETSc.Log.Event("PinnResidual")  # torch r(θ), L(θ), ∇L(θ) on this rank, and the reduction
JACOBIAN = PETSc.Log.Event("PinnJacobian")  # explicit local J (one batched pass)
FACTOR = PETSc.Log.Event("PinnFactor")  # sketch + small eig, exact eig/SVD, or kernel Cholesky
LINESEARCH = PETSc.Log.Event("PinnLineSearch")  # the natural-gradient step-length search
