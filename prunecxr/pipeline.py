"""The main job: config -> dataset -> trained population -> pruning sweep -> results folder.

``ensure_results`` computes only what is missing. The results folder is named by the
configuration key and the dataset identity, so a changed parameter or changed data never
reuses stale results and an unchanged one never recomputes.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__, io
from .config import Config
from .data import Dataset, get_dataset
from .paths import results_root as default_results_root
from .sweep import prediction_path, sweep_seed, verify_predictions
from .train import SplitArrays, is_trained, resolve_device, train_seed

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scipy", "statsmodels", "matplotlib")
# Test images are copied into the results folder up to this size; larger sets are referenced.
COPY_IMAGES_LIMIT = 256 * 2**20


def results_dir_for(config: Config, dataset: Dataset, results_root: str | Path | None = None) -> Path:
    root = Path(results_root) if results_root else default_results_root()
    return root / f"{config.profile}-{config.dataset}-{config.key}-{dataset.identity[:8]}"


def write_dataset_files(folder: Path, config: Config, dataset: Dataset) -> None:
    """What the store needs to know about the data, written once per results folder."""
    if (folder / "dataset.json").exists():
        return
    test = dataset.indices("test")
    io.save_npy(folder / "test_labels.npy", dataset.labels[test])
    with io.atomic_path(folder / "test_meta.csv") as tmp:
        dataset.split_meta("test").to_csv(tmp, index=False)
    images = dataset.images("test")
    copied = images.nbytes <= COPY_IMAGES_LIMIT
    if copied:
        io.save_npy(folder / "test_images.npy", images)
    io.write_json(folder / "config.json", {**config.result_fields(), "key": config.key})
    io.write_json(folder / "dataset.json", {
        "name": dataset.name, "identity": dataset.identity, "classes": list(dataset.classes),
        "image_size": dataset.image_size,
        "n_images": {s: int(len(dataset.indices(s))) for s in ("train", "val", "test")},
        "train_counts": dataset.counts("train").to_dict(),
        "val_counts": dataset.counts("val").to_dict(),
        "test_counts": dataset.counts("test").to_dict(),
        "test_images": "test_images.npy" if copied else None,
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


def _update_manifest(folder: Path, config: Config, dataset: Dataset, stage: str, seconds: float) -> None:
    path = folder / "manifest.json"
    manifest = io.read_json(path) if path.exists() else {"stages": {}}
    stages = manifest.get("stages", {})
    stages[stage] = stages.get(stage, 0.0) + seconds
    manifest.update(environment())
    manifest.update({"config": {**config.result_fields(), "key": config.key,
                                "device": config.device, "threads": config.threads},
                     "dataset": {"name": dataset.name, "identity": dataset.identity},
                     "stages": stages, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    io.write_json(path, manifest)


def ensure_results(config: Config, results_root: str | Path | None = None, progress: bool = True) -> Path:
    """Compute whatever is missing for ``config`` and return its results folder."""
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    t0 = time.perf_counter()
    dataset = get_dataset(config.dataset, **config.dataset_options())
    folder = results_dir_for(config, dataset, results_root)
    write_dataset_files(folder, config, dataset)
    _update_manifest(folder, config, dataset, "data", time.perf_counter() - t0)
    C = len(dataset.classes)

    seeds = config.seeds
    t0 = time.perf_counter()
    pending = [s for s in seeds if not is_trained(folder, s)]
    if pending:
        train = SplitArrays.from_dataset(dataset, "train")
        val = SplitArrays.from_dataset(dataset, "val")
        for seed in tqdm(pending, desc="training population", unit="model", disable=not progress):
            train_seed(config, C, train, val, seed, folder, device, progress)
        _update_manifest(folder, config, dataset, "train", time.perf_counter() - t0)

    t0 = time.perf_counter()
    shape = (len(config.sparsities), len(dataset.indices("test")), C)
    jobs = [(m, s) for m in config.methods for s in seeds
            if verify_predictions(prediction_path(folder, m, s), shape) is None]
    if jobs:
        test_images = torch.from_numpy(np.ascontiguousarray(dataset.images("test")))
        for method, seed in tqdm(jobs, desc="pruning sweep", unit="model", disable=not progress):
            sweep_seed(config, C, test_images, method, seed, folder, device, progress)
        _update_manifest(folder, config, dataset, "sweep", time.perf_counter() - t0)
    return folder
