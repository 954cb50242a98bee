"""Early stopping, the kept best checkpoint and the restart after an unreadable ``last.pt``.

The smoke profile (2 epochs, patience 2) never reaches early stopping, so these tests train on a
tiny set built to overfit: random images with random labels. The validation loss first falls
(the model learns the label prior) and then rises (it memorises the training set), so training
stops on patience, and the kept epoch is neither the first nor the last. Every check reads the
run's own history rather than a hard-coded epoch, so a change of optimiser or schedule that
moves the curve still tests the same mechanics.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from prunecxr import train
from prunecxr.config import load_config

N_CLASSES = 3
CPU = torch.device("cpu")
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


def tiny_config(**changes):
    settings = {"max_epochs": 15, "patience": 2, "batch_size": 16, "augment": "false",
                "eval_batch_size": 64, "lr": 0.003, **changes}
    smoke = load_config("smoke")
    if hasattr(smoke, "width"):  # a narrow ResNet where the library has one
        settings.setdefault("width", 8)
    if hasattr(smoke, "precision"):  # fp32, so that val_loss_of below recomputes it exactly
        settings.setdefault("precision", "fp32")
    if hasattr(smoke, "min_delta"):  # any fall of validation loss counts as an improvement
        settings.setdefault("min_delta", 0.0)
    return load_config("smoke", overrides=[f"{k}={v}" for k, v in settings.items()])


def split(n: int, seed: int) -> train.SplitArrays:
    """Random 16 px images with random labels (prevalence 1/4): nothing to learn but the prior."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 16, 16), generator=gen, dtype=torch.uint8)
    labels = (torch.rand(n, N_CLASSES, generator=gen) < 0.25).float()
    return train.SplitArrays(images, labels)


TRAIN, VAL = split(64, 1), split(64, 2)


def untimed(history: pd.DataFrame) -> pd.DataFrame:
    """A history without its wall-time columns (they differ from run to run)."""
    return history.drop(columns=[c for c in history.columns if "second" in c])


def run(config, folder: Path) -> dict:
    return train.train_seed(config, N_CLASSES, TRAIN, VAL, 0, folder, CPU, progress=False)


def val_loss_of(state_dict: dict, config) -> float:
    """Validation loss of a saved state, computed here the way the library defines it."""
    from prunecxr.models import build_model

    kwargs = {"width": config.width} if hasattr(config, "width") else {}
    model = build_model(config.arch, N_CLASSES, "none", **kwargs)
    model.load_state_dict(state_dict)
    model.eval()
    with torch.no_grad():
        p = torch.sigmoid(model(VAL.images)).clamp(1e-7, 1 - 1e-7)
    return float(F.binary_cross_entropy(p, VAL.labels))


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """One run that stops early: (config, folder, summary, history)."""
    config = tiny_config()
    folder = tmp_path_factory.mktemp("early")
    summary = run(config, folder)
    history = pd.read_csv(train.seed_dir(folder, 0) / "history.csv")
    return config, folder, summary, history


def test_stops_early_on_patience(stopped):
    config, folder, summary, history = stopped
    losses = history["val_loss"].to_numpy()
    best = int(np.argmin(losses))
    assert summary["stopped_early"] is True
    assert summary["epochs"] < config.max_epochs
    # exactly `patience` epochs without improvement after the best one, then it stopped
    assert summary["epochs"] == best + 1 + config.patience == len(history)
    assert (losses[best + 1:] >= losses[best]).all()
    assert list(history["epoch"]) == list(range(len(history)))
    # the curve this test is built on: first falls, then rises
    assert 0 < best < len(history) - 1, "validation loss no longer falls and then rises"


def test_keeps_the_best_epoch(stopped):
    config, folder, summary, history = stopped
    best = int(history["val_loss"].idxmin())
    assert summary["best_epoch"] == history.loc[best, "epoch"] == best
    assert summary["best_val_loss"] == pytest.approx(history.loc[best, "val_loss"], abs=0)
    done = train.seed_dir(folder, 0) / "done.json"
    assert train.is_trained(folder, 0) and done.is_file()
    assert not (train.seed_dir(folder, 0) / "last.pt").exists()


def test_best_checkpoint_holds_the_best_epochs_weights(stopped):
    config, folder, summary, history = stopped
    state = torch.load(train.seed_dir(folder, 0) / "best.pt", weights_only=True)
    loss = val_loss_of(state, config)
    assert loss == pytest.approx(summary["best_val_loss"], rel=1e-5)
    # ... and not the last epoch's (whose validation loss is higher)
    last = float(history["val_loss"].iloc[-1])
    assert last > summary["best_val_loss"] + 1e-4
    assert loss != pytest.approx(last, rel=1e-5)
    # load_trained returns the same weights in eval mode
    model = train.load_trained(config, N_CLASSES, folder, 0, CPU)
    assert not model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_epoch_cap_is_not_early_stopping(tmp_path):
    config = tiny_config(max_epochs=2, patience=5)
    summary = run(config, tmp_path)
    assert summary["epochs"] == 2 and summary["stopped_early"] is False
    history = pd.read_csv(train.seed_dir(tmp_path, 0) / "history.csv")
    assert len(history) == 2 and summary["best_epoch"] == int(history["val_loss"].idxmin())


def test_a_finished_seed_is_skipped(stopped, monkeypatch):
    config, folder, summary, _ = stopped
    monkeypatch.setattr(train, "train_epoch", lambda *a, **k: pytest.fail("retrained"))
    again = run(config, folder)
    assert again.pop("images_this_run") == 0 and summary["images_this_run"] > 0
    assert again == {k: v for k, v in summary.items() if k != "images_this_run"}


def test_restart_after_an_unreadable_last_checkpoint(stopped, tmp_path, capsys):
    """A truncated ``last.pt`` (a kill while it was written by an older version, a full disk):
    the seed starts again from scratch and ends exactly like an uninterrupted run."""
    config, folder, summary, history = stopped
    ckpt = train.seed_dir(tmp_path, 0) / "last.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 not a checkpoint")
    again = run(config, tmp_path)
    out = capsys.readouterr()
    assert "unreadable checkpoint" in out.out + out.err and "restarting the seed" in out.out + out.err
    clock = {"seconds", "started", "finished", "images_per_s"}  # wall-clock fields differ
    assert {k: v for k, v in again.items() if k not in clock} == \
        {k: v for k, v in summary.items() if k not in clock}
    pd.testing.assert_frame_equal(
        untimed(pd.read_csv(train.seed_dir(tmp_path, 0) / "history.csv")), untimed(history))
    a = torch.load(train.seed_dir(tmp_path, 0) / "best.pt", weights_only=True)
    b = torch.load(train.seed_dir(folder, 0) / "best.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not ckpt.exists()


def test_done_json_times_the_epochs_and_a_call_shows_its_bar_by_default(stopped, tmp_path,
                                                                         capsys):
    """done.json's seconds are the epochs' own (history), between its start and finish; a
    call left to its default draws the seed's bar (here with no learning-rate scheduler)."""
    from prunecxr import io

    config, folder, summary, history = stopped
    done = io.read_json(train.seed_dir(folder, 0) / "done.json")
    assert done["seconds"] == pytest.approx(history["seconds"].sum())
    assert isinstance(done["started"], float) and done["started"] <= done["finished"]
    assert done["finished"] - done["started"] >= done["seconds"]
    assert done["images_per_s"] == pytest.approx(len(TRAIN.images) * len(history)
                                                 / done["seconds"])
    assert done["peak_gpu_bytes"] is None                                  # no GPU here
    assert list(history.columns) == ["seed", "epoch", "lr", "train_loss", "val_loss", "val_map",
                                      "seconds"]
    constant = tiny_config(max_epochs=1, lr_schedule="constant")     # no scheduler to save
    train.train_seed(constant, N_CLASSES, TRAIN, VAL, 0, tmp_path, CPU)
    assert "seed 0:" in capsys.readouterr().err


def test_resume_from_a_readable_last_checkpoint_continues(stopped, tmp_path, monkeypatch,
                                                         capsys):
    """Stop after two epochs (an exception, like a kill), rerun: the result equals the
    uninterrupted run, and the two finished epochs are not trained again."""
    config, folder, summary, history = stopped
    calls = []
    real = train.train_epoch

    def counted(model, opt, data, cfg, seed, epoch, device):
        if epoch == 2 and not calls.count("resumed"):
            raise KeyboardInterrupt
        calls.append(epoch)
        return real(model, opt, data, cfg, seed, epoch, device)

    monkeypatch.setattr(train, "train_epoch", counted)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path)
    assert calls == [0, 1] and (train.seed_dir(tmp_path, 0) / "last.pt").is_file()
    calls.append("resumed")
    capsys.readouterr()
    again = run(config, tmp_path)
    last = train.seed_dir(tmp_path, 0) / "last.pt"
    assert f"seed 0: resuming after epoch 1 from {last}" in capsys.readouterr().out
    assert calls[3:] == list(range(2, summary["epochs"]))   # picks up at epoch 2
    assert again["best_epoch"] == summary["best_epoch"]
    assert again["best_val_loss"] == summary["best_val_loss"]
    assert again["stopped_early"] and again["epochs"] == summary["epochs"]
    # the throughput counts only what this call trained: the epochs after the resume
    assert again["images_this_run"] == len(TRAIN.images) * (summary["epochs"] - 2)
    assert summary["images_this_run"] == len(TRAIN.images) * summary["epochs"]
    pd.testing.assert_frame_equal(
        untimed(pd.read_csv(train.seed_dir(tmp_path, 0) / "history.csv")), untimed(history))
    assert math.isfinite(again["seconds"])


def test_done_json_records_the_kept_checkpoints_validation_ap_per_class(tmp_path):
    """The preconditions read each class's validation AP of the kept (best) checkpoint: it is
    recorded at the end of training, equal to that checkpoint's AP recomputed on the same
    validation images (never test images)."""
    import torch

    from prunecxr import io
    from prunecxr.config import load_config
    from prunecxr.layout import BEST, DONE, seed_dir
    from prunecxr.metrics import average_precision
    from prunecxr.models import build_model
    from prunecxr.train import SplitArrays, predict, prepare, train_seed

    config = load_config("smoke", overrides=["max_epochs=2"])
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (48, config.image_size, config.image_size), generator=g,
                           dtype=torch.uint8)
    labels = (torch.rand(48, 3, generator=g) < 0.4).float()
    train, val = SplitArrays(images[:32], labels[:32]), SplitArrays(images[32:], labels[32:])
    train_seed(config, 3, train, val, 0, tmp_path, torch.device("cpu"), progress=False)
    done = io.read_json(seed_dir(tmp_path, 0) / DONE)
    model = prepare(build_model(config.arch, 3, "none", seed=0, width=config.width), config,
                    torch.device("cpu"))
    model.load_state_dict(torch.load(seed_dir(tmp_path, 0) / BEST, weights_only=True))
    probs = predict(model, val.images, config.eval_batch_size, torch.device("cpu"),
                    config.precision)
    np.testing.assert_allclose(done["val_ap"], average_precision(val.labels.numpy(), probs),
                               equal_nan=True)


def test_a_loaded_model_keeps_contiguous_weights_under_channels_last(tmp_path):
    """For inference only the activations go channels_last: the loaded weights stay in the
    contiguous layout the pruner's flat buffer expects; the trained values are loaded."""
    from prunecxr.layout import BEST, seed_dir
    from prunecxr.models import build_model

    config = load_config("smoke", overrides=["width=8", "channels_last=true"])
    saved = build_model(config.arch, 3, "none", seed=5, width=8)
    seed_dir(tmp_path, 0).mkdir(parents=True)
    torch.save(saved.state_dict(), seed_dir(tmp_path, 0) / BEST)
    model = train.load_trained(config, 3, tmp_path, 0, torch.device("cpu"))
    assert model.channels_last and not model.training
    conv = model.backbone.layer1[0].conv1.weight                  # 8 in, 8 out channels
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(conv, saved.backbone.layer1[0].conv1.weight)


def test_validation_clamps_saturated_outputs_and_runs_at_the_run_precision():
    """A saturated wrong output (sigmoid exactly 0 or 1 in float32) costs -log(1e-7) per label,
    not torch's cap of 100; loss, mAP and class AP come from predictions at the run's precision
    (bf16 here)."""
    from torch import nn

    from prunecxr.metrics import average_precision
    from prunecxr.models import build_model

    class Saturated(nn.Module):
        def forward(self, x):
            return torch.tensor([[50.0, -120.0]]).expand(len(x), 2)

    images = torch.zeros(4, 16, 16, dtype=torch.uint8)
    wrong = train.SplitArrays(images, torch.tensor([[0.0, 1.0]] * 4))
    cpu, config = torch.device("cpu"), load_config("smoke")
    loss, _ = train._validate(Saturated(), wrong, config, cpu)
    assert loss == pytest.approx(-math.log(1e-7), rel=0.01)
    bf16 = load_config("smoke", overrides=["precision=bf16", "width=8"])
    g = torch.Generator().manual_seed(3)
    data = train.SplitArrays(torch.randint(0, 256, (64, 16, 16), dtype=torch.uint8, generator=g),
                             (torch.rand(64, 3, generator=g) < 0.5).float())
    model = build_model(bf16.arch, 3, "none", seed=1, width=8)
    probs = train.predict(model, data.images, bf16.eval_batch_size, cpu, "bf16")
    fp32 = train.predict(model, data.images, bf16.eval_batch_size, cpu, "fp32")
    assert not np.array_equal(probs, fp32)
    loss, m = train._validate(model, data, bf16, cpu)
    want = F.binary_cross_entropy(torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7), data.labels)
    assert loss == pytest.approx(float(want))
    aps = average_precision(data.labels.numpy(), probs)
    assert m == pytest.approx(float(np.nanmean(aps)))
    np.testing.assert_allclose(train.class_ap(model, data, bf16, cpu), aps)
    assert not np.allclose(aps, average_precision(data.labels.numpy(), fp32))  # bf16 ranks apart


def test_where_it_ran_reads_the_host_device_gpus_and_slurm_job(monkeypatch):
    import socket

    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                 "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    assert train.where_it_ran(CPU) == {"host": socket.gethostname(), "device": "cpu",
                                       "visible_gpus": "", "slurm_job": ""}
    monkeypatch.setenv("SLURM_JOB_ID", "9")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert train.where_it_ran(CPU)["slurm_job"] == "9"
    assert train.where_it_ran(CPU)["visible_gpus"] == "0,1"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert train.where_it_ran(CPU)["slurm_job"] == "7_3"            # an array task


def test_the_optimizer_takes_the_given_rate_and_is_fused_on_cpu():
    from prunecxr.models import build_model

    model = build_model("resnet18", 3, "none", width=8)
    config = tiny_config()
    opt = train.make_optimizer(model, config, CPU)
    assert opt.param_groups[0]["lr"] == config.lr and opt.defaults["fused"] is True
    assert train.make_optimizer(model, config, CPU, lr=0.5).param_groups[0]["lr"] == 0.5
    assert train.make_optimizer(model, config, torch.device("meta")).defaults["fused"] is None


def test_an_epoch_skips_only_a_single_image_batch_and_runs_at_the_run_precision():
    """BatchNorm cannot train on one image: a last batch of one is skipped, of two is not;
    under bf16 the epoch gives other weights than under fp32."""
    from prunecxr.models import build_model

    def steps(n, precision="fp32"):
        model = build_model("resnet18", N_CLASSES, "none", seed=0, width=8)
        config = tiny_config(batch_size=4, precision=precision)
        opt = train.make_optimizer(model, config, CPU)
        count = []
        opt.register_step_post_hook(lambda *_: count.append(1))
        data = train.SplitArrays(TRAIN.images[:n], TRAIN.labels[:n])
        train.train_epoch(model, opt, data, config, 0, 0, CPU)
        return len(count), model

    assert steps(6)[0] == 2 and steps(5)[0] == 1
    (_, fp32), (_, bf16) = steps(8), steps(8, "bf16")
    assert not torch.equal(fp32.backbone.conv1.weight, bf16.backbone.conv1.weight)
