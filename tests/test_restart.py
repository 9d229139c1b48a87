"""Exact restart (issue 9, item 12): a run interrupted at iteration k and resumed with
-pinn_restart follows the uninterrupted run (adam, sngd, engd: bitwise; lbfgs: TAO's L-BFGS
history is not restored, so it only continues from the checkpoint)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_mpi, run_pinntao

from pinntao.errors import PinnInputError
from pinntao.train import read_restart, restart_path

SMALL = ("-pinn_problem", "poisson1d", "-pinn_layers", "6", "-pinn_n_interior", "20", "-tao_gatol", "0",
         "-tao_grtol", "0")


def _report(path) -> dict:
    return json.loads(path.read_text())


def _interrupted_and_resumed(tmp_path, method: str, mpi: int = 0, extra: tuple[str, ...] = ()) -> tuple[dict, dict]:
    def run(*args):
        if mpi:
            return run_mpi(mpi, ["-m", "pinntao", *args], timeout=300)
        return run_pinntao(*args, timeout=300)

    full, res, ck = tmp_path / "full.json", tmp_path / "res.json", tmp_path / "ck.npy"
    for args in ((*SMALL, *extra, "-pinn_optimizer", method, "-tao_max_it", "16", "-pinn_report", str(full)),
                 (*SMALL, *extra, "-pinn_optimizer", method, "-tao_max_it", "8", "-pinn_checkpoint", str(ck),
                  "-pinn_checkpoint_every", "4"),
                 ("-pinn_restart", str(ck), "-tao_max_it", "16", "-pinn_report", str(res))):
        proc = run(*args)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    return _report(full), _report(res)


def _assert_resumed_exactly(full: dict, res: dict) -> None:
    assert res["iterations"] == full["iterations"] == 16
    np.testing.assert_allclose([h[2] for h in res["history"]], [h[2] for h in full["history"]], rtol=1e-12)
    assert res["loss"] == pytest.approx(full["loss"], rel=1e-12, abs=0)


@pytest.mark.parametrize("method", ["adam", "sngd", "engd", "spring"])
def test_12_resumed_run_matches_uninterrupted(tmp_path, method):
    full, res = _interrupted_and_resumed(tmp_path, method)
    assert res["iterations"] == full["iterations"] == 16
    assert res["loss"] == pytest.approx(full["loss"], rel=1e-12, abs=0)
    assert [h[0] for h in res["history"]] == [h[0] for h in full["history"]]
    np.testing.assert_allclose([h[2] for h in res["history"]], [h[2] for h in full["history"]], rtol=1e-12)
    assert res["initial_loss"] == full["initial_loss"] and res["method"] == method


def test_12_warm_sketch_resumes_exactly(tmp_path):
    """-tao_ng_pc_sketch_warm starts each sketch from the last kept basis: the restart file holds
    it, so the resumed run sketches with the same test matrix as the uninterrupted one."""
    full, res = _interrupted_and_resumed(tmp_path, "sngd_gram", extra=("-tao_ng_pc_sketch_warm", "1"))
    _assert_resumed_exactly(full, res)


def test_12_reused_sketch_basis_resumes_exactly(tmp_path):
    """-tao_ng_pc_sketch_reuse 3: the checkpoint at iteration 8 falls between fresh sketches; the
    restart file holds the kept basis, so the resumed run's Ritz steps use the same one."""
    full, res = _interrupted_and_resumed(tmp_path, "sngd", extra=("-tao_ng_pc_sketch_reuse", "3"))
    _assert_resumed_exactly(full, res)


@pytest.mark.mpi
def test_12_resumed_run_matches_on_two_ranks(tmp_path):
    full, res = _interrupted_and_resumed(tmp_path, "adam", mpi=2)
    assert res["ranks"] == 2 and res["loss"] == pytest.approx(full["loss"], rel=1e-12, abs=0)


def test_12_lbfgs_resumes_from_the_checkpoint(tmp_path):
    full, res = _interrupted_and_resumed(tmp_path, "lbfgs")
    assert res["iterations"] == 16 and res["loss"] < res["initial_loss"]
    assert res["loss"] == pytest.approx(full["loss"], rel=0.5)  # history restarts empty: not bitwise


def test_12_restart_refuses_other_problems_and_bad_files(tmp_path):
    ck = tmp_path / "ck.npy"
    proc = run_pinntao(*SMALL, "-tao_max_it", "2", "-pinn_checkpoint", str(ck))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_pinntao("-pinn_restart", str(ck), "-pinn_layers", "7")
    assert proc.returncode == 2 and "-pinn_restart: the checkpoint is for 19 parameters" in proc.stderr
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(PinnInputError, match="-pinn_restart"):
        read_restart(str(tmp_path / "junk.npz"))
    with pytest.raises(PinnInputError, match="no restart state"):
        read_restart(str(tmp_path / "missing.npy"))


def test_12_kill_9_leaves_a_valid_checkpoint(tmp_path):
    ck = tmp_path / "ck.npy"
    args = [sys.executable, "-m", "pinntao", *SMALL, "-tao_max_it", "10000000", "-tao_gttol", "0",
            "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        t0 = time.time()
        while not ck.exists() and time.time() - t0 < 120:
            time.sleep(0.1)
        time.sleep(1.0)  # mid-run: a checkpoint is written every iteration
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    _arrays, meta = read_restart(str(ck))
    assert np.load(ck).shape == (19,) and meta["iteration"] > 0
    proc = run_pinntao("-pinn_restart", str(ck), "-tao_max_it", str(meta["iteration"] + 3))
    assert proc.returncode == 0 and f"iterations={meta['iteration'] + 3}" in proc.stdout, proc.stderr[-2000:]
    assert os.path.exists(restart_path(str(ck)))
