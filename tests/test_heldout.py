"""The report's heldout_loss: the problem's loss at the final θ on fresh uniform points (the training
counts, a seed of their own), the same on 1 and 2 ranks."""


import numpy as np
import torch
from helpers import reports_on_one_and_two_ranks

from pinntao.models import build_model
from pinntao.problems import get_problem
from pinntao.residual import Residual


def _args(tmp_path, name):
    return ["-pinn_problem", "heat1d", "-pinn_layers", "5", "-pinn_n_interior", "30", "-pinn_n_boundary", "6",
            "-pinn_n_initial", "6", "-pinn_seed", "3", "-tao_max_it", "5", "-pinn_report", str(tmp_path / name),
            "-pinn_save", str(tmp_path / (name + ".npy"))]


def test_heldout_loss_is_the_loss_on_fresh_points(tmp_path):
    r1, r2 = reports_on_one_and_two_ranks(tmp_path, lambda name: _args(tmp_path, name))
    assert abs(r1["heldout_loss"] - r2["heldout_loss"]) <= 1e-12 * r1["heldout_loss"]
    # recompute: the same problem, the saved θ, points drawn from the held-out seed
    prob = get_problem("heat1d")
    model = build_model("mlp", 2, (5,), "tanh", torch.float64, "cpu")
    theta = torch.as_tensor(np.load(tmp_path / "one.json.npy"))
    pts = prob.sample({"interior": 30, "boundary": 6, "initial": 6}, (3 + 0x4E1D0FF) % 2**63, "uniform")
    train = prob.sample({"interior": 30, "boundary": 6, "initial": 6}, 3, "uniform")
    assert not np.allclose(pts["interior"], train["interior"])  # fresh points, not the training set
    counts = {k: v.shape[0] for k, v in pts.items()}
    expected = float(Residual(prob, model, pts, counts).loss(theta))
    assert abs(r1["heldout_loss"] - expected) <= 1e-12 * expected
    assert r1["heldout_loss"] != r1["loss"]
