"""The main job: config -> dataset -> trained population -> pruning sweep -> results folder.

``ensure_results`` computes only what is missing. The results folder is named by the
configuration key and the dataset identity, so a changed parameter or changed data never
reuses stale results and an unchanged one never recomputes.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from .progress import tqdm

from . import __version__, io, layout
from .compress import needs_train
from .config import Config, ladder
from .data import Dataset, get_dataset
from .layout import prediction_path, verify_predictions
from .paths import results_root as default_results_root
from .sweep import sweep_seed, sweep_shape
from .train import SplitArrays, is_trained, resolve_device, train_seed

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scipy", "statsmodels", "matplotlib")
# Test images are copied into the results folder up to this size; larger sets are referenced.
COPY_IMAGES_LIMIT = 256 * 2**20


def results_dir_for(config: Config, dataset: Dataset, results_root: str | Path | None = None) -> Path:
    """The results folder of ``config`` on ``dataset`` under ``results_root`` (default: the
    prunecxr home's), named by :func:`prunecxr.layout.folder_name`."""
    root = Path(results_root) if results_root else default_results_root()
    return root / layout.folder_name(config.profile, config.dataset, config.key, dataset.identity)


def write_dataset_files(folder: Path, config: Config, dataset: Dataset) -> None:
    """What the store needs to know about the data, written once per results folder."""
    if (folder / layout.DATASET).exists():
        return
    test = dataset.indices("test")
    io.save_npy(folder / layout.TEST_LABELS, dataset.labels[test])
    with io.atomic_path(folder / layout.TEST_META) as tmp:
        dataset.split_meta("test").to_csv(tmp, index=False)
    images = dataset.images("test")
    copied = images.nbytes <= COPY_IMAGES_LIMIT
    if copied:
        io.save_npy(folder / layout.TEST_IMAGES, images)
    io.write_json(folder / layout.CONFIG, {**config.result_fields(), "key": config.key})
    io.write_json(folder / layout.DATASET, {
        "name": dataset.name, "identity": dataset.identity, "classes": list(dataset.classes),
        "image_size": dataset.image_size,
        "n_images": {s: int(len(dataset.indices(s))) for s in ("train", "val", "test")},
        "train_counts": dataset.counts("train").to_dict(),
        "val_counts": dataset.counts("val").to_dict(),
        "test_counts": dataset.counts("test").to_dict(),
        "test_images": layout.TEST_IMAGES if copied else None,
        "images_path": str(dataset.images_path), "test_indices_in_dataset": test.tolist(),
    })


def environment() -> dict:
    """Package versions and machine facts for the manifest."""
    versions = {"prunecxr": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    machine = {"platform": platform.platform(), "processor": platform.processor(),
               "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    return {"versions": versions, "machine": machine}


def update_manifest(folder: Path, config: Config, dataset: Dataset, stage: str, seconds: float,
                    infos: list[dict] | None = None) -> None:
    """Add ``seconds`` to the stage's time in the folder's manifest (a stage run again, e.g.
    resumed, adds up; :mod:`prunecxr.cluster` records its ``slurm`` stage here too); with the
    stage's job ``infos``, also its throughput: the images its jobs processed (training images
    per epoch, test images per level) per second of the stage's wall time, and the largest
    peak GPU memory of a job."""
    path = folder / layout.MANIFEST
    manifest = io.read_json(path) if path.exists() else {"stages": {}}
    stages = manifest.get("stages", {})
    stages[stage] = stages.get(stage, 0.0) + seconds
    if infos is not None:
        rates = manifest.setdefault("rates", {})
        rate = rates.get(stage, {"images": 0, "seconds": 0.0, "peak_gpu_bytes": None})
        rate["images"] += sum(i.get("images_this_run", 0) for i in infos)
        rate["seconds"] += seconds
        rate["images_per_s"] = rate["images"] / max(rate["seconds"], 1e-9)
        peaks = [rate["peak_gpu_bytes"], *(i.get("peak_gpu_bytes") for i in infos)]
        rate["peak_gpu_bytes"] = max((p for p in peaks if p is not None), default=None)
        rates[stage] = rate
    manifest.update(environment())
    manifest.update({"config": {**config.result_fields(), "key": config.key,
                                "device": config.device, "threads": config.threads},
                     "dataset": {"name": dataset.name, "identity": dataset.identity},
                     "stages": stages, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    io.write_json(path, manifest)


class Task(NamedTuple):
    """One job of a stage: a seed to train, or a (method, seed) to sweep, of one population."""

    config: Config
    folder: Path
    job: Any  # seed (train) or (method, seed) (sweep)


# Per-process state of a worker: the data every job of one stage needs, loaded once per process
# (the populations of one stage share their data: the rungs of a ladder differ in width alone).
_WORKER: dict = {}


def _init_worker(config: Config, stage: str, epochs=None, threads: int = 0, gpus=None,
                 fine_tunes: bool = False) -> None:
    if threads:
        torch.set_num_threads(threads)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    device = resolve_device(config.device)
    if gpus is not None:  # one worker per GPU: this process takes the next free one
        device = torch.device("cuda", gpus.get())
        torch.cuda.set_device(device)
    _WORKER.update(C=len(dataset.classes), device=device, epochs=epochs)
    if stage == "train":
        _WORKER.update(train=SplitArrays.from_dataset(dataset, "train"),
                       val=SplitArrays.from_dataset(dataset, "val"))
    else:
        _WORKER["test"] = torch.from_numpy(np.ascontiguousarray(dataset.images("test")))
        if fine_tunes:  # a method of the stage trains (l1_ft) or reads training images
            _WORKER["train"] = SplitArrays.from_dataset(dataset, "train")


def _train_job(task: Task, progress: bool = False) -> dict:
    w = _WORKER
    on_epoch = w["epochs"].put if w["epochs"] is not None else None
    return train_seed(task.config, w["C"], w["train"], w["val"], task.job, task.folder,
                      w["device"], progress, on_epoch=on_epoch)


def _sweep_job(task: Task, progress: bool = False) -> dict:
    w = _WORKER
    method, seed = task.job
    return sweep_seed(task.config, w["C"], w["test"], method, seed, task.folder, w["device"],
                      progress, train=w.get("train"))


def _run_stage(stage: str, tasks: list[Task], progress: bool) -> list[dict]:
    """Run the stage's tasks in this process, or in the first task's ``workers`` processes.

    Each task (one seed, or one method and seed, of one population) is independent and writes
    only its own files, so results do not depend on how tasks are spread; with several workers
    each process gets ``threads`` (default: cores / workers) intra-op threads, or on CUDA its
    own GPU (worker i takes GPU i modulo the visible count), and the task-level bar shows the
    latest epoch any worker finished. Returns what each task returned, in the order they
    finished (each with its task under ``"task"``).
    """
    config = tasks[0].config  # the data, device and workers of every task
    fn = _train_job if stage == "train" else _sweep_job
    desc = "training population" if stage == "train" else "pruning sweep"
    bar = tqdm(total=len(tasks), desc=desc, unit="model", disable=not progress)
    infos: list[dict] = []
    fine_tunes = stage == "sweep" and any(needs_train(t.job[0]) for t in tasks)
    if min(config.workers, len(tasks)) == 1:
        _init_worker(config, stage, fine_tunes=fine_tunes)
        try:
            for task in tasks:
                _report(stage, task, fn(task, progress), bar, infos)
        finally:
            _WORKER.clear()
            bar.close()
        return infos
    ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
    with ctx.Manager() as manager:
        epochs = manager.Queue() if stage == "train" else None
        procs = min(config.workers, len(tasks))
        threads = config.threads or max(1, (os.cpu_count() or 1) // procs)
        gpus = None
        if resolve_device(config.device).type == "cuda":
            gpus = manager.Queue()
            for i in range(procs):
                gpus.put(i % torch.cuda.device_count())
        pool = ProcessPoolExecutor(procs, mp_context=ctx, initializer=_init_worker,
                                   initargs=(config, stage, epochs, threads, gpus, fine_tunes))
        with pool:
            _collect(pool, fn, tasks, stage, epochs, bar, infos)
    bar.close()
    return infos


def _collect(pool, fn, tasks: list[Task], stage: str, epochs, bar, infos: list) -> None:
    """Submit every task, report each as it finishes and the workers' epochs as they come."""
    futures = {pool.submit(fn, task): task for task in tasks}
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        _show_epochs(epochs, bar)
        for future in done:
            _report(stage, futures[future], future.result(), bar, infos)


def _show_epochs(epochs, bar) -> None:
    """Show the newest epoch the workers reported (seed, epoch, validation mAP) on the bar."""
    row = None
    while epochs is not None and not epochs.empty():
        row = epochs.get_nowait()
    if row is not None:
        bar.set_postfix_str(f"seed {row['seed']} epoch {row['epoch']}: val mAP {row['val_map']:.3f}")


def _report(stage: str, task: Task, info: dict, bar, infos: list) -> None:
    if stage == "train" and not bar.disable:
        stop = "stopped early" if info.get("stopped_early") else "hit the epoch cap"
        bar.write(f"width {task.config.width} seed {task.job}: {info['epochs']} epochs, best "
                  f"epoch {info['best_epoch']}, {stop}, {info['seconds']:.0f} s")
    infos.append({**info, "task": task})
    bar.update(1)


def prepare_results(config: Config, results_root: str | Path | None = None) -> tuple[Path, Dataset]:
    """The results folder of ``config`` with its dataset files written (the data stage)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    dataset = get_dataset(config.dataset, **config.dataset_options())
    folder = results_dir_for(config, dataset, results_root)
    write_dataset_files(folder, config, dataset)
    update_manifest(folder, config, dataset, "data", time.perf_counter() - t0)
    return folder, dataset


def missing_sweeps(config: Config, folder: Path, n_test: int, n_classes: int,
                   seeds=None) -> list[tuple[str, int]]:
    """(method, seed) pairs whose predictions are missing or fail their checksum."""
    return [(m, s) for m in config.methods for s in config.method_seeds(m)
            if (seeds is None or s in seeds) and verify_predictions(
                prediction_path(folder, m, s), sweep_shape(config, m, n_test, n_classes)) is None]


def seed_finished(config: Config, folder: Path, n_test: int, n_classes: int, seed: int) -> bool:
    """Whether ``seed`` is trained and swept with every method that uses it."""
    return is_trained(folder, seed) and not missing_sweeps(config, folder, n_test, n_classes, [seed])


def run_seed(config: Config, folder: Path, seed: int, progress: bool = False) -> dict:
    """All the work of one seed: train it (resuming from its last epoch), then sweep it with
    every method that uses it. A cluster task runs this; returns the seed's done.json."""
    if config.threads:
        torch.set_num_threads(config.threads)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    device = resolve_device(config.device)
    C = len(dataset.classes)
    train = SplitArrays.from_dataset(dataset, "train")
    info = train_seed(config, C, train, SplitArrays.from_dataset(dataset, "val"), seed, folder,
                      device, progress)
    jobs = missing_sweeps(config, folder, len(dataset.indices("test")), C, [seed])
    if jobs:
        test = torch.from_numpy(np.ascontiguousarray(dataset.images("test")))
        for method, s in jobs:
            sweep_seed(config, C, test, method, s, folder, device, progress, train=train)
    return info


def ensure_results(config: Config, results_root: str | Path | None = None, progress: bool = True) -> Path:
    """Compute whatever is missing for ``config`` and return its results folder."""
    return ensure_populations([config], results_root, progress)[0]


def ensure_ladder(config: Config, results_root: str | Path | None = None,
                  progress: bool = True) -> dict[int, Path]:
    """Compute whatever is missing of ``config``'s capacity ladder (:func:`prunecxr.config.ladder`):
    every rung's results folder, by width (empty without ``widths``). The rungs' seeds train,
    and then sweep, side by side in one pool, the widest first."""
    rungs = ladder(config)
    return dict(zip((r.width for r in rungs), ensure_populations(rungs, results_root, progress)))


def ensure_populations(configs: list[Config], results_root: str | Path | None = None,
                       progress: bool = True) -> list[Path]:
    """Compute whatever is missing for each of ``configs`` (populations on the same data) and
    return their results folders. Each stage runs the populations' jobs in one pool, the
    longest (widest model, fine-tuning) first; each folder's manifest gets the stage's wall
    time split by its jobs' share of the work."""
    if not configs:
        return []
    prepared = [prepare_results(c, results_root) for c in configs]
    folders = [folder for folder, _ in prepared]
    dataset = prepared[0][1]
    n_test, C = len(dataset.indices("test")), len(dataset.classes)
    train = [Task(c, f, s) for c, f in zip(configs, folders) for s in c.seeds
             if not is_trained(f, s)]
    train.sort(key=lambda t: -t.config.width)
    _run_tasks("train", train, prepared, progress)
    sweep = [Task(c, f, job) for c, f in zip(configs, folders)
             for job in missing_sweeps(c, f, n_test, C)]
    sweep.sort(key=lambda t: (not needs_train(t.job[0]), -t.config.width))  # fine-tuning first
    _run_tasks("sweep", sweep, prepared, progress)
    return folders


def _run_tasks(stage: str, tasks: list[Task], prepared: list, progress: bool) -> None:
    """:func:`_run_stage`, then each population's manifest: its share of the stage's wall time
    (by its tasks' own seconds) and its tasks' throughput."""
    if not tasks:
        return
    t0 = time.perf_counter()
    infos = _run_stage(stage, tasks, progress)
    wall = time.perf_counter() - t0
    total = sum(i.get("seconds", 0.0) for i in infos) or 1.0
    for folder, dataset in prepared:
        mine = [i for i in infos if i["task"].folder == folder]
        if mine:
            share = sum(i.get("seconds", 0.0) for i in mine) / total
            update_manifest(folder, mine[0]["task"].config, dataset, stage, wall * share,
                            [{k: v for k, v in i.items() if k != "task"} for i in mine])
