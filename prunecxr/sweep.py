"""Trained model x sparsity grid -> predicted probabilities, cached per (method, seed).

Global pruning is nested (the pruned set at a higher sparsity contains the one at a lower), so
each model is ranked once and the grid is walked upward on one working copy, zeroing only the
newly pruned weights at each level. The test images are held in memory once for all seeds and
levels. After every level the partial array is saved atomically, so an interrupted sweep
resumes at the level where it stopped; the finished array ``(n_sparsities, n_test, C)`` is
written with a sidecar holding its sha256, so a truncated or corrupt file is detected and
recomputed, never silently read.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import io
from .config import Config
from .prune import NestedPruner
from .train import load_trained, predict


def prediction_path(results_dir: Path, method: str, seed: int) -> Path:
    return Path(results_dir) / "predictions" / method / f"seed_{seed:03d}.npy"


def verify_predictions(path: Path, shape: tuple[int, ...] | None = None) -> dict | None:
    """The sidecar of a finished prediction file if the file is intact, else None."""
    side = path.with_suffix(".json")
    if not (path.exists() and side.exists()):
        return None
    try:
        info = io.read_json(side)
    except ValueError:
        return None
    if info.get("sha256") != io.sha256_file(path):
        return None
    if shape is not None and tuple(info.get("shape", ())) != tuple(shape):
        return None
    return info


def sweep_seed(config: Config, num_classes: int, test_images: torch.Tensor, method: str, seed: int,
               results_dir: Path, device: torch.device, progress: bool = True) -> dict:
    """Probabilities of one trained model at every sparsity of ``config.sparsities``."""
    path = prediction_path(results_dir, method, seed)
    levels = list(config.sparsities)
    shape = (len(levels), len(test_images), num_classes)
    info = verify_predictions(path, shape)
    if info is not None:
        return info
    partial = path.with_suffix(".partial.npz")
    probs = np.full(shape, np.nan, dtype=np.float32)
    achieved = np.full(len(levels), np.nan)
    done, seconds = 0, 0.0
    if partial.exists():
        try:
            with np.load(partial) as z:
                if z["probs"].shape == shape and np.allclose(z["levels"], levels):
                    done = int(z["done"])
                    probs[:done], achieved[:done] = z["probs"][:done], z["achieved"][:done]
                    seconds = float(z["seconds"])
        except Exception as exc:  # unreadable partial: start this model's sweep again
            tqdm.write(f"{partial}: unreadable ({exc}); sweeping seed {seed} again")
            done = 0
    model = load_trained(config, num_classes, results_dir, seed, device)
    pruner = NestedPruner(model, method, seed=seed, levels=levels)
    bar = tqdm(range(done, len(levels)), desc=f"{method} seed {seed}", unit="level",
               position=1, leave=False, disable=not progress, initial=done, total=len(levels))
    for i in bar:
        t0 = time.perf_counter()
        achieved[i] = pruner.prune_to(levels[i]).sparsity
        probs[i] = predict(model, test_images, config.eval_batch_size, device, config.precision)
        seconds += time.perf_counter() - t0
        io.save_npz(partial, probs=probs, achieved=achieved, levels=np.asarray(levels),
                    done=np.int64(i + 1), seconds=np.float64(seconds))
    bar.close()
    io.save_npy(path, probs)
    info = {"method": method, "seed": seed, "shape": list(shape), "sparsities": levels,
            "achieved_sparsity": achieved.tolist(), "seconds": seconds,
            "sha256": io.sha256_file(path)}
    io.write_json(path.with_suffix(".json"), info)
    partial.unlink(missing_ok=True)
    return info
