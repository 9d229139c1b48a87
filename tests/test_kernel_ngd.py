"""Scale-aware natural gradient: relative cut and damping against dense computations, the kernel
(Woodbury) step against the dense damped step on 1 and 2 ranks, SPRING with β = 0 against damped
ENGD, per-phase times, stopping defaults."""

import json

import numpy as np
import pytest
import torch
from conftest import ROOT, petsc_options, run_mpi
from helpers import gram_pc, perturbed_theta, tiny_objective

from pinntao.models import build_mlp
from pinntao.objective import PinnObjective
from pinntao.presets import preset_options
from pinntao.problems import get_problem
from pinntao.sketch import gaussian, randomized_eig
from pinntao.train import Trainer


def _dense_J(obj, x):
    theta = obj.gather(x)
    return theta, torch.func.jacrev(obj.residual)(theta), obj.residual(theta)


@pytest.mark.parametrize("scale", [1.0, 1e8])
def test_relative_cut_is_scale_free_and_matches_dense(scale):
    obj = tiny_objective(layers=(5, 4))
    _, J, _ = _dense_J(obj, perturbed_theta(obj))
    G = scale * (J.T @ J)
    lam = torch.linalg.eigvalsh(G).flip(0)
    M = gaussian(G.shape[0], G.shape[0], 0, G)
    lr = randomized_eig(lambda m: G @ m, M, passes=2, tol=1e-300, rtol=1e-6)
    want = int((lam > 1e-6 * lam[0]).sum())
    assert lr.rank == want  # the same kept rank whatever the loss scale
    np.testing.assert_allclose(lr.lam.numpy(), lam[:want].numpy(), rtol=1e-8)
    absolute = randomized_eig(lambda m: G @ m, M, passes=2, tol=1e-6)
    assert (absolute.rank == want) == (scale == 1.0 and abs(lam[0].item() - 1) < 0.5)  # an absolute cut is not


@pytest.mark.parametrize(
    "pc_type,opts",
    [
        ("pinntao.pc.ExactPseudoInverse", {"pc_engd_form": "gram", "pc_engd_rtol": 1e-14}),
        ("pinntao.pc.ExactPseudoInverse", {"pc_engd_form": "kernel", "pc_engd_rtol": 1e-14}),
        ("pinntao.pc.SketchedPseudoInverse", {"pc_sketch_rank": 400, "pc_sketch_tol": 1e-300, "pc_sketch_rtol": 1e-14}),
    ],
)
def test_damped_pc_is_the_dense_damped_solve(pc_type, opts):
    """d = (G + μI)⁻¹ Jᵀr: the PCs follow the solver's damping without refactoring."""
    obj = tiny_objective(layers=(6, 6), n_int=20, n_bnd=8)
    x = perturbed_theta(obj)
    _, J, r = _dense_J(obj, x)
    for mu in (1e-2, 1e-4):
        ksp, pc = gram_pc(obj, x, pc_type, mu, **opts)
        b, y = obj.create_vec(), obj.create_vec()
        rhs = J.T @ r
        b.setArray(rhs.numpy())
        ksp.solve(b, y)
        ref = torch.linalg.solve(J.T @ J + mu * torch.eye(J.shape[1], dtype=J.dtype), rhs)
        np.testing.assert_allclose(y.getArray(), ref.numpy(), rtol=1e-7, atol=1e-9 * ref.abs().max().item())
        assert pc.getPythonContext().mu == mu


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("solve", ["cholesky", "nystrom"])
def test_kernel_step_equals_dense_damped_step(n, solve):
    proc = run_mpi(n, [str(ROOT / "tests" / "kernel_check.py"), solve])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])
    assert out["size"] == n and out["message"] == ""
    assert out["rel_err"] < 1e-9, out


def _poisson1d():
    prob = get_problem("poisson1d")
    return PinnObjective(prob, build_mlp(1, (12, 12), "tanh", torch.float64, "cpu"), seed=0,
                         counts={"interior": 60, "boundary": 2})


def _train(preset, **extra):
    opts = dict(preset_options(preset)) | {k: str(v) for k, v in extra.items()}
    with petsc_options(**opts):
        trainer = Trainer(_poisson1d(), monitor_every=1)
    _, res = trainer.solve()
    return trainer, res


def test_spring_without_momentum_is_damped_engd():
    common = {"tao_max_it": 4, "tao_ng_damping": "fixed", "tao_ng_damping_init": 1e-3,
              "tao_ng_linesearch": "backtrack"}
    _, kern = _train("spring", tao_spring_momentum=0, **common)
    _, engd = _train("engd", pc_engd_rtol=1e-15, tao_ng_pc_engd_rtol=1e-15, **common)
    hk, he = np.array([h[2] for h in kern.history]), np.array([h[2] for h in engd.history])
    assert len(hk) == 5
    np.testing.assert_allclose(hk, he, rtol=1e-7)
    _, mom = _train("spring", tao_spring_momentum=0.5, **common)
    hm = np.array([h[2] for h in mom.history])
    np.testing.assert_allclose(hm[:2], hk[:2], rtol=1e-7)  # the first step has no momentum yet
    assert abs(hm[3] - hk[3]) > 1e-6 * hk[3]


def test_spring_primal_form_is_the_kernel_step_when_n_exceeds_p():
    """With N > P (62 rows, P = 13) ``auto`` takes the primal step from the thin SVD of J: the same steps as the
    N × N kernel by Woodbury, momentum included, and -tao_view says which form ran."""
    def run(form):
        prob = get_problem("poisson1d")
        obj = PinnObjective(prob, build_mlp(1, (4,), "tanh", torch.float64, "cpu"), seed=0,
                            counts={"interior": 60, "boundary": 2})
        opts = dict(preset_options("spring")) | {"tao_max_it": "4", "tao_ng_damping": "fixed",
                                                  "tao_ng_damping_init": "1e-3", "tao_spring_momentum": "0.5",
                                                  "tao_spring_form": form}
        with petsc_options(**opts):
            trainer = Trainer(obj, monitor_every=1)
        _, res = trainer.solve()
        return np.array([h[2] for h in res.history]), trainer.tao.getPythonContext()._primal

    (hk, pk), (hp, pp), (ha, pa) = run("kernel"), run("primal"), run("auto")
    assert (pk, pp, pa) == (False, True, True)
    assert hk[-1] < 0.75 * hk[0]  # it trains
    np.testing.assert_allclose(hp, hk, rtol=1e-8)
    np.testing.assert_array_equal(ha, hp)


@pytest.mark.parametrize("preset", ["sngd", "engd_kernel_lm", "spring", "spring_nystrom"])
def test_lm_presets_train_with_cheap_line_search(preset):
    trainer, res = _train(preset, tao_max_it=40)
    assert res.rel_l2 < 1e-3, (preset, res)
    stats = trainer.tao.getPythonContext().stats
    assert stats["ls_evals"] / res.iterations <= 2.0, stats["ls_evals"]


def test_engd_kernel_damping_is_a_safeguard_not_a_brake():
    """engd_kernel keeps μ at its 1e-10 floor while the grid line search finds decreases (the
    published Woodbury ENGD), and each step is the dense (JᵀJ + 1e-10 I)⁻¹Jᵀr step."""
    trainer, res = _train("engd_kernel", tao_max_it=20)
    stats = trainer.tao.getPythonContext().stats
    assert res.iterations == 20 and stats["retries"] == 0
    assert stats["mu"] == [1e-10] * 20, stats["mu"]
    _, lm = _train("engd_kernel_lm", tao_max_it=20)
    assert res.history[-1][2] < lm.history[-1][2]  # the LM brake (μ = c·L, c from 1) is slower per step


def test_safeguard_damping_rises_after_a_rejection_and_falls_back():
    """A line search that rejects most steps (one trial, c1 = 0.9): 'fixed' μ = 1e-10 stops,
    'safeguard' retries with μ = floor + c·L. The rule itself: c = 0 while steps are accepted,
    damping_init after a rejection (then ×2, ×4), ÷3 per well-predicted step, 0 again below
    damping_min."""
    from pinntao.solvers import NaturalGradient

    common = {"tao_max_it": 10, "tao_ng_linesearch": "backtrack", "tao_ng_ls_steps": 1, "tao_ng_ls_c1": 0.9}
    _, fixed = _train("engd_kernel", tao_ng_damping="fixed", tao_ng_damping_init=1e-10, **common)
    assert fixed.converged_reason == "DIVERGED_LS_FAILURE" and fixed.iterations == 0, fixed
    trainer, res = _train("engd_kernel", **common)
    stats = trainer.tao.getPythonContext().stats
    assert res.iterations > 0 and stats["retries"] > 0 and max(stats["mu"]) > 1e-10, (res, stats["mu"])

    ng = NaturalGradient()
    ng.opts = {"damping": "safeguard", "damping_init": 1e-2, "damping_min": 1e-6, "damping_max": 1e10,
               "damping_decay": 0.0}
    ng.c, ng.nu = 0.0, 2.0
    ng._update_damping(1.0)
    assert ng.c == 0.0
    ng._update_damping(-1.0)
    assert ng.c == 1e-2
    ng._update_damping(-1.0)
    assert ng.c == 2e-2
    cs = []
    for _ in range(12):
        ng._update_damping(1.0)
        cs.append(ng.c)
    assert cs[0] == pytest.approx(2e-2 / 3) and cs[-1] == 0.0 and cs == sorted(cs, reverse=True)
    ng.opts["damping_decay"] = 0.1  # c ← 0.1 c per accepted step, whatever the gain ratio
    ng._update_damping(-1.0)
    cs = []
    for rho in (0.5, 1.0, 0.9, 0.3, 0.6):
        ng._update_damping(rho)
        cs.append(ng.c)
    assert cs[:4] == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6]) and cs[4] == 0.0, cs


def test_safeguard_counts_a_tiny_accepted_step_as_a_rejection():
    """heat1d from a cold start: undamped steps are accepted at η < 2.5e-4 and the safeguard never
    damps; with damping_eta_min such a step is retried with μ = c·L on the same factor, and c
    falls back to 0 by damping_decay."""

    def run(**extra):
        opts = dict(preset_options("sngd_sg")) | {"tao_max_it": "60", **extra}
        with petsc_options(**opts):
            obj = PinnObjective(get_problem("heat1d"), build_mlp(2, (65,), "tanh", torch.float64, "cpu"),
                                counts={"interior": 300, "boundary": 100, "initial": 100}, seed=0)
            trainer = Trainer(obj)
        _, res = trainer.solve()
        return res, trainer.tao.getPythonContext().stats

    plain, st0 = run(tao_ng_damping_eta_min="0", tao_ng_damping_decay="0")
    floor, st1 = run()
    assert st0["retries"] == 0 and max(st0["mu"]) == 0.0 and min(st0["eta"]) < 2.5e-4
    assert st1["retries"] > 0 and max(st1["mu"]) > 0 and min(st1["mu"]) == 0.0, st1["mu"]
    assert floor.loss < 0.1 * plain.loss, (floor, plain)


def test_phase_times_sum_to_iteration_time():
    trainer, res = _train("sngd", tao_max_it=15)
    t = trainer.tao.getPythonContext().stats["time_s"]
    parts = sum(v for k, v in t.items() if k != "iteration")
    assert res.iterations == 15
    assert abs(parts - t["iteration"]) <= 0.1 * t["iteration"], t


def test_stall_stop_and_explicit_gatol_wins():
    _, res = _train("sngd", tao_max_it=400, tao_ng_stall_its=3, tao_ng_stall_rtol=0.99)
    assert res.converged_reason == "CONVERGED_USER" and "stalled" in res.message, res
    assert res.iterations < 400
    _, res = _train("engd", tao_max_it=400, tao_gatol=1e-2)
    assert res.converged_reason == "CONVERGED_GATOL", res


def test_kernel_memory_refused_up_front():
    """N = 200,000 points: the N × N kernel (≈ 600 GiB) is refused before training, with the estimate."""
    from conftest import run_pinntao

    proc = run_pinntao("-pinn_problem", "poisson2d", "-pinn_optimizer", "engd_kernel", "-pinn_n_interior", "200000",
                       "-tao_max_it", "1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "kernel" in proc.stderr and "GiB per rank" in proc.stderr and "nystrom" in proc.stderr


def test_tao_view_and_log_events():
    """-tao_view prints the KSP once, the line-search evaluations and the phase times; -log_view
    names pinntao's phases, with the factor built in PCSetUp (one per iteration), not in PCApply."""
    from conftest import run_pinntao

    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "sngd", "-tao_max_it", "5", "-tao_view",
                       "-log_view", "-pinn_threads", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.count("KSP Object:") == 1
    assert "line search: " in out and "loss evaluations" in out and "time per iteration [ms]: jacobian" in out
    events = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith(("Pinn", "PCSetUp", "PCApply"))}
    assert {"PinnResidual", "PinnJacobian", "PinnFactor", "PinnLineSearch", "PCSetUp"} <= set(events)
    assert int(events["PinnFactor"][1]) == 5 and int(events["PCSetUp"][1]) >= 5
    assert float(events["PCSetUp"][3]) >= float(events["PinnFactor"][3])  # the factor is built inside PCSetUp


def test_engd_kernel_form_is_rank_independent():
    """ENGD with N < P (kernel form) on 1 and 2 ranks: the same loss history to 1e-6 over 12
    iterations and within 2× after 20. Through b = Jᵀr the rank-dependent rounding of the
    gradient was amplified by 1/σ² (6.5e-6 apart at iteration 6; 1.3e-8 vs 3.9e-4 after 20 its
    from the command line); the PC now applies U(Λ + μ)⁻¹ΣWᵀr from r itself."""
    hist = {}
    for n in (1, 2):
        proc = run_mpi(n, [str(ROOT / "tests" / "engd_ranks_check.py"), "engd", "20"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])
        assert out["size"] == n and out["n"] < out["p"]
        hist[n] = np.array(out["history"])
    np.testing.assert_allclose(hist[2][:13], hist[1][:13], rtol=1e-6)
    assert 0.5 < hist[2][-1] / hist[1][-1] < 2.0, (hist[1][-1], hist[2][-1])


def test_engd_kernel_primal_form_is_rank_independent(tmp_path):
    """engd_kernel with N > P (1,020 rows, P = 337: the primal form) and μ = 1e-10 on 1 and 2
    ranks: the same loss after 5 iterations to 1e-7. Cholesky of JᵀJ + μI lost λ_max/μ ≈ 1e14 to
    rounding, and the rank-dependent rounding of the gradient set the losses 1.5e-3 apart
    (6.0336 vs 6.0247); the thin SVD of J loses σ_max/σ only (1.8e-9 apart)."""
    loss = {}
    for n in (1, 2):
        rep = tmp_path / f"r{n}.json"
        proc = run_mpi(n, ["-m", "pinntao", "-pinn_problem", "poisson2d", "-pinn_layers", "16,16",
                           "-pinn_optimizer", "engd_kernel", "-tao_max_it", "5", "-pinn_threads", "1",
                           "-tao_view", "-pinn_report", str(rep)])
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "in primal form" in proc.stdout
        data = json.loads(rep.read_text())
        assert data["iterations"] == 5 and data["loss"] < 0.2 * 48.6  # it trains (loss 48.6 at θ₀)
        loss[n] = data["loss"]
    assert loss[2] == pytest.approx(loss[1], rel=1e-7)
