"""The store's read cache (keyed by path and modification time): an unchanged file is served
from memory, a rewritten prediction file or sidecar is read again. The rewrites set their
modification time explicitly, so the test does not depend on the file system's clock
granularity (a rewrite within the same tick keeps the old mtime on some file systems)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunecxr import io, store
from prunecxr.config import load_config

CLASSES = ["a", "b", "c"]
N_TEST = 4


def results_folder(root: Path) -> Path:
    """The smallest folder ``store.load`` accepts: one method, one seed."""
    config = load_config("smoke", overrides=["methods=l1", "population=1",
                                             "sparsities=0,0.5"])
    io.write_json(root / "config.json", {**config.result_fields(), "key": config.key})
    counts = {c: 1 for c in CLASSES}
    io.write_json(root / "dataset.json", {"name": "phantom", "classes": CLASSES,
                                          "image_size": 8, "train_counts": counts,
                                          "test_counts": counts})
    np.save(root / "test_labels.npy", np.eye(N_TEST, len(CLASSES), dtype=np.uint8))
    pd.DataFrame({"patient": range(N_TEST)}).to_csv(root / "test_meta.csv", index=False)
    return root


def write_predictions(root: Path, probs: np.ndarray, achieved: list[float], mtime_s: int) -> Path:
    """Prediction file and sidecar as the sweep writes them, both stamped with ``mtime_s``."""
    path = store.prediction_path(root, "l1", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.save_npy(path, probs)
    io.write_json(path.with_suffix(".json"), {
        "method": "l1", "seed": 0, "shape": list(probs.shape), "nominal": [0.0, 0.5],
        "levels": [0.0, 0.5], "achieved_sparsity": achieved, "sha256": io.sha256_file(path)})
    for p in (path, path.with_suffix(".json")):
        os.utime(p, ns=(mtime_s * 10**9, mtime_s * 10**9))
    return path


@pytest.fixture
def folder(tmp_path):
    store._read_verified.cache_clear()
    store._read_sidecar_cached.cache_clear()
    yield results_folder(tmp_path)
    store._read_verified.cache_clear()
    store._read_sidecar_cached.cache_clear()


def probs(value: float) -> np.ndarray:
    return np.full((2, N_TEST, len(CLASSES)), value, dtype=np.float32)


def test_an_unchanged_file_comes_from_the_cache(folder):
    write_predictions(folder, probs(0.25), [0.0, 0.5], mtime_s=1_700_000_000)
    first = store.load(folder).predictions("l1", 0)
    assert store.load(folder).predictions("l1", 0) is first
    assert not first.flags.writeable  # shared between readers: read-only


def test_a_rewritten_prediction_file_is_read_again(folder):
    write_predictions(folder, probs(0.25), [0.0, 0.5], mtime_s=1_700_000_000)
    results = store.load(folder)
    assert np.all(results.predictions("l1", 0) == 0.25)
    write_predictions(folder, probs(0.75), [0.0, 0.5], mtime_s=1_700_000_001)
    assert np.all(results.predictions("l1", 0) == 0.75)
    assert np.all(store.load(folder).predictions("l1", 0) == 0.75)


def test_a_rewritten_sidecar_is_read_again(folder):
    path = write_predictions(folder, probs(0.25), [0.0, 0.5], mtime_s=1_700_000_000)
    results = store.load(folder)
    assert list(results.achieved_sparsity("l1", 0)) == [0.0, 0.5]
    side = io.read_json(path.with_suffix(".json"))
    io.write_json(path.with_suffix(".json"), {**side, "achieved_sparsity": [0.0, 0.49]})
    os.utime(path.with_suffix(".json"), ns=(1_700_000_002 * 10**9,) * 2)
    assert list(results.achieved_sparsity("l1", 0)) == [0.0, 0.49]


def test_a_file_corrupted_after_it_was_read_is_caught(folder):
    """A changed file with a new mtime goes through the checksum again (not the cached array)."""
    path = write_predictions(folder, probs(0.25), [0.0, 0.5], mtime_s=1_700_000_000)
    results = store.load(folder)
    results.predictions("l1", 0)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(1_700_000_003 * 10**9,) * 2)
    with pytest.raises(store.ResultsError):
        results.predictions("l1", 0)


def test_a_folder_without_trained_models_reads_as_empty_history_and_names_the_missing_weights(
        tmp_path):
    s = store.load(results_folder(tmp_path))
    history = s.history()
    assert history.empty and list(history.columns) == ["seed", "epoch", "train_loss",
                                                       "val_loss", "val_map"]
    with pytest.raises(store.ResultsError) as caught:
        s.state_dict(0)
    assert str(caught.value) == (f"{tmp_path / 'models' / 'seed_000' / 'best.pt'} is missing; "
                                 "rerun the pipeline to train seed 0")
