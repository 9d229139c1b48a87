"""Small objects shared by tests (tiny nets, dense reference matrices)."""

from __future__ import annotations

import numpy as np
import torch
from petsc4py import PETSc

from pinntao.models import build_mlp
from pinntao.objective import PinnObjective
from pinntao.problems import get_problem


def tiny_objective(
    problem: str = "poisson2d", layers=(5, 4), n_int: int = 30, n_bnd: int = 12, seed: int = 0, **kw
) -> PinnObjective:
    prob = get_problem(problem)
    model = build_mlp(prob.dim, layers, "tanh", torch.float64, "cpu")
    counts = {"interior": n_int, "boundary": n_bnd, "initial": n_bnd}
    return PinnObjective(prob, model, comm=PETSc.COMM_WORLD, counts=counts, seed=seed, **kw)


def perturbed_theta(obj: PinnObjective, seed: int = 1) -> PETSc.Vec:
    x = obj.initial_vec()
    gen = np.random.default_rng(seed)
    a, b = x.getOwnershipRange()
    x.setArray(x.getArray() + 0.3 * gen.standard_normal(obj.n_params)[a:b])
    return x


def dense(op: PETSc.Mat, n: int) -> np.ndarray:
    """Columns A e_j of an operator with n columns (serial tests)."""
    x, y = op.createVecs()
    cols = []
    for j in range(n):
        x.set(0.0)
        x.setValue(j, 1.0)
        x.assemble()
        op.mult(x, y)
        cols.append(y.getArray().copy())
    return np.stack(cols, axis=1)


def gram_pc(obj: PinnObjective, x: PETSc.Vec, pc_type: str, mu: float = 0.0, **opts: object):
    """A preonly KSP on the Gram shell G (+ μI, recorded as NaturalGradient records it) at x with
    the PCPYTHON ``pc_type``, set up from ``opts`` (options removed again); returns (ksp, pc)."""
    obj.set_linearization(x)
    G = obj.gram_mat()
    if mu:
        G.shift(mu)
        G.getPythonContext().damping = mu  # what NaturalGradient records beside its MatShift
    ksp = PETSc.KSP().create()
    ksp.setOperators(G, G)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonType(pc_type)
    db = PETSc.Options()
    for k, v in opts.items():
        db.setValue(k, str(v))
    try:
        pc.setFromOptions()
    finally:
        for k in opts:
            db.delValue(k)
    ksp.setUp()
    return ksp, pc


def interrupted_and_resumed(tmp_path, base: list[str], total: int, stop: int = 8, every: int = 4,
                            timeout: float = 300) -> tuple[dict, dict]:
    """JSON reports of ``base`` run for ``total`` iterations straight through, and of the same run
    checkpointed every ``every``, stopped at ``stop`` and resumed from the checkpoint to ``total``."""
    import json

    from conftest import run_pinntao

    full, res, ck = tmp_path / "full.json", tmp_path / "res.json", tmp_path / "ck.npy"
    for args in ((*base, "-tao_max_it", str(total), "-pinn_report", str(full)),
                 (*base, "-tao_max_it", str(stop), "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", str(every)),
                 ("-pinn_restart", str(ck), "-tao_max_it", str(total), "-pinn_report", str(res))):
        proc = run_pinntao(*args, timeout=timeout)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    return json.loads(full.read_text()), json.loads(res.read_text())


def reports_on_one_and_two_ranks(tmp_path, args_for, timeout: float = 300) -> tuple[dict, dict]:
    """JSON reports of ``python -m pinntao`` on 1 and on 2 ranks; ``args_for(name)`` gives the
    arguments of the run whose report is ``tmp_path / name``."""
    import json

    from conftest import run_mpi, run_pinntao

    one = run_pinntao(*args_for("one.json"), timeout=timeout)
    assert one.returncode == 0, one.stderr
    two = run_mpi(2, ["-m", "pinntao", *args_for("two.json")], timeout=timeout)
    assert two.returncode == 0, two.stderr
    return json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())


def json_line(proc) -> dict:
    """The payload of the ``JSON{...}`` line a ``tests/*_check.py`` launcher prints."""
    import json

    return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])


def check_on_one_and_two_ranks(script: str, timeout: float = 600) -> tuple[dict, dict]:
    """The JSON payloads of the launcher ``tests/<script>`` run on 1 and on 2 ranks."""
    from conftest import ROOT, run_mpi

    out = []
    for n in (1, 2):
        proc = run_mpi(n, [str(ROOT / "tests" / script)], timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out.append(json_line(proc))
    return out[0], out[1]
