"""Early stopping and the plateau schedule on scripted validation losses.

``train_seed`` runs for real (optimiser, scheduler, checkpoints, resume), but each epoch's
training is replaced by a step that writes the epoch's number into the weights and the
validation step returns a scripted loss, so every expected value below is worked out by hand
from the rules: an epoch *improves* when its loss is below the lowest loss so far times
``1 - min_delta`` (a relative margin); the kept checkpoint is the lowest loss, improving or
not; training stops once ``patience`` epochs in a row did not improve; the plateau schedule
multiplies lr by 0.1 after ``lr_patience + 1`` epochs in a row without a relative improvement.
The losses sit near 0.4, where a relative margin of 0.1 (0.04) differs from an absolute one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from prunecxr import train
from prunecxr.config import load_config

N_CLASSES = 3
CPU = torch.device("cpu")
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)
LR = 1e-3


def config(**changes):
    settings = {"max_epochs": 10, "patience": 3, "min_delta": 0.1, "lr": LR,
                "lr_schedule": "plateau", "lr_patience": 1, "batch_size": 8, "width": 8,
                "augment": "false", "eval_batch_size": 16, **changes}
    return load_config("smoke", overrides=[f"{k}={v}" for k, v in settings.items()])


def split(n: int = 8) -> train.SplitArrays:
    return train.SplitArrays(torch.zeros(n, 8, 8, dtype=torch.uint8), torch.zeros(n, N_CLASSES))


class Scripted:
    """Stand-ins for one epoch's training and validation, plus a record of what the run did:
    the lr each epoch trained with, and ``bad_epochs`` as saved in each epoch's checkpoint."""

    def __init__(self, losses: list[float], monkeypatch, interrupt_at: int | None = None):
        self.losses, self.interrupt_at = losses, interrupt_at
        self.epochs: list[int] = []
        self.lrs: list[float] = []
        self.bad: list[int] = []
        save = train._save

        def train_epoch(model, opt, data, cfg, seed, epoch, device):
            if epoch == self.interrupt_at:
                self.interrupt_at = None
                raise KeyboardInterrupt
            self.epochs.append(epoch)
            self.lrs.append(opt.param_groups[0]["lr"])
            with torch.no_grad():  # mark the weights with the epoch that produced them
                model.backbone.fc.bias.fill_(float(epoch))
            return 0.0

        def validate(model, data, cfg, device):
            return self.losses[self.epochs[-1]], 0.5

        def saved(obj, path):
            if isinstance(obj, dict) and "state" in obj:
                self.bad.append(obj["state"]["bad_epochs"])
            return save(obj, path)

        monkeypatch.setattr(train, "train_epoch", train_epoch)
        monkeypatch.setattr(train, "_validate", validate)
        monkeypatch.setattr(train, "_save", saved)

    def run(self, cfg, folder: Path) -> dict:
        return train.train_seed(cfg, N_CLASSES, split(), split(), 0, folder, CPU, progress=False)


def best_weights_epoch(folder: Path) -> float:
    """The epoch whose weights ``best.pt`` holds (read from the marked bias)."""
    (best,) = folder.rglob("best.pt")
    bias = torch.load(best, weights_only=True)["backbone.fc.bias"]
    assert torch.all(bias == bias[0])
    return float(bias[0])


# Falls, creeps (lower but within 10% of the best: flat), falls by more than 10%, then rises.
CREEP = [0.50, 0.42, 0.40, 0.39, 0.30, 0.31, 0.32, 0.33, 0.20, 0.20]


def test_early_stopping_with_a_relative_min_delta(tmp_path, monkeypatch):
    """0.42 improves on 0.50 (0.42 < 0.45, though not < 0.50 - 0.1); 0.40 and 0.39 are lower
    but not 10% lower: flat, yet 0.39 is kept until 0.30; three rises after it stop the run."""
    s = Scripted(CREEP, monkeypatch)
    summary = s.run(config(), tmp_path)
    assert s.epochs == list(range(8))
    assert s.bad == [0, 0, 1, 2, 0, 1, 2, 3]
    assert summary["epochs"] == 8 and summary["stopped_early"] is True
    assert summary["best_epoch"] == 4 and summary["best_val_loss"] == 0.30
    assert best_weights_epoch(tmp_path) == 4


def test_plateau_lowers_lr_tenfold_after_lr_patience_plus_one_flat_epochs(tmp_path, monkeypatch):
    """lr_patience=1: the second flat epoch in a row (epochs 3 and 6) lowers the next epoch's
    rate; the flat-epoch test is relative (0.42 < 0.50 * 0.9), as early stopping's."""
    s = Scripted(CREEP, monkeypatch)
    s.run(config(), tmp_path)
    assert s.lrs == pytest.approx([LR] * 4 + [LR / 10] * 3 + [LR / 100], rel=1e-12)
    (history,) = tmp_path.rglob("history.csv")
    assert pd.read_csv(history)["lr"].to_numpy() == pytest.approx(s.lrs, rel=1e-12)


def test_lr_patience_zero_lowers_after_every_flat_epoch(tmp_path, monkeypatch):
    s = Scripted(CREEP, monkeypatch)
    s.run(config(lr_patience=0, patience=5, max_epochs=8), tmp_path)
    # flat: epochs 2, 3, 5, 6, 7 -> the epoch after each trains at a tenth
    assert s.lrs == pytest.approx([LR, LR, LR, LR / 10, LR / 100, LR / 100, LR / 1e3, LR / 1e4],
                                  rel=1e-12)


def test_the_epoch_cap_on_a_worse_last_epoch_is_not_early_stopping(tmp_path, monkeypatch):
    """The run ends at max_epochs with two flat epochs (fewer than patience): not stopped
    early, and the kept epoch is the lowest loss (epoch 3, itself not an improvement)."""
    s = Scripted([0.50, 0.40, 0.30, 0.29, 0.35], monkeypatch)
    summary = s.run(config(max_epochs=5), tmp_path)
    assert s.epochs == list(range(5)) and s.bad == [0, 0, 0, 1, 2]
    assert summary["epochs"] == 5 and summary["stopped_early"] is False
    assert summary["best_epoch"] == 3 and summary["best_val_loss"] == 0.29
    assert best_weights_epoch(tmp_path) == 3


def test_patience_running_out_on_the_last_allowed_epoch_is_early_stopping(tmp_path, monkeypatch):
    """The third flat epoch in a row is also the last of max_epochs=8: the run met the stopping
    rule, so it counts as stopped early (the convergence check reads this flag)."""
    s = Scripted(CREEP, monkeypatch)
    summary = s.run(config(max_epochs=8), tmp_path)
    assert s.bad == [0, 0, 1, 2, 0, 1, 2, 3]
    assert summary["epochs"] == 8 and summary["stopped_early"] is True


def test_min_delta_zero_counts_any_fall(tmp_path, monkeypatch):
    s = Scripted([0.5, 0.49999, 0.5, 0.49999, 0.49998], monkeypatch)
    summary = s.run(config(min_delta=0.0, patience=2, max_epochs=5), tmp_path)
    assert s.bad == [0, 0, 1, 2] and summary["stopped_early"] is True
    assert summary["epochs"] == 4 and summary["best_epoch"] == 1


def test_a_resumed_run_keeps_the_counters_and_the_schedule(tmp_path, monkeypatch):
    """Interrupted in epoch 6 (one flat epoch counted by both rules), then rerun: the same
    stop, best epoch, bad-epoch counts and rates as without the interruption."""
    s = Scripted(CREEP, monkeypatch, interrupt_at=6)
    with pytest.raises(KeyboardInterrupt):
        s.run(config(), tmp_path)
    assert s.epochs == list(range(6))
    summary = s.run(config(), tmp_path)
    assert s.epochs == list(range(8)) and s.bad == [0, 0, 1, 2, 0, 1, 2, 3]
    assert s.lrs == pytest.approx([LR] * 4 + [LR / 10] * 3 + [LR / 100], rel=1e-12)
    assert summary["best_epoch"] == 4 and summary["stopped_early"] is True
    assert best_weights_epoch(tmp_path) == 4
