"""Recommended set-ups: applied where the user gave none, user options and -tao_type win,
-pinn_recommended 0 turns them off, every entry is a known option with an allowed value."""

import pytest
from conftest import run_pinntao

from pinntao.errors import PinnInputError
from pinntao.problems import (
    PROBLEMS,
    RECOMMENDED,
    apply_recommended,
    get_problem,
    recommended_help,
    recommended_text,
    recommended_values,
)


class _DB:
    """The three calls apply_recommended makes on a PETSc options database."""

    def __init__(self, **kv):
        self.kv = dict(kv)

    def hasName(self, key):
        return key in self.kv

    def getString(self, key, default=None):
        return self.kv.get(key, default)

    def setValue(self, key, value):
        self.kv[key] = value


def test_applied_where_the_user_gave_none():
    db = _DB(pinn_problem="klein_gordon1d", pinn_n_boundary="50")
    applied = dict(apply_recommended(db))
    assert "pinn_n_boundary" not in applied and db.kv["pinn_n_boundary"] == "50"  # the user's value wins
    assert applied == {k: v for k, v in RECOMMENDED["klein_gordon1d"].items() if k != "pinn_n_boundary"}
    assert all(db.kv[k] == v for k, v in applied.items())


def test_a_chosen_architecture_keeps_the_input_map_out():
    """The input map is refused with the Fourier architectures: a user's -pinn_arch must not meet a
    recommended -pinn_input_scale box and end in an error it never asked for."""
    db = _DB(pinn_problem="klein_gordon1d", pinn_arch="fourier_mlp")
    applied = dict(apply_recommended(db))
    assert RECOMMENDED["klein_gordon1d"]["pinn_input_scale"] == "box"
    assert "pinn_input_scale" not in applied and "pinn_input_scale" not in db.kv
    assert applied["pinn_weights"] == "annealing"
    out = run_pinntao("-pinn_problem", "klein_gordon1d", "-pinn_arch", "fourier_mlp", "-pinn_layers", "4",
                      "-pinn_n_interior", "20", "-pinn_n_boundary", "8", "-pinn_n_initial", "8", "-tao_max_it", "1",
                      "-pinn_optimizer_view", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "recommended set-up applied: -pinn_weights annealing" in out.stdout
    assert "input_scale" not in out.stdout and "batch_size" not in out.stdout  # 44 points: no batch of 256


def test_a_recommended_batch_steps_aside_for_fewer_points():
    """KG's batch of 256 fits its own counts (2000 + 2000 + 2 × 1000) and the problem's defaults with
    a user's boundary count, not a user's 20 + 8 + 2 × 8 points (an error about -pinn_batch_size,
    which the user never gave)."""
    assert RECOMMENDED["klein_gordon1d"]["pinn_batch_size"] == "256"
    assert dict(apply_recommended(_DB(pinn_problem="klein_gordon1d")))["pinn_batch_size"] == "256"
    db = _DB(pinn_problem="klein_gordon1d", pinn_n_interior="20", pinn_n_boundary="8", pinn_n_initial="8")
    assert "pinn_batch_size" not in dict(apply_recommended(db)) and "pinn_batch_size" not in db.kv
    db = _DB(pinn_problem="klein_gordon1d", pinn_n_interior="200", pinn_n_boundary="40")  # 200 + 40 + 2 × 1000
    assert dict(apply_recommended(db))["pinn_batch_size"] == "256"
    db = _DB(pinn_problem="klein_gordon1d", pinn_n_interior="100", pinn_n_boundary="40", pinn_n_initial="50")
    assert "pinn_batch_size" not in dict(apply_recommended(db))  # 240 points


def test_a_chosen_solver_keeps_the_recommended_optimizer_out():
    db = _DB(pinn_problem="burgers1d", tao_type="lmvm")
    applied = dict(apply_recommended(db))
    assert "pinn_optimizer" not in applied and "pinn_optimizer" not in db.kv
    assert applied["pinn_sampling"] == "halton"


@pytest.mark.parametrize("off", ["0", "false", "no"])
def test_off_switch(off):
    db = _DB(pinn_problem="burgers1d", pinn_recommended=off)
    assert apply_recommended(db) == [] and set(db.kv) == {"pinn_problem", "pinn_recommended"}


def test_default_problem_has_none():
    assert apply_recommended(_DB()) == []


def test_entries_are_valid_options_and_on_the_problem():
    from pinntao.cli import cli_options
    from pinntao.presets import PRESETS

    opts = cli_options().options
    for name, rec in RECOMMENDED.items():
        assert name in PROBLEMS and get_problem(name).recommended == rec
        for key, value in recommended_values(name).items():
            assert key.startswith("pinn_") and key[5:] in opts, key
            if key == "pinn_optimizer":
                assert value in PRESETS
            else:
                opts[key[5:]].convert(value, key)  # raises for a value the option does not allow
        assert f"{name}: {recommended_text(name)}" in recommended_help()


def test_an_entry_built_from_the_parameters_follows_them():
    """Helmholtz's Fourier scales are its wave numbers a1, a2: a changed -pinn_param_a2 (even a
    non-integer one) changes the features, and the help says where the value comes from."""
    assert recommended_values("helmholtz2d")["pinn_ff_scales"] == "1,4"
    db = _DB(pinn_problem="helmholtz2d")
    applied = dict(apply_recommended(db, params=lambda name: {"a2": 6.5} if name == "helmholtz2d" else {}))
    assert applied["pinn_ff_scales"] == "1,6.5" and db.kv["pinn_ff_scales"] == "1,6.5"
    from pinntao.models import EMBEDDING_OPTIONS

    scales = next(o for o in EMBEDDING_OPTIONS if o.name == "ff_scales")
    assert scales.convert(applied["pinn_ff_scales"], "-pinn_ff_scales") == (1.0, 6.5)
    assert scales.convert("-1,4", "-pinn_ff_scales") == (-1.0, 4.0)  # a negative wave number: the same features
    for bad in ("0,4", "1,nan", "a"):
        with pytest.raises(PinnInputError, match="-pinn_ff_scales"):
            scales.convert(bad, "-pinn_ff_scales")
    assert "-pinn_ff_scales 1,4 (= a1,a2)" in recommended_text("helmholtz2d")


def test_cli_view_lists_the_set_up_and_the_user_wins(tmp_path):
    args = ["-pinn_problem", "burgers1d", "-pinn_layers", "4", "-pinn_n_interior", "20", "-pinn_n_boundary", "4",
            "-pinn_n_initial", "4", "-tao_max_it", "1", "-pinn_optimizer_view"]
    out = run_pinntao(*args, timeout=300)
    assert out.returncode == 0, out.stderr
    points = "-pinn_sampling halton -pinn_resample rad -pinn_resample_every 100"
    assert f"recommended set-up applied: {points} -pinn_optimizer sngd_lm" in out.stdout
    mine = run_pinntao(*args, "-pinn_optimizer", "adam", timeout=300)
    assert mine.returncode == 0, mine.stderr
    assert f"recommended set-up applied: {points}\n" in mine.stdout
    assert "pinn_optimizer adam" in mine.stdout
    off = run_pinntao(*args, "-pinn_recommended", "0", timeout=300)
    assert off.returncode == 0, off.stderr
    assert "recommended set-up" not in off.stdout


def test_cli_fills_the_helmholtz_scales_from_its_parameters():
    out = run_pinntao("-pinn_problem", "helmholtz2d", "-pinn_param_a2", "2", "-pinn_layers", "4", "-pinn_n_interior",
                      "20", "-pinn_n_boundary", "8", "-tao_max_it", "1", "-pinn_optimizer_view", timeout=300)
    assert out.returncode == 0, out.stderr
    applied = "recommended set-up applied: -pinn_arch multiscale_mlp -pinn_ff_scales 1,2 -pinn_optimizer sngd_lm"
    assert applied in out.stdout


def test_a_bad_parameter_is_named_before_a_value_is_built_from_it():
    with pytest.raises(PinnInputError, match=r"-pinn_param_a1: 0\.0 is not allowed .* nonzero"):
        apply_recommended(_DB(pinn_problem="helmholtz2d"), params=lambda name: {"a1": 0.0})
    out = run_pinntao("-pinn_problem", "helmholtz2d", "-pinn_param_a2", "0", "-tao_max_it", "1", timeout=300)
    assert out.returncode == 2 and "-pinn_param_a2" in out.stderr and "ff_scales" not in out.stderr, out.stderr
