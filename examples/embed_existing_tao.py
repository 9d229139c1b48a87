"""pinntao inside your own PETSc program: your TAOs, your prefixes, your monitor and convergence test.

pinntao supplies only the objective (f, ∇f, the Gram shell G = JᵀJ) and a preconditioner; the
program owns two independent solves, configured apart by their options prefixes:

- ``a_``: TAO's own Newton line search (nls) on G, its KSP (prefix ``a_tao_nls_``) preconditioned
  by pinntao's sketched pseudo-inverse: ``-a_tao_nls_pc_type python
  -a_tao_nls_pc_python_type pinntao.pc.SketchedPseudoInverse -a_tao_nls_pc_sketch_rank 40``;
- ``b_``: pinntao's natural-gradient TAO type (its KSP has prefix ``b_tao_ng_``).

    mpiexec -n 2 python examples/embed_existing_tao.py -a_tao_monitor \
        -b_tao_ng_pc_python_type pinntao.pc.ExactPseudoInverse
    python examples/embed_existing_tao.py -options_file examples/solver.opts -options_left

Defaults below are set for this program's own prefixes only, and only where you gave nothing.
"""

import sys

import petsc4py

petsc4py.init(sys.argv)

import torch  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from pinntao import PinnObjective, build_mlp, get_problem  # noqa: E402

comm = PETSc.COMM_WORLD
db = PETSc.Options()
for key, value in {
    "a_tao_type": "nls", "a_tao_max_it": "15", "a_tao_nls_ksp_type": "cg", "a_tao_nls_ksp_max_it": "50",
    "a_tao_nls_pc_type": "python", "a_tao_nls_pc_python_type": "pinntao.pc.SketchedPseudoInverse",
    "b_tao_type": "python", "b_tao_python_type": "pinntao.solvers.NaturalGradient", "b_tao_max_it": "15",
    "b_tao_ng_ksp_type": "preonly", "b_tao_ng_pc_type": "python",
    "b_tao_ng_pc_python_type": "pinntao.pc.SketchedPseudoInverse",
}.items():
    if not db.hasName(key):
        db.setValue(key, value)

problem = get_problem("poisson2d")
obj = PinnObjective(problem, build_mlp(2, (20, 20), "tanh", torch.float64, "cpu"), comm=comm,
                    counts={"interior": 400, "boundary": 80}, seed=0)


def my_monitor(tao: PETSc.TAO) -> None:
    """The user's monitor: one line every 5 iterations."""
    its, f, gnorm, *_ = tao.getSolutionStatus()
    if its % 5 == 0:
        PETSc.Sys.Print(f"  [{tao.getOptionsPrefix()}] it {its:3d}  loss {f:.4e}  |g| {gnorm:.2e}", comm=comm)


def my_convergence(tao: PETSc.TAO) -> None:
    """The user's convergence test: stop when the loss is below 1e-10, else TAO's default tests."""
    its, f, *_ = tao.getSolutionStatus()
    if f < 1e-10:
        tao.setConvergedReason(PETSc.TAO.ConvergedReason.CONVERGED_USER)
    elif its >= tao.getMaximumIterations():
        tao.setConvergedReason(PETSc.TAO.ConvergedReason.DIVERGED_MAXITS)


results = {}
for prefix in ("a_", "b_"):
    tao = PETSc.TAO().create(comm=comm)
    tao.setOptionsPrefix(prefix)
    obj.setup_tao(tao)  # f, ∇f, Gram shell (Hessian), residual and Jacobian shells
    tao.setMonitor(my_monitor)
    tao.setConvergenceTest(my_convergence)
    tao.setFromOptions()
    x = obj.initial_vec()
    tao.setSolution(x)
    tao.solve()
    pc = tao.getKSP().getPC()
    pc_name = pc.getPythonType() if pc.getType() == "python" else pc.getType()
    results[prefix] = (tao.getType(), pc_name, tao.getIterationNumber(), tao.getObjectiveValue(), obj.rel_l2(x))
    PETSc.Sys.Print(f"{prefix}: tao={tao.getType()} ksp prefix={tao.getKSP().getOptionsPrefix()} pc={pc_name} "
                    f"iterations={results[prefix][2]} loss={results[prefix][3]:.3e} rel_l2={results[prefix][4]:.3e} "
                    f"({tao.getConvergedReason()})", comm=comm)
    tao.destroy()
