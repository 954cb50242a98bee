"""Train one model per seed; the population is a loop over seeds.

Each seed's run is independent: its model initialisation, data order and augmentation come
from generators seeded by (seed, epoch), so a run resumed from its last checkpoint continues
exactly as an uninterrupted one would. A checkpoint is written atomically after every epoch;
the lowest-validation-loss weights are kept as ``best.pt``; training stops after ``patience``
epochs in which the validation loss did not fall by more than the fraction ``min_delta`` below
its best (Keras' ``min_delta``, relative here); ``done.json`` marks a finished
seed, which is then skipped. BatchNorm is trained in ``train()`` mode and evaluated in
``eval()`` mode every epoch (the reference left it in eval mode from epoch 2 on).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from .progress import tqdm

from . import io
from .batches import DeviceSplit, on_device, peak_gpu_bytes
from .config import Config
from .layout import BEST, DONE, HISTORY, LAST, seed_dir
from .metrics import average_precision, mean_ap
from .models import build_model


@dataclass
class SplitArrays:
    """One split held in memory: uint8 images (n, H, W) and float 0/1 labels (n, C)."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_dataset(cls, dataset, split: str) -> "SplitArrays":
        images = torch.from_numpy(np.ascontiguousarray(dataset.images(split)))
        labels = torch.from_numpy(dataset.split_labels(split).astype(np.float32))
        return cls(images, labels)


def resolve_device(name: str) -> torch.device:
    """The device of ``config.device``; on CUDA, cuDNN is set to its deterministic algorithms,
    so that a seed gives the same bits alone, beside other seeds on one GPU, or resumed."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device


def augment(x: torch.Tensor, generator: torch.Generator, max_degrees: float) -> torch.Tensor:
    """Random horizontal flip and rotation up to ``max_degrees`` of a (B, 1, H, W) batch in [0, 1].

    One affine resampling per batch (vectorised); the area rotated in is filled with 0, like
    torchvision's RandomRotation default.
    """
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(max_degrees)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(b)
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)], 1
    ).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def autocast(precision: str, device: torch.device):
    """bf16 autocast for ``precision="bf16"``, else nothing (fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare(model: nn.Module, config: Config, device: torch.device, train: bool = True) -> nn.Module:
    """Move ``model`` to ``device`` in the layout of ``config.channels_last``.

    For training the weights move to channels_last too; for inference only the activations do
    (convolutions run as fast, and the pruner keeps the weights in one contiguous buffer).
    """
    model = model.to(device)
    model.channels_last = bool(config.channels_last)
    if config.channels_last and train:
        model = model.to(memory_format=torch.channels_last)
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device,
            precision: str = "fp32") -> np.ndarray:
    """Sigmoid probabilities (n, C) float32 for uint8 images (n, H, W), in eval mode.

    ``images`` may already be on ``device`` (:func:`prunecxr.batches.on_device`); the outputs
    stay there until one transfer at the end."""
    model.eval()
    out = []
    with autocast(precision, device):
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device, non_blocking=True)
            out.append(torch.sigmoid(model(x).float()))
    return torch.cat(out).cpu().numpy()


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + epoch)


def train_epoch(model, opt, data, config: Config, seed: int, epoch: int, device) -> float:
    """One epoch over ``data`` (a :class:`SplitArrays`, or a :class:`DeviceSplit` already on
    ``device``); returns the mean training loss. Data order and augmentation come from
    (``seed``, ``epoch``); the fine-tuning of :mod:`prunecxr.compress` trains with it too.
    Batches are indexed, converted to float and augmented on the device; the loss is summed
    there (float64) and read once at the end, so a GPU never waits for the host in the loop."""
    model.train()
    gen = _epoch_generator(seed, epoch)
    split = DeviceSplit.of(data, device)
    order = torch.randperm(len(split), generator=gen)
    loss_fn = nn.BCEWithLogitsLoss()
    total = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    for images, y in split.batches(order, config.batch_size):
        if len(images) < 2:  # BatchNorm cannot train on a single image
            continue
        x = images.unsqueeze(1).float().div_(255.0)
        if config.augment:
            x = augment(x, gen, config.rotation)
        opt.zero_grad(set_to_none=True)
        with autocast(config.precision, device):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        total += loss.detach().double() * len(images)
        seen += len(images)
    return float(total) / max(seen, 1)


def _validate(model, data: SplitArrays, config: Config, device) -> tuple[float, float]:
    """Validation loss (binary cross-entropy on probabilities clamped to [1e-7, 1 - 1e-7], so
    a saturated wrong output costs -log(1e-7) = 16, not torch's cap of 100) and mAP."""
    probs = predict(model, data.images, config.eval_batch_size, device, config.precision)
    p = torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7)
    loss = float(F.binary_cross_entropy(p, data.labels))
    with warnings.catch_warnings():  # classes without validation positives are expected
        warnings.simplefilter("ignore")
        m = mean_ap(average_precision(data.labels.numpy(), probs))
    return loss, float(m)


def class_ap(model: nn.Module, data: SplitArrays, config: Config, device) -> list[float]:
    """Per-class AP of ``model`` on ``data`` (NaN for a class without positives): what the
    preconditions read for the kept checkpoint, on validation images, never test images."""
    probs = predict(model, data.images, config.eval_batch_size, device, config.precision)
    with warnings.catch_warnings():  # classes without validation positives are expected
        warnings.simplefilter("ignore")
        return [float(x) for x in average_precision(data.labels.numpy(), probs)]


def make_optimizer(model: nn.Module, config: Config, device: torch.device,
                   lr: float | None = None) -> torch.optim.Adam:
    """Adam; fused (one kernel for all parameters) on CPU and CUDA, where torch has it.

    Fused Adam updated a width-8 ResNet-18 about 2.5x faster than torch's per-tensor loop on
    this machine's CPU (the update is ~7% of a step there); it also is what the GPU path wants.
    ``lr`` replaces ``config.lr`` (the fine-tuning of :mod:`prunecxr.compress` uses it).
    """
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=config.lr if lr is None else lr,
                            fused=fused or None)


def make_scheduler(opt: torch.optim.Optimizer, config: Config):
    """The learning-rate schedule, stepped once per epoch with the validation loss (or None).

    ``plateau`` divides the learning rate by 10 once the validation loss has not improved (by
    more than the fraction ``min_delta``) for more than ``lr_patience`` epochs (torch's
    ReduceLROnPlateau; CheXNet's recipe, Rajpurkar et al. 2017); early stopping
    (``patience``) then ends the run once even the lowered rate brings no improvement.
    """
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=0.1, patience=config.lr_patience,
            threshold=config.min_delta, threshold_mode="rel")
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, _Cosine(config.lr_epochs))
    return None


class _Cosine:
    """Learning-rate factor of epoch e: half a cosine from 1 to 0.01 over ``epochs``, then 0.01."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def __call__(self, epoch: int) -> float:
        t = min(epoch, self.epochs) / self.epochs
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))


def is_trained(results_dir: Path, seed: int) -> bool:
    d = seed_dir(results_dir, seed)
    return (d / DONE).exists() and (d / BEST).exists()


def _save(obj, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train_seed(config: Config, num_classes: int, train: SplitArrays, val: SplitArrays,
               seed: int, results_dir: Path, device: torch.device, progress: bool = True,
               on_epoch=None) -> dict:
    """Train (or resume, or skip) the model of one seed; returns its ``done.json`` summary and
    ``images_this_run``, the training images this call processed (for the stage's throughput).

    ``on_epoch``, if given, is called with each epoch's history row (for progress reports).
    """
    out = seed_dir(results_dir, seed)
    if is_trained(results_dir, seed):
        return {**io.read_json(out / DONE), "images_this_run": 0}
    model = prepare(build_model(config.arch, num_classes, config.weights, seed=seed,
                                width=config.width), config, device)
    opt = make_optimizer(model, config, device)
    scheduler = make_scheduler(opt, config)
    state = {"epoch": -1, "best_val_loss": math.inf, "best_epoch": -1, "bad_epochs": 0,
             "history": [], "seconds": 0.0, "started": time.time()}
    last = out / LAST
    if last.exists():
        try:
            ckpt = torch.load(last, map_location=device, weights_only=False)
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            state = ckpt["state"]
            tqdm.write(f"seed {seed}: resuming after epoch {state['epoch']} from {last}")
        except Exception as exc:  # a truncated checkpoint: start this seed again
            tqdm.write(f"seed {seed}: unreadable checkpoint {last} ({exc}); restarting the seed")
    first_epoch = state["epoch"] + 1
    train_data = DeviceSplit.of(train, device)  # on a GPU: copied once, if it fits
    val_data = SplitArrays(on_device(val.images, device), val.labels)
    step_model = torch.compile(model) if config.compile else model  # shares model's weights
    bar = tqdm(range(first_epoch, config.max_epochs), desc=f"seed {seed}", unit="epoch",
               position=1, leave=False, disable=not progress, initial=first_epoch, total=config.max_epochs)
    for epoch in bar:
        if state["bad_epochs"] >= config.patience:
            break
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        train_loss = train_epoch(step_model, opt, train_data, config, seed, epoch, device)
        val_loss, val_map = _validate(model, val_data, config, device)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        elif scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - t0
        state["seconds"] += seconds
        state["history"].append({"seed": seed, "epoch": epoch, "lr": lr, "train_loss": train_loss,
                                 "val_loss": val_loss, "val_map": val_map, "seconds": seconds})
        state["epoch"] = epoch
        significant = val_loss < state["best_val_loss"] * (1.0 - config.min_delta)
        if val_loss < state["best_val_loss"]:  # the kept checkpoint: the lowest loss, always
            state.update(best_val_loss=val_loss, best_epoch=epoch)
            _save(model.state_dict(), out / BEST)
        state["bad_epochs"] = 0 if significant else state["bad_epochs"] + 1
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state,
               "scheduler": scheduler.state_dict() if scheduler is not None else None}, last)
        if on_epoch is not None:
            on_epoch(state["history"][-1])
        bar.set_postfix(val_loss=f"{val_loss:.4f}", val_map=f"{val_map:.3f}")
    bar.close()
    model.load_state_dict(torch.load(out / BEST, map_location=device, weights_only=True))
    val_ap = class_ap(model, val_data, config, device)  # the kept checkpoint's, per class
    with io.atomic_path(out / HISTORY) as tmp:
        pd.DataFrame(state["history"]).to_csv(tmp, index=False)
    summary = {"seed": seed, "epochs": state["epoch"] + 1, "best_epoch": state["best_epoch"],
               "best_val_loss": state["best_val_loss"], "seconds": state["seconds"],
               "stopped_early": state["bad_epochs"] >= config.patience, "val_ap": val_ap,
               "images_per_s": len(train.images) * (state["epoch"] + 1) / max(state["seconds"], 1e-9),
               "peak_gpu_bytes": peak_gpu_bytes(device),
               **where_it_ran(device), "started": state.get("started"), "finished": time.time()}
    io.write_json(out / DONE, summary)
    last.unlink(missing_ok=True)
    return {**summary, "images_this_run": len(train.images) * (state["epoch"] + 1 - first_epoch)}


def where_it_ran(device: torch.device) -> dict:
    """Host, device, visible GPUs and SLURM job of this process (for the reproducibility chapter)."""
    env = os.environ
    job = env.get("SLURM_JOB_ID", "")
    if env.get("SLURM_ARRAY_JOB_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"host": socket.gethostname(), "device": name,
            "visible_gpus": env.get("CUDA_VISIBLE_DEVICES", ""), "slurm_job": job}


def load_trained(config: Config, num_classes: int, results_dir: Path, seed: int,
                 device: torch.device) -> nn.Module:
    """The best checkpoint of a finished seed."""
    model = build_model(config.arch, num_classes, "none", width=config.width)
    model.load_state_dict(torch.load(seed_dir(results_dir, seed) / BEST,
                                     map_location="cpu", weights_only=True))
    return prepare(model, config, device, train=False).eval()
