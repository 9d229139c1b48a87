"""Faults and bad input (issue 9): never destroy a file, never hang, never lie, clean signals.

Each test reproduces one failure of the issue's list (the number in its name) on the CLI or
the Trainer, on one rank and, where it matters, under mpiexec -n 2.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, mpiexec, petsc_options, run_mpi, run_pinntao
from helpers import tiny_objective

from pinntao.checkpoint import load_theta
from pinntao.errors import PinnInputError, RunFailedError
from pinntao.io import OutputFile, OutputPathError, atomic_write, check_writable, json_bytes
from pinntao.train import Trainer

SMALL = ("-pinn_problem", "poisson1d", "-pinn_layers", "6", "-pinn_n_interior", "20")


def _clear_error(proc: subprocess.CompletedProcess, text: str, code: int = 2) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "PETSC ERROR" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("pinntao: error:")]
    assert len(lines) == 1 and text in lines[0], proc.stderr[-2000:]


# -- 1. never replace a device node or a symlink -------------------------------------------------
def test_1_checkpoint_on_a_device_node_is_refused_and_kept(tmp_path):
    dev = tmp_path / "full"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # like /dev/full
    except PermissionError:
        pytest.skip("mknod needs root")
    proc = run_pinntao(*SMALL, "-tao_max_it", "3", "-pinn_checkpoint", str(dev), "-pinn_checkpoint_every", "1")
    _clear_error(proc, "character device")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert os.listdir(tmp_path) == ["full"]


def test_1_symlinked_checkpoint_writes_through_the_link(tmp_path):
    target = tmp_path / "real.npy"
    np.save(target, np.zeros(2))
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    proc = run_pinntao(*SMALL, "-tao_max_it", "3", "-pinn_checkpoint", str(link))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert link.is_symlink() and np.load(target).shape == (19,)
    (tmp_path / "dirlink").symlink_to(tmp_path)
    with pytest.raises(OutputPathError, match="directory"):
        check_writable(str(tmp_path / "dirlink"))


def test_1_atomic_write_refuses_and_leaves_nothing(tmp_path):
    with pytest.raises(OutputPathError, match="directory"):
        atomic_write(str(tmp_path), lambda fh: fh.write(b"x"))
    with pytest.raises(OutputPathError, match="does not exist"):
        check_writable(str(tmp_path / "missing" / "f"))
    good = tmp_path / "r.json"
    good.write_text('{"old": 1}')

    def broken(fh):
        fh.write(b'{"new": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(str(good), broken)
    assert json.loads(good.read_text()) == {"old": 1} and os.listdir(tmp_path) == ["r.json"]


# -- 2. unwritable checkpoints: refused up front, or warned about during training; no hang ---------
@pytest.mark.parametrize("where", ["missing", "directory"])
def test_2_unwritable_checkpoint_is_refused_before_training(tmp_path, where):
    path = tmp_path / "nodir" / "c.npy" if where == "missing" else tmp_path
    proc = run_pinntao(*SMALL, "-tao_max_it", "100000", "-pinn_checkpoint", str(path))
    _clear_error(proc, "-pinn_checkpoint: cannot write")
    assert "iterations=" not in proc.stdout


def test_2_failed_write_during_training_warns_once_and_trains_on(tmp_path, capfd):
    obj = tiny_objective("poisson1d", layers=(6,), n_int=21, n_bnd=2)
    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    with petsc_options(tao_type="lmvm", tao_max_it=10):
        trainer = Trainer(obj, checkpoint=str(ckdir / "c.npy"), checkpoint_every=2)
    ckdir.rmdir()
    _, res = trainer.solve()
    assert res.iterations == 10
    assert res.outputs["checkpoint"]["failures"] == 7 and "final checkpoint" in res.message
    assert res.outputs["restart_state"]["failures"] == 7
    assert capfd.readouterr().err.count("could not be written") == 2  # once per file
    assert os.listdir(tmp_path) == []


def test_2_checkpoint_directory_removed_mid_run_cli(tmp_path):
    ckdir, rep = tmp_path / "ck", tmp_path / "r.json"
    ckdir.mkdir()
    args = [sys.executable, "-m", "pinntao", *SMALL, "-tao_max_it", "10000000", "-tao_gatol", "0", "-tao_grtol", "0",
            "-tao_gttol", "0", "-tao_max_funcs", "1000000000", "-pinn_time_limit", "4", "-pinn_report", str(rep),
            "-pinn_checkpoint", str(ckdir / "c.npy"), "-pinn_checkpoint_every", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    t0 = time.time()
    while not (ckdir / "c.npy").exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    for _ in range(200):  # the run keeps writing temp files beside c.npy: retry until the directory is gone
        try:
            shutil.rmtree(ckdir)
            break
        except OSError:
            time.sleep(0.01)
    assert not ckdir.exists()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 4, (proc.returncode, err[-2000:])
    assert err.count("could not be written") == 2 and "Traceback" not in err and "OUTPUT FAILED" in out
    assert err.count("checkpoint '") == 1 and err.count("restart state '") == 1  # one warning per file
    data = json.loads(rep.read_text())
    assert data["converged_reason"] == "CONVERGED_USER" and data["exit_code"] == 4
    assert data["outputs"]["checkpoint"]["failures"] > 0 and "final checkpoint" in data["message"]


@pytest.mark.mpi
def test_2_two_ranks_unwritable_checkpoint_exits_together(tmp_path):
    t0 = time.perf_counter()
    proc = run_mpi(2, ["-m", "pinntao", *SMALL, "-pinn_checkpoint", str(tmp_path / "no" / "c.npy")], timeout=120)
    assert time.perf_counter() - t0 < 120
    _clear_error(proc, "-pinn_checkpoint: cannot write")


@pytest.mark.mpi
def test_2_two_ranks_checkpoint_vanishing_mid_run(tmp_path):
    proc = run_mpi(2, [str(ROOT / "tests" / "fault_check.py"), "vanish", str(tmp_path)], timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("JSON"))[4:])
    assert out["iterations"] == 12 and out["outputs"]["checkpoint"]["failures"] == 8 and out["files"] == []
    assert proc.stderr.count("could not be written") == 2  # once per file, rank 0 only


@pytest.mark.mpi
@pytest.mark.parametrize("mode, text", [("monitor_raise", "RunFailedError on rank 0: rank 1: RuntimeError"),
                                        ("objective_raise", "RuntimeError: injected residual failure (rank 1 of 2")])
def test_2_a_rank_that_raises_never_hangs(tmp_path, mode, text):
    proc = run_mpi(2, [str(ROOT / "tests" / "fault_check.py"), mode, str(tmp_path)], timeout=120)
    assert proc.returncode != 0
    assert text in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_2_monitor_failure_is_raised_after_the_solve():
    obj = tiny_objective("poisson1d", layers=(6,), n_int=21, n_bnd=2)
    with petsc_options(tao_type="lmvm", tao_max_it=10):
        trainer = Trainer(obj)

    def boom(tao, its, f, x):
        raise ValueError("monitor broke")

    trainer._observe = boom
    with pytest.raises(RunFailedError, match="monitor broke"):
        trainer.solve()


# -- 3 and 10. the non-finite guard and honest exit codes ------------------------------------------
def test_3_adam_blow_up_leaves_a_finite_theta(tmp_path):
    rep, ck = tmp_path / "r.json", tmp_path / "c.npy"
    proc = run_pinntao(*SMALL, "-pinn_optimizer", "adam", "-tao_adam_lr", "1e200", "-tao_grtol", "0", "-tao_gatol", "0",
                       "-tao_max_it", "20", "-pinn_report", str(rep), "-pinn_checkpoint", str(ck))
    assert proc.returncode == 3, proc.stderr[-2000:]
    data = json.loads(rep.read_text())
    assert data["converged_reason"] == "DIVERGED_NAN" and data["status"] == "diverged"
    assert np.isfinite(data["loss"]) and data["loss"] == pytest.approx(data["initial_loss"])
    assert "restored to step 0" in data["message"] and "FAILED" in proc.stdout
    assert np.all(np.isfinite(np.load(ck)))


def test_3_adam_restore_in_process():
    obj = tiny_objective("poisson1d", layers=(6,), n_int=21, n_bnd=2)
    with petsc_options(tao_type="python", tao_python_type="pinntao.solvers.Adam", tao_adam_lr=1e200, tao_max_it=20):
        trainer = Trainer(obj)
    x, res = trainer.solve()
    assert res.status == "diverged" and res.exit_code == 3
    assert np.isfinite(res.loss) and obj.loss_full(obj.gather(x)) == res.loss


def test_3_no_finite_iterate_is_said_plainly():
    obj = tiny_objective("poisson1d", layers=(6,), n_int=21, n_bnd=2)
    x = obj.initial_vec()
    x.set(float("nan"))
    with petsc_options(tao_type="lmvm", tao_max_it=5):
        trainer = Trainer(obj)
    _, res = trainer.solve(x)
    assert res.status == "diverged" and res.exit_code == 3 and res.converged_reason == "DIVERGED_NAN"
    assert "no finite iterate" in res.message and "restored" not in res.message


def test_10_loss_above_initial_exits_non_zero(tmp_path):
    proc = run_pinntao(*SMALL, "-pinn_optimizer", "adam", "-tao_adam_lr", "3", "-tao_grtol", "0", "-tao_gatol", "0",
                       "-tao_max_it", "30", "-pinn_report", str(tmp_path / "r.json"))
    data = json.loads((tmp_path / "r.json").read_text())
    assert proc.returncode == 3 and data["status"] == "loss_increased" and data["loss"] > data["initial_loss"]
    assert "above the initial loss" in proc.stdout


# -- 4. reports: checked up front, atomic, strict JSON ----------------------------------------------
def test_4_bad_report_path_is_refused_before_training(tmp_path):
    t0 = time.perf_counter()
    proc = run_pinntao(*SMALL, "-tao_max_it", "100000", "-tao_gatol", "0", "-tao_grtol", "0",
                       "-pinn_report", str(tmp_path))
    _clear_error(proc, "-pinn_report: cannot write")
    assert "iterations=" not in proc.stdout and time.perf_counter() - t0 < 60


def test_4_strict_json_names_non_finite_numbers():
    text = json_bytes({"loss": float("nan"), "history": [[0, 1.0, float("inf")]], "ok": 1.5})
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert data["loss"] is None and data["history"][0][2] is None and data["ok"] == 1.5
    assert data["nonfinite"] == ["loss", "history[0][2]"]


def test_4_output_file_never_raises(tmp_path, capsys):
    out = OutputFile(str(tmp_path / "gone" / "r.json"), "report")
    assert not out.write(lambda fh: fh.write(b"{}")) and not out.write(lambda fh: fh.write(b"{}"))
    assert out.status()["failures"] == 2 and capsys.readouterr().err.count("warning") == 1


# -- 5. SIGINT / SIGTERM -------------------------------------------------------------------------
@pytest.mark.parametrize("ranks, sig", [(1, signal.SIGINT), pytest.param(2, signal.SIGINT, marks=pytest.mark.mpi),
                                        pytest.param(2, signal.SIGTERM, marks=pytest.mark.mpi)])
def test_5_signal_stops_cleanly_with_report_and_checkpoint(tmp_path, ranks, sig):
    rep, ck = tmp_path / "r.json", tmp_path / "c.npy"
    args = [sys.executable, "-m", "pinntao", *SMALL, "-tao_max_it", "10000000", "-tao_gatol", "0", "-tao_grtol", "0",
            "-tao_gttol", "0", "-pinn_report", str(rep), "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", "5"]
    if ranks > 1:
        args = [mpiexec(), "-n", str(ranks), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
                            start_new_session=True)
    try:
        t0 = time.time()
        while not ck.exists() and time.time() - t0 < 120 and proc.poll() is None:
            time.sleep(0.2)
        assert ck.exists(), "training never started"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert "Traceback" not in err and "INTERRUPTED" in out
    data = json.loads(rep.read_text())
    assert data["status"] == "interrupted" and data["signal"] == sig and data["exit_code"] == 128 + sig
    assert f"interrupted by {signal.Signals(sig).name}" in data["message"]
    assert np.load(ck).shape == (data["n_params"],)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy", "c.npy.restart.npz", "r.json"]


# -- 6. -pinn_load validation and finite problem parameters ----------------------------------------
def _bad_theta_files(tmp_path):
    P = 19
    files = {}
    files["nan"] = tmp_path / "nan.npy"
    np.save(files["nan"], np.full(P, np.nan))
    files["complex"] = tmp_path / "complex.npy"
    np.save(files["complex"], np.ones(P, dtype=complex))
    files["object"] = tmp_path / "object.npy"
    np.save(files["object"], np.array([None] * P, dtype=object), allow_pickle=True)
    full = tmp_path / "full.npy"
    np.save(full, np.ones(P))
    files["truncated"] = tmp_path / "truncated.npy"
    files["truncated"].write_bytes(full.read_bytes()[:-40])
    files["text"] = tmp_path / "theta.txt"
    files["text"].write_text(" ".join(["1.0"] * P))
    files["npz"] = tmp_path / "theta.npz"
    np.savez(files["npz"], theta=np.ones(P))
    files["shape"] = tmp_path / "shape.npy"
    np.save(files["shape"], np.ones((P, 2)))
    return files


@pytest.mark.parametrize("kind, text", [("nan", "non-finite"), ("complex", "complex128"), ("object", "Python objects"),
                                        ("truncated", "truncated"), ("text", "neither a .npy file nor a PETSc binary"),
                                        ("npz", "archive"), ("shape", "shape (19, 2)")])
def test_6_bad_load_files_are_one_clear_line(tmp_path, kind, text):
    path = _bad_theta_files(tmp_path)[kind]
    with pytest.raises(PinnInputError, match="-pinn_load") as info:
        load_theta(str(path), 19)
    assert text in str(info.value)
    if kind in ("nan", "object"):  # and through the CLI
        _clear_error(run_pinntao(*SMALL, "-tao_max_it", "2", "-pinn_load", str(path)), text)


def test_6_load_accepts_petsc_binary(tmp_path):
    from petsc4py import PETSc

    theta = np.linspace(-1, 1, 19)
    v = PETSc.Vec().createSeq(19)
    v.setArray(theta)
    viewer = PETSc.Viewer().createBinary(str(tmp_path / "theta.dat"), "w", comm=PETSc.COMM_SELF)
    v.view(viewer)
    viewer.destroy()
    np.testing.assert_array_equal(load_theta(str(tmp_path / "theta.dat"), 19), theta)
    proc = run_pinntao(*SMALL, "-tao_max_it", "1", "-pinn_load", str(tmp_path / "theta.dat"))
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_6_nan_problem_parameter_is_refused():
    _clear_error(run_pinntao("-pinn_problem", "helmholtz2d", "-pinn_param_k", "nan"), "must be a finite number")


# -- 7, 8, 9, 11. options: seeds, arguments, misspellings, PETSc's own errors, memory ----------------
@pytest.mark.parametrize(
    "args, text",
    [
        (["-pinn_seed", "-1"], "in [0, 2**63)"),
        (["-pinn_seed", str(2**63)], "in [0, 2**63)"),
        (["heat1d"], "unexpected argument 'heat1d'"),
        (["-pinn_problem", "heat1d", "extra"], "unexpected argument 'extra'"),
        (["--pinn_problem", "heat1d"], "one dash"),
        (["-pinn_problm", "heat1d"], "did you mean -pinn_problem?"),
        (["-tao_type", "nosuch"], "unknown TAO type 'nosuch'"),
        (["-tao_max_it", "-1"], "-tao_max_it: must be >= 0"),
        (["-tao_ls_type", "nosuch"], "Unable to find requested TaoLineSearch type nosuch"),
        (["-options_file", "/nonexistent/opts"], "-options_file: cannot read"),
        (["-pinn_layers", "100000,100000,100000"], "smaller -pinn_layers"),
        (["-pinn_n_interior", "3000000000"], "fewer points"),
    ],
    ids=["seed-neg", "seed-big", "positional", "positional-after-value", "gnu-dashes", "misspelt", "tao-type",
         "max-it-neg", "ls-type", "options-file", "memory-layers", "memory-points"],
)
def test_7_8_9_11_bad_options_are_one_clear_line(args, text):
    t0 = time.perf_counter()
    _clear_error(run_pinntao(*args), text)
    assert time.perf_counter() - t0 < 60


def test_9_malformed_options_file(tmp_path):
    bad = tmp_path / "bad.opts"
    bad.write_text('tao_max_it 5\n-tao_monitor "unterminated\n')
    _clear_error(run_pinntao("-options_file", str(bad)), "PETSc could not start")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_8_help_flags_print_help(flag):
    proc = run_pinntao(flag)
    assert proc.returncode == 0 and "-pinn_problem <poisson2d>" in proc.stdout and "iterations=" not in proc.stdout
