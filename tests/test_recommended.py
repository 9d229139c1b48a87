"""Recommended set-ups: applied where the user gave none, user options and -tao_type win,
-pinn_recommended 0 turns them off, every entry is a known option with an allowed value."""

import pytest
from conftest import run_pinntao

from pinntao.problems import PROBLEMS, RECOMMENDED, apply_recommended, get_problem, recommended_help


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
    db = _DB(pinn_problem="klein_gordon1d", pinn_arch="mlp")
    applied = dict(apply_recommended(db))
    assert "pinn_arch" not in applied and db.kv["pinn_arch"] == "mlp"  # the user's value wins
    assert applied == {k: v for k, v in RECOMMENDED["klein_gordon1d"].items() if k != "pinn_arch"}
    assert all(db.kv[k] == v for k, v in applied.items())


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
        for key, value in rec.items():
            assert key.startswith("pinn_") and key[5:] in opts, key
            if key == "pinn_optimizer":
                assert value in PRESETS
            else:
                opts[key[5:]].convert(value, key)  # raises for a value the option does not allow
        assert name in recommended_help()


def test_cli_view_lists_the_set_up_and_the_user_wins(tmp_path):
    args = ["-pinn_problem", "burgers1d", "-pinn_layers", "4", "-pinn_n_interior", "20", "-pinn_n_boundary", "4",
            "-pinn_n_initial", "4", "-tao_max_it", "1", "-pinn_optimizer_view"]
    out = run_pinntao(*args, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "recommended set-up applied: -pinn_sampling halton -pinn_optimizer sngd" in out.stdout
    mine = run_pinntao(*args, "-pinn_optimizer", "adam", timeout=300)
    assert mine.returncode == 0, mine.stderr
    assert "recommended set-up applied: -pinn_sampling halton\n" in mine.stdout
    assert "pinn_optimizer adam" in mine.stdout
    off = run_pinntao(*args, "-pinn_recommended", "0", timeout=300)
    assert off.returncode == 0, off.stderr
    assert "recommended set-up" not in off.stdout
