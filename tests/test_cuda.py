"""The CUDA path (-pinn_device cuda): residual products, the taped Jacobian and short training
runs on the GPU against the same computation on the CPU. Skipped without a CUDA device;
``scripts/device_check.sh`` runs them on a machine that has one."""

import json

import numpy as np
import pytest
import torch
from conftest import run_pinntao

from pinntao.models import build_model
from pinntao.problems import get_problem
from pinntao.residual import Residual

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available to torch")]


def _pair(problem: str, arch: str) -> tuple[Residual, Residual, torch.Tensor]:
    prob = get_problem(problem)
    counts = {b.name: 40 for b in prob.blocks}
    pts = prob.sample(counts, 0)
    out = []
    for dev in ("cpu", "cuda"):
        m = build_model(arch, prob.dim, (16, 16), "tanh", torch.float64, dev, out_dim=prob.fields)
        out.append(Residual(prob, m, pts, counts))
    theta = out[0].model.initial_theta(0)
    return out[0], out[1], theta


@pytest.mark.parametrize(("problem", "arch"), [("burgers1d", "mlp"), ("cavity2d", "modified_mlp"),
                                               ("anisotropic_poisson2d", "mlp")])
def test_products_on_cuda_match_cpu(problem, arch):
    cpu, gpu, theta = _pair(problem, arch)
    tg = theta.cuda()
    v = torch.randn(theta.numel(), 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def close(a: torch.Tensor, b: torch.Tensor) -> None:
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-9, atol=1e-11 * float(a.abs().max()))

    for a, b in zip(cpu.loss_grad(theta), gpu.loss_grad(tg), strict=True):
        close(a, b)
    J = gpu.jacobian(tg)
    assert J.is_cuda
    close(cpu.jacobian(theta), J)
    close(cpu.gram(theta, v), gpu.gram(tg, v.cuda()))
    close(cpu.hvp(theta, v), gpu.hvp(tg, v.cuda()))


@pytest.mark.parametrize("preset", ["sngd", "engd_kernel", "adam", "lbfgs"])
def test_training_on_cuda_follows_cpu(tmp_path, preset):
    """Five iterations on the GPU and on the CPU: the same losses up to rounding."""
    losses = {}
    for dev in ("cpu", "cuda"):
        rep = tmp_path / f"{dev}.json"
        proc = run_pinntao("-pinn_problem", "poisson2d", "-pinn_layers", "16,16", "-pinn_optimizer", preset,
                           "-tao_max_it", "5", "-pinn_device", dev, "-pinn_report", str(rep))
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(rep.read_text())
        assert data["iterations"] == 5
        losses[dev] = data["loss"]
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-6)


def test_countsketch_product_on_cuda_matches_cpu():
    """JᵀΩ with the CountSketch test matrix: a dense product on the GPU (deterministic), one
    index_add on the CPU; the same numbers to rounding."""
    from pinntao.sketch import countsketch_rows

    J = torch.randn(3000, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    cpu = countsketch_rows(0, 3000, 17, 4, J).transpose_times(J)
    Jg = J.cuda()
    gpu = countsketch_rows(0, 3000, 17, 4, Jg).transpose_times(Jg)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-12, atol=1e-12 * float(cpu.abs().max()))
