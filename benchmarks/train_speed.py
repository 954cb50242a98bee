"""Benchmark: the training levers of the default profile, measured in one run on this machine.

Times the project's own training epoch (``train.train_epoch``: augmentation, forward,
backward, Adam) on the default profile's images and prints images per second for

- width 64 (torchvision's ResNet-18) and the profile's width;
- fp32 vs channels_last vs bf16 autocast (bf16 is fast only on CPUs with native bf16, e.g.
  AVX-512 BF16 or AMX; elsewhere it is emulated and slow);
- one process using every core vs ``workers`` processes with one core each (seeds side by side),

each as a ratio to the first row (torchvision width, fp32, one process), the baseline measured
in the same run. Usage:
    python benchmarks/train_speed.py [--profile default] [--images 1024] [--set field=value ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import torch


def epoch_speed(overrides: list[str], profile: str, n_images: int, threads: int) -> float:
    """Training images per second of one epoch over ``n_images`` default-profile images."""
    from prunecxr.config import load_config
    from prunecxr.data import get_dataset
    from prunecxr.models import build_model
    from prunecxr.train import SplitArrays, make_optimizer, prepare, train_epoch

    torch.set_num_threads(threads)
    config = load_config(profile, overrides=overrides)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    full = SplitArrays.from_dataset(dataset, "train")
    data = SplitArrays(full.images[:n_images], full.labels[:n_images])
    cpu = torch.device("cpu")
    model = prepare(build_model(config.arch, len(dataset.classes), "none", seed=0,
                                width=config.width), config, cpu)
    opt = make_optimizer(model, config, cpu)
    small = SplitArrays(data.images[: 2 * config.batch_size], data.labels[: 2 * config.batch_size])
    train_epoch(model, opt, small, config, 0, 0, cpu)  # warm-up (kernel selection)
    t0 = time.perf_counter()
    train_epoch(model, opt, data, config, 0, 1, cpu)
    return n_images / (time.perf_counter() - t0)


def _worker(args) -> float:
    return epoch_speed(*args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--images", type=int, default=1024, help="training images per timed epoch")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args(argv)
    from prunecxr.config import load_config

    config = load_config(args.profile, overrides=args.overrides)
    cores = os.cpu_count() or 1
    workers = max(config.workers, 2)
    base = [*args.overrides, "width=64", "channels_last=false", "precision=fp32"]
    width = [*args.overrides, f"width={config.width}"]
    rows = [
        ("width 64, fp32, 1 process", base, 1),
        ("width 64, channels_last", [*base, "channels_last=true"], 1),
        (f"width {config.width}, fp32", [*width, "channels_last=false", "precision=fp32"], 1),
        (f"width {config.width}, channels_last", [*width, "channels_last=true", "precision=fp32"], 1),
        (f"width {config.width}, bf16 + channels_last", [*width, "channels_last=true", "precision=bf16"], 1),
        (f"width {config.width}, channels_last, {workers} processes x 1 thread",
         [*width, "channels_last=true", "precision=fp32"], workers),
    ]
    print(f"{cores} cores, torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {args.images} images per timed epoch")
    baseline = None
    ctx = multiprocessing.get_context("spawn")
    for label, overrides, procs in rows:
        if procs == 1:
            speed = epoch_speed(overrides, args.profile, args.images, cores)
        else:
            with ctx.Pool(procs) as pool:
                speed = sum(pool.map(_worker, [(overrides, args.profile, args.images, 1)] * procs))
        baseline = baseline or speed
        print(f"  {label:55s} {speed:8.0f} img/s  {speed / baseline:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
