"""The population on a real one-node SLURM cluster (``tests/slurm/start.sh``; CI starts it).

Skips with a clear message when SLURM is not installed or not running; under ``CI=true`` that
is a failure, as for the browser tests. Each test uses small phantom configurations and
compares bits with the same configuration run in this process (1 torch thread on both sides:
a SLURM task gets the CPUs SLURM gave it, 1 here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from prunecxr import cli, io
from prunecxr.cluster import JOBS_FILE, LOG_DIR, run_on_slurm, seed_states
from prunecxr.config import load_config
from prunecxr.pipeline import ensure_results, prepare_results
from prunecxr.train import seed_dir

pytestmark = pytest.mark.slow
SMALL = ["threads=1", "population=2", "methods=l1"]


@pytest.fixture(scope="module", autouse=True)
def slurm_up():
    """A SLURM cluster with an idle or busy node, or a skip that says how to get one."""
    msg = None
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        msg = "SLURM tests need slurm; install and start it: tests/slurm/install.sh && tests/slurm/start.sh"
    else:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if out.returncode != 0 or not ({"idle", "mixed", "allocated"} & set(out.stdout.split())):
            msg = f"SLURM is installed but not up ({out.stderr.strip() or out.stdout.strip()}); start it: tests/slurm/start.sh"
    if msg:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg} (CI=true: SLURM tests may not be skipped)", pytrace=False)
        pytest.skip(msg)


def _predictions(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): np.load(p).tobytes()
            for p in sorted((folder / "predictions").rglob("*.npy"))}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def _wait_for(condition, seconds: float = 180, what: str = "") -> None:
    end = time.time() + seconds
    while not condition():
        if time.time() > end:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.5)


def test_smoke_through_slurm_is_bit_identical_and_never_resubmitted(tmp_path, capsys):
    args = ["run", "--profile", "smoke", "--executor", "slurm", "--quiet", "--poll", "1",
            "--results-dir", str(tmp_path / "slurm"), "--set", "threads=1"]
    t0 = time.perf_counter()
    code, out = _run(args, capsys)
    slurm_s = time.perf_counter() - t0
    assert code == 0, out
    config = load_config("smoke", overrides=["threads=1"])
    t0 = time.perf_counter()
    local = ensure_results(config, results_root=tmp_path / "local", progress=False)
    local_s = time.perf_counter() - t0
    remote = next((tmp_path / "slurm").iterdir())
    assert local.name == remote.name  # same key: the executor is not part of the results
    swept = sum(len(config.method_seeds(m)) for m in config.methods)  # every method, every seed
    assert _predictions(remote) == _predictions(local) and len(_predictions(local)) == swept
    jobs = io.read_json(remote / JOBS_FILE)
    for seed in config.seeds:  # each seed ran in the SLURM task recorded for it
        done = io.read_json(seed_dir(remote, seed) / "done.json")
        assert done["slurm_job"] == jobs[str(seed)]["job"] and done["host"]
    print(f"smoke population: SLURM {slurm_s:.1f} s, in-process {local_s:.1f} s")
    code, out = _run(args, capsys)  # the same command again: nothing is resubmitted
    assert code == 0 and io.read_json(remote / JOBS_FILE) == jobs
    assert out.count(" done ") == 3, out


def test_timeout_requeues_and_resumes_to_the_same_bits(tmp_path):
    import submitit

    config = load_config("smoke", overrides=[
        "threads=1", "population=1", "methods=l1", "data.n_images=3000", "image_size=48",
        "max_epochs=6", "patience=6"])
    folder, states = run_on_slurm(config, tmp_path / "slurm", wait=False, progress=False)
    job = states[0].job
    last = seed_dir(folder, 0) / "last.pt"
    _wait_for(last.exists, what="the first epoch checkpoint")
    submitit.SlurmJob(folder / LOG_DIR, job)._interrupt(timeout=True)  # SLURM's USR2 warning
    folder, states = run_on_slurm(config, tmp_path / "slurm", progress=False, poll=1.0)
    assert [s.state for s in states] == ["done"] and states[0].job == job  # requeued, same job
    log = (folder / LOG_DIR / f"{job}_0_log.out").read_text()
    assert "resuming after epoch" in log, log[-2000:]
    local = ensure_results(config, results_root=tmp_path / "local", progress=False)
    assert _predictions(folder) == _predictions(local)


def test_failed_task_reports_seed_and_log_and_a_rerun_retries_only_it(tmp_path, capsys):
    config = load_config("smoke", overrides=SMALL)
    folder, _ = prepare_results(config, tmp_path)
    assert [s.state for s in seed_states(folder, config)] == ["not submitted"] * 2
    seed_dir(folder, 1).parent.mkdir(parents=True)
    seed_dir(folder, 1).write_text("not a folder")  # seed 1 cannot write its checkpoints
    args = ["run", "--profile", "smoke", "--executor", "slurm", "--quiet", "--poll", "1",
            "--results-dir", str(tmp_path), *sum((["--set", o] for o in SMALL), [])]
    code, out = _run(args, capsys)
    jobs = io.read_json(folder / JOBS_FILE)
    assert code == 1
    assert f"seed 1 failed (SLURM job {jobs['1']['job']}, FAILED)" in out, out
    assert "NotADirectoryError" in out or "FileExistsError" in out, out
    code, out = _run(["status", "--results-dir", str(folder)], capsys)
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:4]}
    assert code == 0 and rows == {"0": "done", "1": "failed"}, out
    seed_dir(folder, 1).unlink()
    code, out = _run(args, capsys)
    again = io.read_json(folder / JOBS_FILE)
    assert code == 0, out
    assert again["0"] == jobs["0"] and again["1"]["job"] != jobs["1"]["job"]  # only seed 1 again


def test_status_shows_queued_running_and_done_and_a_rerun_submits_nothing_new(tmp_path, capsys):
    config = load_config("smoke", overrides=["threads=1", "population=3", "methods=l1"])
    argv = ["run", "--profile", "smoke", "--executor", "slurm", "--no-wait", "--quiet",
            "--max-parallel", "1", "--results-dir", str(tmp_path),
            "--set", "threads=1", "--set", "population=3", "--set", "methods=l1"]
    code, out = _run(argv, capsys)
    assert code == 0 and "submitted; follow with" in out
    folder = next(tmp_path.iterdir())
    jobs = io.read_json(folder / JOBS_FILE)
    code, out = _run(argv, capsys)  # again while they are queued or running: nothing new
    assert code == 0 and io.read_json(folder / JOBS_FILE) == jobs
    assert "queued" in out or "running" in out, out
    seen = set()

    def all_done():
        seen.update(s.state for s in seed_states(folder, config))
        return seen >= {"done"} and all(s.state == "done" for s in seed_states(folder, config))

    _wait_for(all_done, what="three seeds, one at a time")
    assert {"queued", "running", "done"} <= seen, seen  # one task at a time: others queue
    code, out = _run(["status", "--results-dir", str(tmp_path)], capsys)  # a root: each folder
    assert code == 0 and out.count(" done ") == 3 and str(folder) in out


def test_two_fake_gpus_give_distinct_devices_at_most_two_at_once(tmp_path):
    config = load_config("smoke", overrides=["threads=1", "population=4", "methods=l1"])
    folder, states = run_on_slurm(config, tmp_path, gpus_per_task=1, progress=False, poll=1.0)
    assert all(s.state == "done" for s in states)
    runs = [io.read_json(seed_dir(folder, s) / "done.json") for s in config.seeds]
    assert {r["visible_gpus"] for r in runs} <= {"0", "1"}
    for i, a in enumerate(runs):  # tasks that overlapped in time held different GPUs
        overlapping = [b for b in runs[i + 1:]
                       if a["started"] < b["finished"] and b["started"] < a["finished"]]
        assert all(b["visible_gpus"] != a["visible_gpus"] for b in overlapping)
        assert len(overlapping) <= 1 or all(  # never three at once
            not (b["started"] < c["finished"] and c["started"] < b["finished"])
            for j, b in enumerate(overlapping) for c in overlapping[j + 1:])
