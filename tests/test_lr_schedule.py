"""Learning-rate schedules: plateau (lr x0.1 after an epoch without a lower validation loss)
and cosine (half a cosine to 1% over ``lr_epochs``), recorded in the history, and resumed
exactly from ``last.pt`` after an interruption."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from prunecxr import train
from prunecxr.config import load_config

CPU = torch.device("cpu")
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


def data(n: int, seed: int) -> train.SplitArrays:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 16, 16), generator=gen, dtype=torch.uint8)
    return train.SplitArrays(images, (torch.rand(n, 3, generator=gen) < 0.25).float())


TRAIN, VAL = data(48, 1), data(48, 2)
CONFIG = load_config("smoke", overrides=[
    "lr_schedule=plateau", "max_epochs=8", "patience=3", "batch_size=16", "augment=false",
    "width=8", "lr=0.01", "lr_patience=0"])


def history(folder) -> pd.DataFrame:
    return pd.read_csv(train.seed_dir(folder, 0) / "history.csv")


def test_lr_drops_tenfold_after_each_flat_epoch(tmp_path):
    train.train_seed(CONFIG, 3, TRAIN, VAL, 0, tmp_path, CPU, progress=False)
    h = history(tmp_path)
    assert h["lr"].iloc[0] == CONFIG.lr
    best = np.minimum.accumulate(h["val_loss"].to_numpy())
    improved = np.r_[True, h["val_loss"].to_numpy()[1:] < best[:-1] * (1 - CONFIG.min_delta)]
    for i in range(1, len(h)):  # the lr an epoch trained with follows from the epoch before
        want = h["lr"].iloc[i - 1] * (1.0 if improved[i - 1] else 0.1)
        assert h["lr"].iloc[i] == pytest.approx(want), h
    assert (~improved).any(), "the tiny set should give at least one flat epoch"
    assert (h["seconds"] > 0).all()


def test_min_delta_stops_on_creeping_improvements(tmp_path):
    """Losses that fall by less than min_delta count as flat: the run stops, yet the kept
    checkpoint is still the epoch of the lowest loss."""
    config = load_config("smoke", overrides=["max_epochs=12", "patience=2", "min_delta=0.5",
                                             "batch_size=16", "augment=false", "width=8"])
    summary = train.train_seed(config, 3, TRAIN, VAL, 0, tmp_path, CPU, progress=False)
    h = history(tmp_path)
    assert summary["stopped_early"] and len(h) < 12
    losses = h["val_loss"].to_numpy()
    assert summary["best_epoch"] == int(np.argmin(losses))
    ref = np.inf  # the best loss before each epoch; a real improvement beats it by 50%
    flat = 0
    for loss in losses:
        flat = 0 if loss < ref * 0.5 else flat + 1
        ref = min(ref, loss)
    assert flat >= 2


COSINE = load_config("smoke", overrides=[
    "lr_schedule=cosine", "lr_epochs=4", "max_epochs=6", "patience=6", "batch_size=16",
    "augment=false", "width=8", "lr=0.01"])


def test_cosine_follows_its_formula_then_stays_at_one_percent(tmp_path):
    train.train_seed(COSINE, 3, TRAIN, VAL, 0, tmp_path, CPU, progress=False)
    lr = history(tmp_path)["lr"].to_numpy()
    want = [COSINE.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(e, 4) / 4)))
            for e in range(len(lr))]
    assert len(lr) == 6 and np.allclose(lr, want, rtol=1e-12)
    assert lr[0] == COSINE.lr and lr[4] == lr[5] == pytest.approx(0.01 * COSINE.lr)


@pytest.mark.parametrize("config", [CONFIG, COSINE], ids=["plateau", "cosine"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch, config):
    train.train_seed(config, 3, TRAIN, VAL, 0, tmp_path / "whole", CPU, progress=False)
    real, calls = train.train_epoch, {"n": 0}

    def dies_in_epoch_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_epoch", dies_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train.train_seed(config, 3, TRAIN, VAL, 0, tmp_path / "cut", CPU, progress=False)
    assert (train.seed_dir(tmp_path / "cut", 0) / "last.pt").exists()
    monkeypatch.setattr(train, "train_epoch", real)
    train.train_seed(config, 3, TRAIN, VAL, 0, tmp_path / "cut", CPU, progress=False)
    a = torch.load(train.seed_dir(tmp_path / "whole", 0) / "best.pt", weights_only=True)
    b = torch.load(train.seed_dir(tmp_path / "cut", 0) / "best.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    pd.testing.assert_frame_equal(history(tmp_path / "whole").drop(columns="seconds"),
                                  history(tmp_path / "cut").drop(columns="seconds"))
