"""The population on a SLURM cluster: one array task per seed, submitted and tracked by submitit.

A task trains its seed (resuming from the last epoch checkpoint) and then sweeps it with every
method that uses it (:func:`prunecxr.pipeline.run_seed`). When SLURM warns of the time limit
or of preemption, submitit calls :meth:`SeedTask.checkpoint`, which requeues the same task:
it resumes from its last finished epoch, so its results are bit-identical to an uninterrupted
run on the same hardware. The results folder, and submitit's logs inside it (``slurm/logs``),
must be on the filesystem the cluster shares; ``slurm/jobs.json`` remembers which SLURM job
holds which seed, so rerunning never resubmits a finished seed or one still queued or running.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .progress import tqdm

from . import io, layout
from .config import Config
from .layout import SLURM_JOBS as JOBS_FILE
from .layout import SLURM_LOGS as LOG_DIR
from .pipeline import prepare_results, run_seed, seed_finished, update_manifest

QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING",
          "SUSPENDED", "SUBMITTED"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
# Any other state (COMPLETED without the seed's files, FAILED, TIMEOUT, ...) is a failure.


class SeedTask:
    """The callable submitit runs on a node: all the work of one seed, requeued on a warning."""

    def __init__(self, config: Config, folder: str) -> None:
        self.config, self.folder = config, folder

    def __call__(self, seed: int) -> dict:
        config = self.config
        if not config.threads:  # as many torch threads as SLURM gave this task CPUs
            cpus = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE")
            config = dataclasses.replace(config, threads=int(cpus or 0))
        return run_seed(config, Path(self.folder), seed)

    def checkpoint(self, seed: int):
        """Requeue the same task: training resumes from its last epoch checkpoint on disk."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, seed)


@dataclass
class SeedState:
    """Where one seed stands: done, running, queued, failed or not submitted."""

    seed: int
    state: str
    job: str = ""
    slurm_state: str = ""
    log: str = ""
    log_tail: list = field(default_factory=list)


def _slurm(cmd: list[str]) -> str:
    """stdout of a SLURM command; '' when it fails (e.g. squeue on jobs long gone)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def slurm_states(jobs: list[str]) -> dict[str, str]:
    """SLURM state of each job id (array tasks as ``123_4``): squeue while queued or running,
    else sacct's record (which needs accounting: slurmdbd)."""
    ids = sorted({j.split("_")[0] for j in jobs})
    if not ids:
        return {}
    out = {}
    for line in _slurm(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)]).splitlines():
        if "|" in line:
            job, state = line.split("|")[:2]
            out[job] = state.split()[0] if state else ""  # "CANCELLED by 0" -> CANCELLED
    for line in _slurm(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(ids)]).splitlines():
        if "|" in line:
            job, state = line.split("|")[:2]
            out[job] = state
    return out


def _log_paths(folder: Path, job: str) -> tuple[Path, Path]:
    """submitit's stdout and stderr files of an array task (``<job>_<task>_0_log.out/.err``)."""
    logs = folder / LOG_DIR
    return logs / f"{job}_0_log.out", logs / f"{job}_0_log.err"


def _tail(paths, lines: int = 15) -> list[str]:
    out = []
    for path in paths:
        if path.exists():
            out += path.read_text(errors="replace").splitlines()
    return out[-lines:]


def seed_states(folder: Path, config: Config, known_done=frozenset()) -> list[SeedState]:
    """The state of every seed of ``config`` in results ``folder``: done from the files on disk
    (checksums verified, except for the seeds in ``known_done``), else from its SLURM job."""
    folder = Path(folder)
    meta = io.read_json(folder / layout.DATASET)
    n_test, n_classes = meta["n_images"]["test"], len(meta["classes"])
    jobs = io.read_json(folder / JOBS_FILE) if (folder / JOBS_FILE).exists() else {}
    slurm = slurm_states([j["job"] for j in jobs.values()])
    out = []
    for seed in config.seeds:
        entry = jobs.get(str(seed))
        finished = seed in known_done or seed_finished(config, folder, n_test, n_classes, seed)
        if entry is None:
            state = "done" if finished else "not submitted"
            out.append(SeedState(seed, state))
            continue
        job = entry["job"]
        now = slurm.get(job, "")
        out_log, err_log = _log_paths(folder, job)
        if finished:
            state = "done"
        elif now in RUNNING:
            state = "running"
        elif now in QUEUED or (not now and time.time() - entry.get("submitted", 0) < 120):
            state = "queued"  # just submitted: accounting may not list it yet
        else:
            state = "failed"
        out.append(SeedState(seed, state, job, now or "unknown", str(out_log),
                             _tail([out_log, err_log]) if state == "failed" else []))
    return out


def config_of(folder: Path) -> Config:
    """The Config a results folder was computed with (its config.json)."""
    fields = {k: tuple(v) if isinstance(v, list) else v
              for k, v in io.read_json(Path(folder) / layout.CONFIG).items() if k != "key"}
    return Config(**fields)


def submit(config: Config, folder: Path, seeds: list[int], partition: str | None = None,
           gpus_per_task: int = 0, time_min: int = 240, max_parallel: int = 30,
           slurm_opts: dict | None = None) -> list[str]:
    """Submit ``seeds`` as one SLURM array (train then sweep per task); returns the job ids.

    Python runs under srun (submitit's default): SLURM's ``--signal=USR2@90`` warning reaches
    only job steps, so a task run straight from the batch script would never checkpoint.
    """
    import submitit

    if shutil.which("sbatch") is None:
        raise ValueError("--executor slurm needs SLURM's sbatch on PATH (run on a login node); "
                         "--executor local runs on this machine")
    executor = submitit.SlurmExecutor(folder=folder / LOG_DIR, max_num_timeout=3)
    params = dict(job_name=f"prunecxr-{config.key}", time=int(time_min),
                  array_parallelism=int(max_parallel),
                  additional_parameters=dict(slurm_opts or {}))
    if partition:
        params["partition"] = partition
    if gpus_per_task:  # one task per job: GPUs per node = GPUs per task
        params["gpus_per_node"] = int(gpus_per_task)
    executor.update_parameters(**params)
    jobs = executor.map_array(SeedTask(config, str(folder)), seeds)
    record = io.read_json(folder / JOBS_FILE) if (folder / JOBS_FILE).exists() else {}
    now = time.time()
    for seed, job in zip(seeds, jobs):
        record[str(seed)] = {"job": job.job_id, "submitted": now}
    io.write_json(folder / JOBS_FILE, record)
    return [job.job_id for job in jobs]


def run_on_slurm(config: Config, results_root=None, partition: str | None = None,
                 gpus_per_task: int = 0, time_min: int = 240, max_parallel: int = 30,
                 slurm_opts: dict | None = None, wait: bool = True, progress: bool = True,
                 poll: float = 10.0) -> tuple[Path, list[SeedState]]:
    """Submit every seed that is neither finished nor queued or running, then (``wait``) show a
    bar over the tasks until each has ended, asking SLURM every ``poll`` seconds. Returns the
    folder and each seed's state."""
    folder, dataset = prepare_results(config, results_root)
    states = seed_states(folder, config)
    todo = [s.seed for s in states if s.state in ("not submitted", "failed")]
    if todo:
        submit(config, folder, todo, partition, gpus_per_task, time_min, max_parallel, slurm_opts)
    if not wait:
        return folder, seed_states(folder, config)
    t0 = time.perf_counter()
    bar = tqdm(total=len(config.seeds), desc="seeds on SLURM", unit="seed", disable=not progress)
    done: set[int] = set()
    while True:
        states = seed_states(folder, config, known_done=done)
        done = {s.seed for s in states if s.state == "done"}
        counts = {k: sum(s.state == k for s in states)
                  for k in ("done", "running", "queued", "failed")}
        bar.n = counts["done"] + counts["failed"]
        bar.set_postfix(counts, refresh=True)
        if counts["running"] == counts["queued"] == 0:
            break
        time.sleep(poll)
    bar.close()
    update_manifest(folder, config, dataset, "slurm", time.perf_counter() - t0)
    return folder, states


def format_states(states: list[SeedState]) -> str:
    """One line per seed (state, SLURM job and state, log), then each failure's last log lines;
    a run without SLURM jobs (local) shows seed and state only."""
    if not any(s.job for s in states):
        return "\n".join([f"{'seed':>5}  state", *(f"{s.seed:>5}  {s.state}" for s in states),
                          "(run locally: no SLURM jobs)"])
    lines = [f"{'seed':>5}  {'state':13} {'job':12} {'slurm':11} log"]
    for s in states:
        lines.append(f"{s.seed:>5}  {s.state:13} {s.job:12} {s.slurm_state:11} {s.log}")
    for s in states:
        if s.state == "failed":
            lines.append(f"\nseed {s.seed} failed (SLURM job {s.job}, {s.slurm_state}); "
                         f"last lines of {s.log}:")
            lines += [f"    {line}" for line in s.log_tail]
    return "\n".join(lines)
