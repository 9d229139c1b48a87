"""Faults, round 3 (issue 20): non-regular input files, honest status of adaptive runs, exact
restart of adaptive runs, non-finite option values, problem parameter ranges, the reference
cache, start-up signals and options files. Test names carry the issue's item number."""

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_cmd, run_mpi, run_pinntao

from pinntao.errors import PinnInputError
from pinntao.io import check_input, check_options_files
from pinntao.problems import refcache
from pinntao.train import read_restart, restart_path

SMALL = ("-pinn_problem", "poisson1d", "-pinn_layers", "6", "-pinn_n_interior", "20")
EXACT = ("-tao_gatol", "0", "-tao_grtol", "0")


def _one_line(proc: subprocess.CompletedProcess, text: str, code: int = 2) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "PETSC ERROR" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("pinntao: error:")]
    assert len(lines) == 1 and text in lines[0], proc.stderr[-2000:]


def _limited(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """python -m pinntao under a 6 GiB address-space limit: code that reads a device without end
    fails with MemoryError instead of exhausting the machine; a FIFO that blocks hits the timeout."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, "-m", "pinntao", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env=env, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args}: still running after {timeout} s (blocked on a FIFO?)")


# -- 1. every input file: a regular file of plausible size, checked before it is opened ---------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("flag", ["-pinn_load", "-pinn_restart"])
@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_1_fifo_or_device_as_input_is_one_line(flag, kind, fifo):
    path = fifo if kind == "fifo" else "/dev/zero"
    if kind == "chardev" and not stat.S_ISCHR(os.stat(path).st_mode):
        pytest.skip("no /dev/zero")
    proc = _limited(*SMALL, "-tao_max_it", "2", flag, path)
    _one_line(proc, "a FIFO" if kind == "fifo" else "a character device")
    assert "only regular files" in proc.stderr
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_1_input_checks_never_open(fifo, tmp_path):
    with pytest.raises(PinnInputError, match="a FIFO"):
        check_input(fifo, "-x", 100)
    with pytest.raises(PinnInputError, match="a directory"):
        check_input(str(tmp_path), "-x", 100)
    big = tmp_path / "big"
    big.write_bytes(b"0" * 200)
    with pytest.raises(PinnInputError, match="more than"):
        check_input(str(big), "-x", 100)
    with pytest.raises(PinnInputError, match="a FIFO"):
        read_restart(fifo)


# -- 3. the final status compares like with like -----------------------------------------------------
def test_3_rad_run_that_improves_is_ok(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao("-pinn_problem", "poisson1d", "-pinn_optimizer", "adam", "-tao_max_it", "30",
                       "-pinn_resample", "rad", "-pinn_resample_every", "5", "-pinn_report", str(rep))
    data = json.loads(rep.read_text())
    assert proc.returncode == 0, (proc.stdout[-2000:], data["compared"])
    assert data["status"] == "ok" and "final points" in data["compared"]["quantity"]
    assert data["compared"]["final"] < data["compared"]["initial"]
    assert data["history"][-1][3] < data["history"][0][3]  # and the rel. L2 improved


def test_3_annealing_compares_with_the_final_weights(tmp_path):
    rep = tmp_path / "r.json"
    proc = run_pinntao(*SMALL, "-pinn_optimizer", "adam", "-tao_max_it", "20", "-pinn_weights", "annealing",
                       "-pinn_weights_every", "5", "-pinn_report", str(rep))
    data = json.loads(rep.read_text())
    assert proc.returncode in (0, 3) and "final weights" in data["compared"]["quantity"]
    assert (data["status"] == "ok") == (data["compared"]["final"] <= data["compared"]["initial"])


# -- 4. exact restart of annealing, RAD and mini-batch runs -------------------------------------------
ADAPTIVE = {
    "annealing": ("-pinn_weights", "annealing", "-pinn_weights_every", "4"),
    # settle 0: the interrupted run's -tao_max_it 8 would otherwise stop RAD at 6 (too late to fit)
    "rad": ("-pinn_resample", "rad", "-pinn_resample_every", "3", "-pinn_rad_pool", "100",
            "-pinn_resample_settle", "0"),
    "batches": ("-pinn_batch_size", "12", "-pinn_batch_every", "2"),
}


def _full_and_resumed(tmp_path, extra: tuple[str, ...], method: str = "adam", ranks: int = 0,
                      n: int = 8) -> tuple[dict, dict, str]:
    def run(*args):
        if ranks:
            return run_mpi(ranks, ["-m", "pinntao", *args], timeout=300)
        return run_pinntao(*args, timeout=300)

    full, res, ck = tmp_path / "full.json", tmp_path / "res.json", tmp_path / "ck.npy"
    base = (*SMALL, *EXACT, "-pinn_optimizer", method, *extra)
    err = ""
    for args in ((*base, "-tao_max_it", str(2 * n), "-pinn_report", str(full)),
                 (*base, "-tao_max_it", str(n), "-pinn_checkpoint", str(ck), "-pinn_checkpoint_every", "4"),
                 ("-pinn_restart", str(ck), "-tao_max_it", str(2 * n), "-pinn_report", str(res))):
        proc = run(*args)
        assert proc.returncode in (0, 3), (args, proc.stderr[-3000:])
        err = proc.stderr
    return json.loads(full.read_text()), json.loads(res.read_text()), err


@pytest.mark.parametrize("kind", list(ADAPTIVE))
def test_4_adaptive_adam_resumes_exactly(tmp_path, kind):
    full, res, err = _full_and_resumed(tmp_path, ADAPTIVE[kind])
    assert res["iterations"] == full["iterations"] == 16
    assert res["loss"] == pytest.approx(full["loss"], rel=1e-12, abs=0)
    np.testing.assert_allclose([h[2] for h in res["history"]], [h[2] for h in full["history"]], rtol=1e-12)
    for key in ("weights", "resample", "batches"):
        assert res.get(key) == full.get(key)
    assert "approximate" not in err


@pytest.mark.mpi
def test_4_adaptive_adam_resumes_exactly_on_two_ranks(tmp_path):
    both = (*ADAPTIVE["annealing"], *ADAPTIVE["rad"], *ADAPTIVE["batches"])
    full, res, _ = _full_and_resumed(tmp_path, both, ranks=2)
    assert res["ranks"] == 2 and res["loss"] == pytest.approx(full["loss"], rel=1e-12, abs=0)


@pytest.mark.parametrize("method", ["isgd", "isgd_lbfgs"])
def test_4_isgd_resume_is_exact_or_says_so(tmp_path, method):
    extra = ("-tao_schedule_its", "4") if method == "isgd_lbfgs" else ()
    full, res, err = _full_and_resumed(tmp_path, extra, method=method, n=6)
    exact = res["loss"] == pytest.approx(full["loss"], rel=1e-10, abs=0)
    warned = [ln for ln in err.splitlines() if "resumed run is approximate" in ln]
    assert exact or len(warned) == 1, (res["loss"], full["loss"], err[-2000:])
    assert "restarts" in "".join(warned) or not warned  # it says what restarts fresh


# -- 7. non-finite option values, problem parameter ranges, restart metadata ----------------------------
@pytest.mark.parametrize("args, text", [
    (("-pinn_optimizer", "isgd", "-tao_isgd_alpha", "inf"), "-tao_isgd_alpha: inf is not allowed; must be finite"),
    (("-pinn_optimizer", "sav", "-tao_sav_dt", "inf"), "-tao_sav_dt: inf is not allowed; must be finite"),
    (("-pinn_optimizer", "adam", "-tao_adam_lr", "-inf"), "must be finite"),
    (("-pinn_problem", "singular_perturbation", "-pinn_param_eps", "0"), "-pinn_param_eps: 0.0 is not allowed"),
    (("-pinn_problem", "heat1d", "-pinn_param_kappa", "-1"), "must be finite and > 0"),
])
def test_7_bad_values_are_one_line(args, text):
    _one_line(run_pinntao(*args, "-tao_max_it", "2"), text)


def test_7_restart_metadata_is_validated(tmp_path):
    ck = tmp_path / "ck.npy"
    proc = run_pinntao(*SMALL, "-tao_max_it", "2", "-pinn_checkpoint", str(ck))
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = restart_path(str(ck))
    with np.load(state) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    meta["iteration"] = -5
    np.savez(state, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    _one_line(run_pinntao("-pinn_restart", str(ck)), "field 'iteration' is -5; must be an integer >= 0")


# -- 8. the reference cache ------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNTAO_CACHE", str(tmp_path))
    monkeypatch.setattr(refcache, "_MEMORY", {})
    return tmp_path


def _compute():
    return {"x": np.linspace(0, 1, 5), "u": np.arange(25.0).reshape(5, 5)}


@pytest.mark.parametrize("damage", ["truncated", "empty", "nan", "no_checksum", "shape"])
def test_8_bad_cache_is_recomputed_and_named(cache, capfd, damage):
    path = cache / "ref.npz"
    refcache.cached("ref", _compute)
    good = path.read_bytes()
    refcache._MEMORY.clear()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "nan":
        bad = _compute()
        bad["u"][2, 2] = np.nan
        np.savez(path, **bad, sha256=refcache.checksum(bad))
    elif damage == "no_checksum":
        np.savez(path, **_compute())
    check = refcache.expect_shapes({"x": (6,), "u": (5, 5)} if damage == "shape" else {"x": (5,), "u": (5, 5)})
    capfd.readouterr()
    out = refcache.cached("ref", _compute, check)
    np.testing.assert_array_equal(out["u"], _compute()["u"])
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "recomputing" in err, err
    if damage != "shape":
        assert path.read_bytes() == good  # replaced by a valid file
    assert sorted(os.listdir(cache)) == ["ref.npz"]


@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_8_non_regular_cache_is_never_read_or_replaced(cache, kind):
    path = cache / "ref.npz"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # like /dev/zero
        except PermissionError:
            pytest.skip("mknod needs root")
    with pytest.raises(PinnInputError, match="only regular files"):
        refcache.cached("ref", _compute)
    mode = os.lstat(path).st_mode
    assert (stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode)) and os.listdir(cache) == ["ref.npz"]


def test_8_cavity_with_a_fifo_cache_is_one_line(tmp_path):
    os.mkfifo(tmp_path / "cavity_re100_n20.npz")
    env = {**os.environ, "PINNTAO_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pinntao", "-pinn_problem", "cavity2d", "-pinn_param_ref_n", "20",
                           "-pinn_layers", "6", "-pinn_n_interior", "20", "-pinn_n_boundary", "8", "-tao_max_it", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    _one_line(proc, "reference cache")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "cavity_re100_n20.npz").st_mode)


# -- 9. start-up signals, --help, options files -----------------------------------------------------
def test_9_sigint_during_imports_is_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "pinntao", *SMALL], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(0.4)  # inside `import torch`, well before training
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and err.count("\n") == 1 and "during start-up" in err, err[-3000:]


_SIGNAL_AT_IMPORT = """
import os, signal, sys
_target = os.environ.pop("PINNTAO_TEST_SIGNAL_AT")
class _Finder:
    def find_spec(self, name, path=None, target=None):
        global _target
        if name == _target:
            _target = None
            os.kill(os.getpid(), signal.SIGTERM if name.startswith("petsc4py") else signal.SIGINT)
        return None
sys.meta_path.insert(0, _Finder())
"""


@pytest.mark.parametrize("module", ["numpy.linalg", "numpy.exceptions", "torch.nn", "petsc4py.lib"])
def test_9_signal_inside_any_start_up_import_is_one_line(tmp_path, module):
    """The signal arrives at a known point of an import (a sitecustomize finder sends it): numpy
    half-imported used to recurse in its module __getattr__ or load its C module twice."""
    (tmp_path / "sitecustomize.py").write_text(_SIGNAL_AT_IMPORT)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PINNTAO_TEST_SIGNAL_AT": module, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pinntao", *SMALL], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=env)
    signame = "SIGTERM" if module.startswith("petsc4py") else "SIGINT"
    _one_line(proc, f"interrupted by {signame} during start-up", code=143 if signame == "SIGTERM" else 130)


@pytest.mark.parametrize("flag", ["--help", "-h", "-help"])
def test_9_help_leaves_no_option_unused(flag):
    proc = run_pinntao(flag)
    assert proc.returncode == 0 and "-pinn_problem <poisson2d>" in proc.stdout
    assert "Option left" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-1500:]


def test_9_options_file_on_a_device_or_fifo(fifo):
    _one_line(run_cmd([sys.executable, "-m", "pinntao", "-options_file", "/dev/zero"], timeout=120),
              "it is a character device")
    _one_line(run_cmd([sys.executable, "-m", "pinntao", "-options_file", fifo], timeout=120), "it is a FIFO")


def test_9_options_file_including_itself(tmp_path):
    a, b = tmp_path / "a.opts", tmp_path / "b.opts"
    a.write_text(f"-tao_max_it 3\n-options_file {b}  # include\n")
    b.write_text(f"-options_file {a}\n")
    assert "includes itself" in check_options_files(["x", "-options_file", str(a)])
    proc = run_pinntao("-options_file", str(a))
    _one_line(proc, "includes itself")
    ok = tmp_path / "ok.opts"
    ok.write_text(f"-pinn_problem poisson1d\n-options_file {tmp_path / 'leaf.opts'}\n")
    (tmp_path / "leaf.opts").write_text("-pinn_layers 6\n# -options_file ok.opts (a comment)\n")
    assert check_options_files(["x", "-options_file", str(ok)]) is None
