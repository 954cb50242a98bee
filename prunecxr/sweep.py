"""Trained model x a method's level grid -> predicted probabilities, cached per (method, seed).

Each method (:mod:`prunecxr.compress`) walks its own grid on one working copy of the model;
global pruning is nested, so it ranks once and zeroes only the newly pruned weights per level.
The test images are held in memory once for all seeds and levels. After every level the
partial array is saved atomically, so an interrupted sweep resumes at the level where it
stopped; the finished array ``(n_levels, n_test, C)`` is written with a sidecar holding its
sha256, each level's achieved facts (level, sparsity, bits, parameters, ...) and seconds, so a
truncated or corrupt file is detected and recomputed, never silently read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from .progress import tqdm

from . import compress, io
from .batches import on_device, peak_gpu_bytes
from .config import Config
from .layout import partial_path, prediction_path, sidecar_path, verify_predictions
from .train import SplitArrays, load_trained, predict


def sweep_shape(config: Config, method: str, n_test: int, num_classes: int) -> tuple[int, int, int]:
    """Shape of one (method, seed) prediction file: (the method's levels, test images, classes)."""
    return (len(compress.grid(method, config)), n_test, num_classes)


def sweep_seed(config: Config, num_classes: int, test_images: torch.Tensor, method: str, seed: int,
               results_dir: Path, device: torch.device, progress: bool = True,
               train: SplitArrays | None = None) -> dict:
    """Probabilities of one trained model at every level of ``method``'s grid
    (:mod:`prunecxr.compress`); ``train`` is needed by methods that fine-tune."""
    path = prediction_path(results_dir, method, seed)
    nominal = compress.grid(method, config)
    shape = sweep_shape(config, method, len(test_images), num_classes)
    info = verify_predictions(path, shape)
    if info is not None:
        return info
    partial = partial_path(path)
    probs = np.full(shape, np.nan, dtype=np.float32)
    facts: list[dict] = []
    seconds = np.zeros(len(nominal))
    if partial.exists():
        try:
            with np.load(partial) as z:
                if z["probs"].shape == shape and np.allclose(z["levels"], nominal):
                    n = int(z["done"])
                    probs[:n], seconds[:n] = z["probs"][:n], z["seconds"][:n]
                    facts = json.loads(str(z["facts"]))[:n]
        except Exception as exc:  # unreadable partial: start this model's sweep again
            tqdm.write(f"{partial}: unreadable ({exc}); sweeping seed {seed} again")
            facts = []
    done = len(facts)
    model = load_trained(config, num_classes, results_dir, seed, device)
    test_images = on_device(test_images, device)  # on a GPU: once for every level
    method_at = compress.get(method)(model, config, seed, train=train, device=device)
    bar = tqdm(range(done, len(nominal)), desc=f"{method} seed {seed}", unit="level",
               position=1, leave=False, disable=not progress, initial=done, total=len(nominal))
    for i in bar:
        t0 = time.perf_counter()
        evaluated, fact = method_at.apply(nominal[i])
        probs[i] = predict(evaluated, test_images, config.eval_batch_size, device, config.precision)
        seconds[i] = time.perf_counter() - t0
        facts.append(fact)
        io.save_npz(partial, probs=probs, levels=np.asarray(nominal, dtype=float),
                    done=np.int64(i + 1), seconds=seconds, facts=np.asarray(json.dumps(facts)))
    bar.close()
    io.save_npy(path, probs)
    info = {"method": method, "seed": seed, "shape": list(shape), "unit": method_at.unit,
            "nominal": nominal, "levels": [f["level"] for f in facts],
            "achieved_sparsity": [f["sparsity"] for f in facts], "achieved": facts,
            "level_seconds": seconds.tolist(), "seconds": float(seconds.sum()),
            "sha256": io.sha256_file(path)}
    io.write_json(sidecar_path(path), info)
    partial.unlink(missing_ok=True)
    # what this call evaluated (not the levels before a resume), for the stage's throughput
    return {**info, "images_this_run": (len(nominal) - done) * len(test_images),
            "peak_gpu_bytes": peak_gpu_bytes(device)}
