"""End to end on the smoke profile: store contents, determinism, resume after SIGKILL,
stale-cache protection, corrupt-file detection, CLI errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from checkout import checkout_env
from prunecxr.config import load_config
from prunecxr.io import read_json
from prunecxr.pipeline import ensure_results
from prunecxr.store import ResultsError, load
from prunecxr.sweep import prediction_path

pytestmark = pytest.mark.slow


def test_store_contents(smoke_store):
    s = smoke_store
    n, C = s.labels.shape
    assert C == len(s.classes) == 20 and n == len(s.meta) > 0
    assert set(s.meta["split"]) == {"test"}
    assert list(s.sparsities) == list(load_config("smoke").sparsities)
    assert s.methods == list(load_config("smoke").methods) and len(s.seeds) == 3
    assert s.grid_methods == ["l1", "random", "local_l1"]
    for method in s.methods:
        levels = s.levels(method)
        assert levels[0] == 0 and np.all(np.diff(levels) > 0)
        for seed in s.seeds:
            p = s.predictions(method, seed)
            assert p.shape == (len(levels), n, C) and p.dtype == np.float32
            assert np.all((p >= 0) & (p <= 1))
            if method in s.grid_methods:
                assert np.allclose(s.achieved_sparsity(method, seed), s.sparsities, atol=1e-3)
    np.testing.assert_allclose(s.levels("quant"), [0, 1 - 8 / 32, 1 - 4 / 32, 1 - 2 / 32])
    assert s.levels("l1_ft").tolist() == [0.0, 0.5, 0.9]
    facts = s.level_facts("channel_l1")
    assert all(g["params"].is_monotonic_decreasing for _, g in facts.groupby("seed"))
    assert set(s.sweep_seconds()["method"]) == set(s.methods)
    ap = s.ap_table()
    assert list(ap.columns) == ["method", "seed", "sparsity", "level", "class", "ap"]
    assert len(ap) == sum(len(s.levels(m)) * len(s.method_seeds(m)) for m in s.methods) * C
    assert ap.loc[ap.method.isin(s.grid_methods), "sparsity"].notna().all()
    assert ap.loc[~ap.method.isin(s.grid_methods), "sparsity"].isna().all()
    assert set(s.ap_table(["quant"])["method"]) == {"quant"}
    with pytest.raises(KeyError, match="not in this store"):
        s.ap_table(["nope"])
    # one cell against scikit-learn, and one of a method with its own grid
    p = s.predictions("l1", s.seeds[1])[3]
    c = int(np.argmax(s.labels.sum(0)))
    row = ap[(ap.method == "l1") & (ap.seed == s.seeds[1]) & np.isclose(ap.sparsity, s.sparsities[3])
             & (ap["class"] == s.classes[c])]
    assert row["ap"].item() == pytest.approx(average_precision_score(s.labels[:, c], p[:, c]))
    q = s.predictions("quant", s.seeds[0])[2]
    row = ap[(ap.method == "quant") & (ap.seed == s.seeds[0]) & np.isclose(ap.level, s.levels("quant")[2])
             & (ap["class"] == s.classes[c])]
    assert row["ap"].item() == pytest.approx(average_precision_score(s.labels[:, c], q[:, c]))
    hist = s.history()
    assert {"seed", "epoch", "train_loss", "val_loss", "val_map"} <= set(hist.columns)
    assert set(hist.seed) == set(s.seeds)
    assert s.prunable_weights(s.seeds[0]).ndim == 1
    assert s.test_images().shape[0] == n
    m = s.manifest
    assert {"data", "train", "sweep"} <= set(m["stages"]) and m["versions"]["torch"]
    # throughput: every epoch of every seed saw the training split once, every level the test set
    n_train = read_json(s.results_dir / "dataset.json")["n_images"]["train"]
    train, sweep = m["rates"]["train"], m["rates"]["sweep"]
    assert train["images"] == n_train * len(hist) and train["seconds"] == m["stages"]["train"]
    assert sweep["images"] == n * sum(len(s.levels(mm)) * len(s.method_seeds(mm)) for mm in s.methods)
    assert sweep["images_per_s"] == pytest.approx(sweep["images"] / m["stages"]["sweep"])
    assert train["peak_gpu_bytes"] is None  # a CPU run
    assert s.train_counts.index.tolist() == s.classes


def _files(folder: Path) -> dict:
    """Every result file's modification time (the manifest is rewritten on every call)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name != "manifest.json"}


def test_rerun_recomputes_nothing_and_changed_parameter_recomputes(smoke_results, tmp_path,
                                                                   monkeypatch):
    """An unchanged configuration trains and sweeps nothing and rewrites no result; a changed
    parameter gets its own folder, really trains and sweeps again, and leaves the unchanged
    configuration's folder as it was."""
    import shutil

    from prunecxr import pipeline

    root = tmp_path / "root"
    folder = root / smoke_results.name
    shutil.copytree(smoke_results, folder)          # keep the session's smoke results pristine
    calls = []
    real_train, real_sweep = pipeline.train_seed, pipeline.sweep_seed

    def train_spy(config, C, train, val, seed, *args, **kwargs):
        calls.append(("train", config.key, seed))
        return real_train(config, C, train, val, seed, *args, **kwargs)

    def sweep_spy(config, C, test, method, seed, *args, **kwargs):
        calls.append(("sweep", config.key, method, seed))
        return real_sweep(config, C, test, method, seed, *args, **kwargs)

    monkeypatch.setattr(pipeline, "train_seed", train_spy)
    monkeypatch.setattr(pipeline, "sweep_seed", sweep_spy)
    in_process = ["workers=1"] if hasattr(load_config("smoke"), "workers") else []  # spies see it

    before = _files(folder)
    smoke = load_config("smoke", overrides=in_process)
    assert ensure_results(smoke, results_root=root, progress=False) == folder
    assert calls == [] and _files(folder) == before

    other = load_config("smoke", overrides=["lr=0.002", "population=1", "methods=l1",
                                            *in_process])
    assert other.key != smoke.key
    new = ensure_results(other, results_root=root, progress=False)
    assert new != folder and new.parent == root
    assert calls == [("train", other.key, 0), ("sweep", other.key, "l1", 0)]
    a = torch.load(new / "models/seed_000/best.pt", weights_only=True)
    b = torch.load(folder / "models/seed_000/best.pt", weights_only=True)
    assert any(not torch.equal(a[k], b[k]) for k in a)          # the new lr really trained
    assert not np.array_equal(np.load(prediction_path(new, "l1", 0)),
                              np.load(prediction_path(folder, "l1", 0)))
    assert _files(folder) == before                              # the old folder untouched

    calls.clear()                                                # both cached now
    new_files = _files(new)
    assert ensure_results(other, results_root=root, progress=False) == new
    assert ensure_results(smoke, results_root=root, progress=False) == folder
    assert calls == [] and _files(new) == new_files and _files(folder) == before


def test_training_is_deterministic_per_seed(smoke_results, tmp_path):
    cfg = load_config("smoke", overrides=["population=1", "methods=l1"])
    folder = ensure_results(cfg, results_root=tmp_path, progress=False)
    a = torch.load(folder / "models/seed_000/best.pt", weights_only=True)
    b = torch.load(smoke_results / "models/seed_000/best.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(np.load(prediction_path(folder, "l1", 0)),
                          np.load(prediction_path(smoke_results, "l1", 0)))


# A smaller population and one method: each seed's training and sweep do not depend on them,
# so the predictions must still equal the smoke run's for the seeds and method they share.
RESUME_SETTINGS = ["--set", "population=2", "--set", "methods=l1"]


def _run(root: Path, kill_when=None) -> int:
    cmd = [sys.executable, "-m", "prunecxr", "run", "--profile", "smoke", "--quiet",
           "--results-dir", str(root), *RESUME_SETTINGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=checkout_env())
    if kill_when is None:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        return proc.returncode
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if kill_when():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return -9
        time.sleep(0.02)
    proc.wait()
    pytest.fail("process finished before it could be killed")


def test_resume_after_sigkill_matches_uninterrupted(smoke_results, tmp_path):
    root = tmp_path / "killed"
    # kill mid-training: as soon as the first epoch checkpoint of the second seed exists
    assert _run(root, lambda: any(root.glob("*/models/seed_001/last.pt"))) == -9
    # kill mid-sweep: as soon as a partial sweep file exists
    assert _run(root, lambda: any(root.glob("*/predictions/*/*.partial.npz"))) == -9
    _run(root)
    (folder,) = list(root.iterdir())
    for seed in (0, 1):
        a = np.load(prediction_path(folder, "l1", seed))
        b = np.load(prediction_path(smoke_results, "l1", seed))
        assert np.array_equal(a, b), seed
    assert not list(folder.rglob("*.partial.npz")) and not list(folder.rglob("last.pt"))


def test_corrupt_predictions_are_detected_and_recomputed(smoke_results, tmp_path):
    import shutil

    folder = tmp_path / smoke_results.name
    shutil.copytree(smoke_results, folder)
    target = prediction_path(folder, "l1", 1)
    good = np.load(target)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ResultsError, match="truncated"):
        load(folder).predictions("l1", 1)
    again = ensure_results(load_config("smoke"), results_root=tmp_path, progress=False)
    assert again == folder
    assert np.array_equal(np.load(target), good)
    # a flipped byte with the right length is caught by the checksum too
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(ResultsError):
        load(folder).predictions("l1", 1)


def test_cli_errors_name_the_parameter(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "prunecxr", "run", *args],
                              capture_output=True, text=True, timeout=120, env=checkout_env())
    r = run("--profile", "huge")
    assert r.returncode == 2 and "profile must be one of" in r.stderr
    r = run("--profile", "smoke", "--set", "popuation=2")
    assert r.returncode == 2 and "unknown parameter 'popuation'" in r.stderr and "population" in r.stderr
    r = run("--profile", "smoke", "--dataset", "nih-cxr-lt", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "miccai2023_nih-cxr-lt_labels_train.csv" in r.stderr
