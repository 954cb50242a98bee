"""Seeds side by side: ``workers=2`` gives the same bits as one process, and a control method
swept on fewer seeds (``control_population``) is read back for exactly those seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunecxr.config import load_config
from prunecxr.pipeline import ensure_results
from prunecxr.store import load
from prunecxr.sweep import prediction_path

pytestmark = pytest.mark.slow


def test_two_workers_match_one_process_and_controls_use_fewer_seeds(tmp_path):
    overrides = ["population=2", "control_population=1", "threads=1", "data.n_images=300",
                 "sparsities=0,0.5,0.9"]
    one = ensure_results(load_config("smoke", overrides=[*overrides, "workers=1"]),
                         results_root=tmp_path / "one", progress=False)
    two = ensure_results(load_config("smoke", overrides=[*overrides, "workers=2"]),
                         results_root=tmp_path / "two", progress=False)
    assert one.name == two.name  # workers is an execution knob: same key
    for seed in (0, 1):
        a = torch.load(one / f"models/seed_{seed:03d}/best.pt", weights_only=True)
        b = torch.load(two / f"models/seed_{seed:03d}/best.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert np.array_equal(np.load(prediction_path(one, "l1", seed)),
                              np.load(prediction_path(two, "l1", seed)))
    assert prediction_path(two, "random", 0).exists()
    assert not prediction_path(two, "random", 1).exists()
    store = load(two)
    assert store.method_seeds("l1") == [0, 1] and store.method_seeds("random") == [0]
    ap = store.ap_table()
    assert sorted(ap[ap["method"] == "random"]["seed"].unique()) == [0]
    assert sorted(ap[ap["method"] == "l1"]["seed"].unique()) == [0, 1]
    with pytest.raises(KeyError, match="not swept with 'random'"):
        store.predictions("random", 1)
