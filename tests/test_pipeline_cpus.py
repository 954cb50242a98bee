"""The smoke pipeline end to end under other CPU kernels: what must hold on every CPU.

Training's bits depend on the CPU's vector kernels, so no test pins them across machines (the
chapters' references run on frozen results instead, ``test_notebooks_nbval.py``). Here the
smoke pipeline runs in a subprocess under torch's baseline kernels (``ATEN_CPU_CAPABILITY=
default``, read when torch loads, so only a fresh interpreter can take it), with two seeds, two
methods and four sparsities, and must give what the native run gives wherever bits do not matter: every stage
finished, the same data, levels, shapes and achieved sparsities, metrics equal to
scikit-learn's on its own predictions; and, rerun under the same kernels, identical bits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from checkout import checkout_env
from prunecxr.io import read_json
from prunecxr.store import load

pytestmark = pytest.mark.slow

SPARSITIES = [0.0, 0.3, 0.6, 0.9]  # a short grid: the invariants, not the curve
SETTINGS = ["--set", "population=2", "--set", "methods=l1,quant",
            "--set", "sparsities=" + ",".join(map(str, SPARSITIES))]


def _run(root: Path, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "prunecxr", "run", "--profile", "smoke",
                           "--quiet", "--results-dir", str(root), *SETTINGS],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_smoke_pipeline_under_baseline_kernels(smoke_store, tmp_path):
    env = checkout_env(ATEN_CPU_CAPABILITY="default")
    used = subprocess.run([sys.executable, "-c", "import torch; "
                           "print(torch.backends.cpu.get_cpu_capability())"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert used.stdout.split()[-1] == "DEFAULT", used.stderr[-2000:]

    root = tmp_path / "root"
    _run(root, env)
    (folder,) = list(root.iterdir())
    s, native = load(folder), smoke_store
    # finished: every stage, every seed trained, every prediction verified by its checksum
    assert {"data", "train", "sweep"} <= set(s.manifest["stages"])
    assert len(s.training_summary()) == len(s.seeds) == 2 and s.methods == ["l1", "quant"]
    # the same data, levels and shapes as the native run
    assert s.classes == native.classes and np.array_equal(s.labels, native.labels)
    assert s.sparsities.tolist() == SPARSITIES
    np.testing.assert_allclose(s.levels("l1"), SPARSITIES, atol=1e-9)
    np.testing.assert_array_equal(s.levels("quant"), native.levels("quant"))
    for method in s.methods:
        for seed in s.seeds:
            p = s.predictions(method, seed)
            assert p.shape == (len(s.levels(method)), *native.labels.shape)
            assert p.dtype == np.float32
            assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    for seed in s.seeds:
        np.testing.assert_allclose(s.achieved_sparsity("l1", seed), s.sparsities, atol=1e-3)
    # metrics equal to scikit-learn's on this run's own predictions
    ap, auc = s.ap_table(["l1"]), s.auroc_table(["l1"])
    seed, level = s.seeds[1], 2
    p = s.predictions("l1", seed)[level]
    rows = (ap.seed == seed) & np.isclose(ap.sparsity, s.sparsities[level])
    for c, name in enumerate(s.classes):
        y = s.labels[:, c]
        if 0 < y.sum() < len(y):
            assert ap.loc[rows & (ap["class"] == name), "ap"].item() == pytest.approx(
                average_precision_score(y, p[:, c]))
            assert auc.loc[rows & (auc["class"] == name), "auroc"].item() == pytest.approx(
                roc_auc_score(y, p[:, c]))

    # under the same kernels, a seed trained and swept again gives identical bits, and the
    # rerun recomputes only that seed
    kept = {p: p.read_bytes() for p in folder.rglob("seed_001*") if p.is_file()}
    kept_model = torch.load(folder / "models/seed_001/best.pt", weights_only=True)
    untouched = {p: p.stat().st_mtime_ns for p in [*folder.rglob("seed_000.*"),
                                                    *(folder / "models/seed_000").iterdir()]}
    shutil.rmtree(folder / "models/seed_001")
    for p in kept:
        p.unlink(missing_ok=True)
    _run(root, env)
    again = torch.load(folder / "models/seed_001/best.pt", weights_only=True)
    assert all(torch.equal(again[k], kept_model[k]) for k in kept_model)
    for p, data in kept.items():
        if p.suffix == ".npy":
            assert p.read_bytes() == data, p
        elif p.suffix == ".json":
            assert read_json(p)["sha256"] == json.loads(data)["sha256"], p
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
