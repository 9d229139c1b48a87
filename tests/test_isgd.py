"""Implicit steps: the proximal PC equals dense (I + αG)⁻¹; ISGD is stable on the stiff quadratic
where gradient descent diverges; the linearized step is one dense damped Gauss-Newton step;
schedules switch where configured and carry θ; bad input is one clear error."""

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, petsc_options, run_mpi, run_pinntao
from helpers import dense, perturbed_theta, tiny_objective
from petsc4py import PETSc

from pinntao.pc import proximal_mat
from pinntao.presets import PRESETS, preset_options
from pinntao.quadratic import StiffQuadratic
from pinntao.train import Trainer


def _dense_gram(obj, x):
    obj.set_linearization(x)
    return dense(obj.gram_mat(), obj.n_params)


def _prox_ksp(obj, x, op=None, ksp_type="preonly", **opts):
    obj.set_linearization(x)
    A = op if op is not None else obj.gram_mat()
    ksp = PETSc.KSP().create()
    ksp.setOperators(A, A)
    ksp.setType(ksp_type)
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonType("pinntao.pc.ProximalPC")
    with petsc_options(**opts):
        ksp.setFromOptions()
        ksp.setUp()
    return ksp


def _apply(ksp, obj, seed=3):
    b, y = obj.create_vec(), obj.create_vec()
    b.setArray(np.random.default_rng(seed).standard_normal(obj.n_params))
    ksp.solve(b, y)
    return b.getArray().copy(), y.getArray().copy()


@pytest.mark.parametrize("n_int", [20, 60])  # N < P (kernel form) and N > P (dense G)
@pytest.mark.parametrize("kind", ["exact", "sketch", "cg"])
def test_proximal_pc_is_dense_inverse(kind, n_int):
    obj = tiny_objective(layers=(5, 4), n_int=n_int, n_bnd=10)
    x = perturbed_theta(obj)
    G = _dense_gram(obj, x)
    alpha = 0.3
    opts = {"pc_prox_type": kind, "pc_prox_alpha": alpha}
    if kind == "sketch":
        opts |= {"pc_prox_rank": obj.n_params, "pc_prox_oversample": 0}
    b, y = _apply(_prox_ksp(obj, x, **opts), obj)
    ref = np.linalg.solve(np.eye(obj.n_params) + alpha * G, b)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-8 * np.abs(ref).max())


def test_proximal_pc_low_rank_sketch_is_not_exact_but_preconditions_cg():
    """A rank-8 sketch misses part of G (so the PC alone is off), yet CG on I + αG with it
    converges to the dense solution in few iterations; α is the operator shell's, not the option."""
    obj = tiny_objective(layers=(5, 4), n_int=60, n_bnd=10)
    x = perturbed_theta(obj)
    G = _dense_gram(obj, x)
    alpha = 5.0
    M = proximal_mat(obj.gram_mat(), alpha)
    ksp = _prox_ksp(obj, x, op=M, ksp_type="cg", pc_prox_rank=8, pc_prox_oversample=0, pc_prox_adaptive=0,
                    pc_prox_alpha=1e-3, ksp_rtol=1e-12)
    b, y = _apply(ksp, obj)
    ref = np.linalg.solve(np.eye(obj.n_params) + alpha * G, b)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    pre_only = _prox_ksp(obj, x, op=M, pc_prox_rank=8, pc_prox_oversample=0, pc_prox_adaptive=0)
    _, y1 = _apply(pre_only, obj)
    assert np.abs(y1 - ref).max() > 1e-3 * np.abs(ref).max()
    assert ksp.getIterationNumber() < obj.n_params // 2


def test_proximal_operator_shell_is_I_plus_alpha_G():
    obj = tiny_objective(layers=(4, 3), n_int=20, n_bnd=8)
    x = perturbed_theta(obj)
    G = _dense_gram(obj, x)
    M = proximal_mat(obj.gram_mat(), 0.7)
    np.testing.assert_allclose(dense(M, obj.n_params), np.eye(obj.n_params) + 0.7 * G, rtol=1e-12, atol=1e-12)
    d = obj.create_vec()
    M.getDiagonal(d)
    np.testing.assert_allclose(d.getArray(), 1 + 0.7 * np.diag(G), rtol=1e-12)


# -- the stiff quadratic ---------------------------------------------------------------------
def _quadratic_tao(alpha, **opts):
    q = StiffQuadratic()
    tao = PETSc.TAO().create(comm=PETSc.COMM_SELF)
    tao.setType("python")
    tao.setPythonType("pinntao.solvers.ImplicitGD")
    x = q.setup_tao(tao)
    losses = []
    tao.setMonitor(lambda t: losses.append(t.getSolutionStatus()[1]))
    with petsc_options(tao_isgd_alpha=alpha, tao_gatol=0, tao_grtol=0, **opts):
        tao.setFromOptions()
    tao.setSolution(x)
    return q, tao, x, losses


@pytest.mark.parametrize("variant", [{}, {"tao_isgd_type": "linearized", "tao_isgd_ksp_type": "cg",
                                          "tao_isgd_pc_type": "none"}])
def test_isgd_stable_on_stiff_quadratic_where_gd_diverges(variant):
    q = StiffQuadratic()
    alpha = 10 / q.K[1]  # 5× beyond gradient descent's stability limit 2/K₂
    theta = np.zeros(2)
    for _ in range(30):  # explicit GD with the same α: the stiff component grows ×9 per step
        theta = theta - alpha * q.K * (theta - q.target)
    assert abs(theta[1] - q.target[1]) > 1e20

    q, tao, x, losses = _quadratic_tao(alpha, tao_max_it=30, **variant)
    tao.solve()
    e = x.getArray() - q.target
    assert abs(e[1]) < 1e-12  # contracts by 1/(1 + αK₂) = 1/11 per step
    assert np.all(np.diff(losses) < 0), losses
    # a huge α: every component contracts by ≥ 1/(1 + αK₁) = 1/101 per step → θ* in a few steps
    q, tao, x, losses = _quadratic_tao(1e6, tao_max_it=12, **variant)
    tao.solve()
    assert q.error(x) < 1e-9, (x.getArray(), losses)


def test_linearized_isgd_on_quadratic_is_backward_euler():
    q, tao, x, _ = _quadratic_tao(0.37, tao_max_it=1, tao_isgd_type="linearized", tao_isgd_ksp_type="cg",
                                  tao_isgd_pc_type="none", tao_isgd_ksp_rtol=1e-14)
    tao.solve()
    ref = (0.37 * q.K * q.target) / (1 + 0.37 * q.K)  # (I + αK)θ₁ = θ₀ + αKθ*, θ₀ = 0
    np.testing.assert_allclose(x.getArray(), ref, rtol=1e-10)


# -- PINNs -----------------------------------------------------------------------------------
def _train(obj, preset, monitor_every=1, **extra):
    opts = dict(preset_options(preset)) | {k: str(v) for k, v in extra.items()}
    with petsc_options(**opts):
        trainer = Trainer(obj, monitor_every=monitor_every)
    return trainer, *trainer.solve()


@pytest.mark.parametrize("kind", ["exact", "sketch"])
def test_linearized_step_is_one_dense_damped_gauss_newton_step(kind):
    obj = tiny_objective("poisson1d", layers=(6, 6), n_int=30, n_bnd=2)
    x0 = obj.initial_vec()
    theta0 = obj.gather(x0).numpy().copy()
    alpha = 0.05
    _trainer, x, res = _train(obj, "isgd_linearized", tao_max_it=1, tao_isgd_alpha=alpha,
                             tao_isgd_pc_prox_type=kind, tao_isgd_pc_prox_rank=obj.n_params,
                             tao_isgd_retries=0, tao_gatol=0, tao_grtol=0)
    assert res.iterations == 1, res
    obj.set_linearization(x0)
    J = obj.global_jacobian(torch.as_tensor(theta0)).numpy()
    r = obj.residual(torch.as_tensor(theta0)).numpy()
    g = J.T @ r
    ref = theta0 - alpha * np.linalg.solve(np.eye(obj.n_params) + alpha * J.T @ J, g)
    np.testing.assert_allclose(obj.gather(x).numpy(), ref, rtol=0, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("preset", ["isgd", "isgd_linearized"])
def test_isgd_decreases_loss_every_step_and_trains(preset):
    obj = tiny_objective("poisson1d", layers=(16, 16), n_int=40, n_bnd=2)
    _, _, res = _train(obj, preset, tao_max_it=30, tao_isgd_alpha=1.0)
    losses = [h[2] for h in res.history]
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 1e-3 * losses[0], losses
    assert res.rel_l2 < 0.05, res


def test_inner_solver_is_any_tao_type():
    """The proximal subproblem through Newton-Krylov (its Hessian is the shell I + αG) and
    through pinntao's Adam type: both decrease the loss every outer step."""
    for inner in ({"isgd_inner_tao_type": "nls", "isgd_inner_tao_max_it": 5},
                  {"isgd_inner_tao_type": "python", "isgd_inner_tao_python_type": "pinntao.solvers.Adam",
                   "isgd_inner_tao_adam_lr": 1e-2, "isgd_inner_tao_max_it": 10}):
        obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
        trainer, _, res = _train(obj, "isgd", tao_max_it=5, **inner)
        losses = [h[2] for h in res.history]
        assert res.iterations == 5 and np.all(np.diff(losses) < 0), (inner, losses)
        assert trainer.tao.getPythonContext().inner.getType() == inner["isgd_inner_tao_type"]


def test_diverging_inner_solve_keeps_theta():
    """One inner Adam step with an absurd learning rate (±1e3 per weight) never decreases the proximal objective: every
    retry is rejected, the solve ends DIVERGED_* with a message, θ is θ₀."""
    obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    x0 = obj.initial_vec()
    theta0 = obj.gather(x0).clone()
    opts = dict(preset_options("isgd")) | {
        "isgd_inner_tao_type": "python", "isgd_inner_tao_python_type": "pinntao.solvers.Adam",
        "isgd_inner_tao_adam_lr": 1e3, "isgd_inner_tao_max_it": 1, "tao_isgd_retries": 1}
    with petsc_options(**opts):
        trainer = Trainer(obj)
    x, res = trainer.solve(x0)
    assert res.converged_reason.startswith("DIVERGED"), res
    assert res.iterations == 0 and torch.equal(obj.gather(x), theta0)
    assert "rejected" in res.message and "θ kept" in res.message, res.message


def test_nls_with_proximal_pc_trains():
    obj = tiny_objective("poisson1d", layers=(16, 16), n_int=40, n_bnd=2)
    with petsc_options(tao_type="nls", tao_max_it=30, tao_nls_ksp_type="cg", tao_nls_pc_type="python",
                       tao_nls_pc_python_type="pinntao.pc.ProximalPC", tao_nls_pc_prox_alpha=10.0):
        trainer = Trainer(obj)
        _x, res = trainer.solve()
    assert trainer.tao.getKSP().getPC().getPythonContext().stats["factorizations"] > 0
    assert res.rel_l2 < 1e-2, res


# -- schedules -------------------------------------------------------------------------------
def test_schedule_switches_at_K_and_carries_theta():
    obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    _, _, alone = _train(obj, "adam", tao_max_it=7)
    obj2 = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    trainer, _, res = _train(obj2, "adam_lbfgs", tao_max_it=15, tao_schedule_its="7", tao_schedule_plateau_window=0)
    stats = trainer.tao.getPythonContext().stats["stages"]
    assert [s["name"] for s in stats] == ["adam", "lbfgs"]
    assert stats[0]["iterations"] == 7 and stats[0]["switch"] == "7 iterations"
    assert stats[1]["start"] == 7 and res.iterations == 15
    hist = {int(h[0]): h[2] for h in res.history}
    assert sorted(hist) == list(range(16))  # one continuous iteration count
    np.testing.assert_allclose([hist[i] for i in range(8)], [h[2] for h in alone.history], rtol=1e-12)
    assert hist[15] < hist[7]  # L-BFGS went on from Adam's θ


def test_schedule_switches_on_plateau():
    obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    trainer, _, res = _train(obj, "adam_lbfgs", tao_max_it=40, tao_schedule_plateau_window=3,
                             tao_schedule_plateau_rtol=0.5)  # Adam at lr 1e-3 is a "plateau" at once
    stats = trainer.tao.getPythonContext().stats["stages"]
    assert "plateau" in stats[0]["switch"] and stats[0]["iterations"] == 3
    assert "adam 3 its" in res.message and "lbfgs" in res.message


def test_schedule_presets_expand_stages_under_prefixes():
    for name in ("isgd_adam", "isgd_lbfgs", "adam_lbfgs"):
        opts = dict(PRESETS[name][1])
        assert opts["tao_python_type"] == "pinntao.solvers.Schedule"
        for stage in opts["tao_schedule_stages"].split(","):
            assert any(k.startswith(stage + "_tao_type") for k in opts), (name, stage)
    assert dict(PRESETS["isgd_lbfgs"][1])["isgd_tao_isgd_alpha"] == "0.5"
    assert dict(PRESETS["isgd_lbfgs"][1])["lbfgs_tao_type"] == "lmvm"


def test_isgd_lbfgs_trains_poisson1d():
    obj = tiny_objective("poisson1d", layers=(16, 16), n_int=40, n_bnd=2)
    trainer, _, res = _train(obj, "isgd_lbfgs", monitor_every=5, tao_max_it=150, tao_schedule_its="10")
    stats = trainer.tao.getPythonContext().stats["stages"]
    assert stats[0]["iterations"] == 10 and stats[1]["iterations"] == 140
    assert res.converged_reason == "DIVERGED_MAXITS" and "lbfgs 140 its (DIVERGED_MAXITS)" in res.message
    assert stats[0]["stats"]["inner_its"] > 0
    hist = {int(h[0]): h[2] for h in res.history}
    assert hist[150] < 0.1 * hist[10]  # L-BFGS went on from the implicit stage's θ
    assert res.rel_l2 < 5e-3, res


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-pinn_optimizer", "isgd", "-tao_isgd_alpha", "0"], "-tao_isgd_alpha: 0.0 is not allowed; must be > 0"),
        (["-pinn_optimizer", "isgd", "-tao_isgd_alpha", "-1"], "must be > 0"),
        (["-pinn_optimizer", "isgd", "-tao_isgd_type", "explicit"], "allowed: proximal, linearized"),
        (["-pinn_optimizer", "isgd", "-isgd_inner_tao_type", "nosuch"], "-isgd_inner_tao_type: unknown TAO type"),
        (["-pinn_optimizer", "isgd_adam", "-tao_schedule_its", "0"], "positive integers"),
        (["-pinn_optimizer", "isgd_adam", "-tao_schedule_stages", "isgd,nosuch"], "unknown stage 'nosuch'; allowed"),
        (["-pinn_optimizer", "isgd_adam", "-tao_schedule_its", "5,5"], "2 stages need 1 iteration counts"),
        (["-pinn_optimizer", "isgd_adam", "-adam_tao_type", "nosuch"], "-adam_tao_type: unknown TAO type"),
        (["-tao_type", "python", "-tao_python_type", "pinntao.solvers.Schedule"], "give one or more stages"),
        (["-pinn_problem", "poisson1d", "-tao_type", "nls", "-tao_nls_pc_type", "python",
          "-tao_nls_pc_python_type", "pinntao.pc.ProximalPC", "-tao_nls_pc_prox_type", "woodbury"],
         "allowed: sketch, exact, cg"),
    ],
)
def test_bad_isgd_and_schedule_input_is_one_clear_error(args, expect):
    proc = run_pinntao("-pinn_problem", "poisson1d", "-tao_max_it", "3", *args)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "pinntao: error:" in proc.stderr and expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "iterations=" not in proc.stdout


def test_optimizer_view_shows_schedule_expansion():
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "isgd_lbfgs", "-pinn_optimizer_view",
                       "-tao_max_it", "2", "-tao_schedule_its", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for flag in ("-tao_schedule_stages isgd,lbfgs", "-isgd_isgd_inner_tao_type lmvm", "-lbfgs_tao_type lmvm"):
        assert flag in proc.stdout, flag


def test_isgd_rank_independent():
    def run(n):
        opts = [a for k, v in preset_options("isgd") if k != "tao_type" for a in (f"-{k}", v)]
        proc = run_mpi(n, [str(ROOT / "tests" / "mpi_check.py"), "poisson1d", "-check_tao_type", "python", *opts,
                           "-tao_max_it", "6"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])

    one, two = run(1), run(2)
    assert len(one["history"]) == 7
    np.testing.assert_allclose(two["history"][:4], one["history"][:4], rtol=1e-8)
    np.testing.assert_allclose(two["history"], one["history"], rtol=1e-4)
    assert one["history"][-1] < one["history"][0]


@pytest.mark.parametrize("method, extra", [("isgd", ()), ("isgd_linearized", ()),
                                           ("isgd_adam", ("-tao_schedule_its", "6")),
                                           ("isgd_lbfgs", ("-tao_schedule_its", "3"))])
def test_resumed_isgd_and_schedule_follow_the_uninterrupted_run(tmp_path, method, extra):
    """Interrupted at iteration 8 and resumed with -pinn_restart: the growing α, the sketch state and,
    for a schedule, the running stage and its iteration count carry over (isgd_adam resumes inside
    Adam, isgd_lbfgs inside L-BFGS, whose history TAO cannot restore: same stage, close loss). The
    proximal step's inner L-BFGS keeps its J0 scaling from one subproblem to the next, which a
    restart cannot restore either: isgd resumes the same α sequence to a close, not equal, loss."""
    from test_restart import SMALL

    full, res, ck = tmp_path / "full.json", tmp_path / "res.json", tmp_path / "ck.npy"
    for args in ((*SMALL, "-pinn_optimizer", method, *extra, "-tao_max_it", "12", "-pinn_report", str(full),
                  "-pinn_monitor_every", "1"),
                 (*SMALL, "-pinn_optimizer", method, *extra, "-tao_max_it", "8", "-pinn_checkpoint", str(ck),
                  "-pinn_checkpoint_every", "4"),
                 ("-pinn_restart", str(ck), "-tao_max_it", "12", "-pinn_report", str(res))):
        proc = run_pinntao(*args)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    full, res = json.loads(full.read_text()), json.loads(res.read_text())
    assert res["iterations"] == full["iterations"] == 12
    if method == "isgd_lbfgs":
        assert [s["name"] for s in res["solver_stats"]["stages"]] == ["lbfgs"]
        assert res["loss"] < full["history"][8][2]
        return
    assert res["loss"] == pytest.approx(full["loss"], rel=0.2 if method == "isgd" else 1e-10, abs=0)
    if method.startswith("isgd_") and method != "isgd_linearized":
        assert [s["name"] for s in res["solver_stats"]["stages"]] == ["adam"]
    else:
        assert res["solver_stats"]["alpha"] == full["solver_stats"]["alpha"][8:]


def test_isgd_and_schedule_honour_an_options_prefix():
    """Embedded under a prefix, every nested object reads its options there: the linearized step's
    KSP/PC (a_tao_isgd_*), the proximal step's inner Tao (a_isgd_inner_*), a schedule's stages."""
    obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    with petsc_options(a_tao_type="python", a_tao_python_type="pinntao.solvers.ImplicitGD",
                       a_tao_isgd_type="linearized", a_tao_isgd_pc_prox_type="exact", a_tao_max_it=3):
        trainer = Trainer(obj, prefix="a_")
        _, res = trainer.solve()
    pc = trainer.tao.getKSP().getPC()
    assert pc.getOptionsPrefix() == "a_tao_isgd_" and pc.getPythonContext().opts["type"] == "exact"
    assert res.iterations == 3
    obj = tiny_objective("poisson1d", layers=(8,), n_int=20, n_bnd=2)
    with petsc_options(b_tao_type="python", b_tao_python_type="pinntao.solvers.Schedule",
                       b_tao_schedule_stages="isgd,lbfgs", b_tao_schedule_its="2", b_isgd_isgd_inner_tao_type="nls",
                       b_tao_max_it=4):
        trainer = Trainer(obj, prefix="b_")
        _, res = trainer.solve()
    ctx = trainer.tao.getPythonContext()
    assert [st.getOptionsPrefix() for st in ctx.stages] == ["b_isgd_", "b_lbfgs_"]
    assert ctx.stages[0].getPythonContext().inner.getType() == "nls" and ctx.stages[1].getType() == "lmvm"
    assert res.iterations == 4
