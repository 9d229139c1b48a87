"""The ISGD paper's stiff quadratic, a two-parameter TAO objective without a network.

L(θ) = ½K₁(θ₁ − θ₁*)² + ½K₂(θ₂ − θ₂*)², K₁ = 1e-4, K₂ = 1e4: explicit gradient descent is
stable only for α < 2/K₂ and then needs ~1/(αK₁) ≈ 1e8 steps, while the implicit step
θₙ₊₁ = (I + αK)⁻¹(θₙ + αKθ*) contracts by 1/(1 + αKᵢ) for every α > 0.
"""

from __future__ import annotations

import numpy as np
from petsc4py import PETSc


class StiffQuadratic:
    """TAO callbacks (objective, gradient, assembled diagonal Hessian) of the stiff quadratic."""

    def __init__(self, k1: float = 1e-4, k2: float = 1e4, target=(1.0, -1.0), comm: PETSc.Comm | None = None):
        self.comm = comm if comm is not None else PETSc.COMM_SELF
        self.K = np.array([k1, k2], dtype=np.float64)
        self.target = np.asarray(target, dtype=np.float64)

    def create_vec(self, values=(0.0, 0.0)) -> PETSc.Vec:
        v = PETSc.Vec().createMPI((PETSc.DECIDE, 2), comm=self.comm)
        a, b = v.getOwnershipRange()
        v.setArray(np.asarray(values, dtype=np.float64)[a:b])
        return v

    def _local(self, x: PETSc.Vec) -> tuple[np.ndarray, np.ndarray]:
        a, b = x.getOwnershipRange()
        return x.getArray(readonly=True) - self.target[a:b], self.K[a:b]

    def objective(self, tao: PETSc.TAO, x: PETSc.Vec) -> float:
        e, k = self._local(x)
        return self.comm.tompi4py().allreduce(float(0.5 * np.sum(k * e * e)))

    def gradient(self, tao: PETSc.TAO, x: PETSc.Vec, g: PETSc.Vec) -> None:
        e, k = self._local(x)
        g.setArray(k * e)

    def objective_gradient(self, tao: PETSc.TAO, x: PETSc.Vec, g: PETSc.Vec) -> float:
        self.gradient(tao, x, g)
        return self.objective(tao, x)

    def hessian(self, tao: PETSc.TAO, x: PETSc.Vec, H: PETSc.Mat, P: PETSc.Mat) -> None:
        pass  # constant, assembled once in setup_tao

    def setup_tao(self, tao: PETSc.TAO) -> PETSc.Vec:
        """Install the callbacks; returns a starting point θ₀ = 0."""
        x = self.create_vec()
        H = PETSc.Mat().createAIJ(((x.getLocalSize(), 2), (x.getLocalSize(), 2)), nnz=1, comm=self.comm)
        a, b = x.getOwnershipRange()
        for i in range(a, b):
            H.setValue(i, i, self.K[i])
        H.assemble()
        H.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        tao.setObjective(self.objective)
        tao.setGradient(self.gradient, x.duplicate())
        tao.setObjectiveGradient(self.objective_gradient, x.duplicate())
        tao.setHessian(self.hessian, H, H)
        return x

    def error(self, x: PETSc.Vec) -> float:
        e, _ = self._local(x)
        return float(np.sqrt(self.comm.tompi4py().allreduce(float(np.sum(e * e)))))
