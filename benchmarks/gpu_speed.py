"""Benchmark: the project's GPU path against a bare bf16 loop, same GPU, same data, one process.

Times, on random uint8 images held like the project holds them:

- the project's training epoch (``train.train_epoch`` on a :class:`prunecxr.batches.DeviceSplit`:
  device-side indexing and augmentation, bf16 autocast, channels_last, fused Adam, loss summed
  on the device), its validation pass (``train.predict``) and its pruning sweep (``NestedPruner``
  + ``predict`` over ``--levels`` sparsities);
- a bare loop on the same data: uint8 images resident on the GPU, the same flip and rotation on
  the GPU, bf16 autocast, channels_last, fused Adam, no host sync; and bare bf16 inference;
- with ``--compile``, both training loops again under ``torch.compile``;
- the default profile's model (ResNet-18 at width 8, 64 px) with the loop this project used
  before (augmentation on the CPU, fp32, one host-to-device copy and one ``loss.item()`` per
  batch) against the project's path now;
- the project's epoch once more with cuDNN free to pick non-deterministic algorithms: what the
  pipeline's deterministic setting (``train.resolve_device``) costs;
- with ``--workers 1,2,4``, the default profile's whole training stage (``--seed-epochs``
  epochs of its 8 seeds, through ``ensure_results``) with each number of worker processes
  sharing the one GPU: the stage's training images per second from the manifest, and whether
  every seed's weights are bit-identical whatever the number of workers.

It prints images per second and the ratios against the targets: project training >= 0.9x the
bare eager loop (>= 0.9x the compiled loop with ``--compile``), sweep >= 0.9x bare inference,
the default profile's training >= 3x the old loop. On a machine without CUDA it says so and
exits 0 without timing anything; ``--dry-run`` runs every path once at a tiny size on whatever
device there is (the tests do this on the CPU), to check the code, not to time it. Usage:

    python benchmarks/gpu_speed.py [--arch resnet50] [--size 256] [--batch 256] [--train 3072]
        [--test 2048] [--levels 20] [--compile] [--workers 1,2,4] [--seed-epochs 2] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    """Seconds ``fn()`` takes, with the device's queue drained before and after."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def bare_epoch(model, opt, images, labels, batch: int, gen, rotation: float) -> None:
    """The reference training loop: data resident on the device, nothing read back."""
    from prunecxr.train import augment

    model.train()
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.randperm(len(images), generator=gen).to(images.device)
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        x = augment(images[idx].unsqueeze(1).float().div_(255.0), gen, rotation)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            loss = loss_fn(model(x).float(), labels[idx])
        loss.backward()
        opt.step()


@torch.no_grad()
def bare_inference(model, images, batch: int) -> torch.Tensor:
    model.eval()
    with torch.autocast(images.device.type, dtype=torch.bfloat16):
        return torch.cat([torch.sigmoid(model(images[i:i + batch]).float())
                          for i in range(0, len(images), batch)])


def old_epoch(model, opt, data, config, device) -> None:
    """The project's loop before the device path (CPU augmentation, a copy and a sync per batch)."""
    from prunecxr.train import augment

    model.train()
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data.images), generator=gen)
    loss_fn = nn.BCEWithLogitsLoss()
    for start in range(0, len(order), config.batch_size):
        idx = order[start:start + config.batch_size]
        x = augment(data.images[idx].unsqueeze(1).float().div_(255.0), gen, config.rotation)
        x, y = x.to(device), data.labels[idx].to(device)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x).float(), y)
        loss.backward()
        opt.step()
        loss.item()


def run(args) -> dict:
    from prunecxr.batches import DeviceSplit, on_device
    from prunecxr.config import load_config
    from prunecxr.prune import NestedPruner
    from prunecxr.models import build_model
    from prunecxr.train import SplitArrays, make_optimizer, predict, prepare, train_epoch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    classes = 20

    def data(n, size):
        return SplitArrays(torch.randint(0, 256, (n, size, size), dtype=torch.uint8, generator=g),
                           (torch.rand(n, classes, generator=g) < 0.1).float())

    config = load_config("paper", overrides=[
        f"arch={args.arch}", f"width={args.width}", "weights=none", f"image_size={args.size}",
        f"batch_size={args.batch}", f"eval_batch_size={args.batch}", "precision=bf16",
        "channels_last=true", f"device={device.type}"])
    train, test = data(args.train, args.size), data(args.test, args.size)
    out: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}

    def fresh(compiled: bool = False):
        model = prepare(build_model(config.arch, classes, "none", seed=0, width=config.width),
                        config, device)
        step = torch.compile(model) if compiled else model
        return model, step, make_optimizer(model, config, device)

    # project path: warm-up epoch (kernel selection, compilation), then a timed one
    split = DeviceSplit.of(train, device)
    for compiled in ([False, True] if args.compile else [False]):
        model, step, opt = fresh(compiled)
        train_epoch(step, opt, split, config, 0, 0, device)
        s = timed(lambda: train_epoch(step, opt, split, config, 0, 1, device), device)
        out["project_train" + ("_compiled" if compiled else "")] = len(train.images) / s
    if device.type == "cuda":  # the same epoch with cuDNN's fastest, non-deterministic choices
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
        model, step, opt = fresh()
        train_epoch(step, opt, split, config, 0, 0, device)
        s = timed(lambda: train_epoch(step, opt, split, config, 0, 1, device), device)
        out["project_train_nondeterministic"] = len(train.images) / s
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    test_dev = on_device(test.images, device)
    predict(model, test_dev, config.eval_batch_size, device, "bf16")
    s = timed(lambda: predict(model, test_dev, config.eval_batch_size, device, "bf16"), device)
    out["project_inference"] = len(test.images) / s
    levels = [round(0.05 * i, 2) for i in range(args.levels)]

    def sweep():
        pruner = NestedPruner(model.eval(), "l1", levels=levels)
        for k in levels:
            pruner.prune_to(k)
            predict(model, test_dev, config.eval_batch_size, device, "bf16")

    out["project_sweep"] = len(levels) * len(test.images) / timed(sweep, device)

    # bare loops on the same data, resident on the device
    images, labels = train.images.to(device), train.labels.to(device)
    for compiled in ([False, True] if args.compile else [False]):
        model, step, opt = fresh(compiled)
        gen = torch.Generator().manual_seed(0)
        bare_epoch(step, opt, images, labels, args.batch, gen, config.rotation)
        s = timed(lambda: bare_epoch(step, opt, images, labels, args.batch, gen, config.rotation), device)
        out["bare_train" + ("_compiled" if compiled else "")] = len(images) / s
    test_images = test.images.to(device)
    bare_inference(model, test_images, args.batch)
    out["bare_inference"] = len(test_images) / timed(lambda: bare_inference(model, test_images, args.batch), device)

    # the default profile's model: the old loop against the project's path now
    small = load_config("default", overrides=[f"device={device.type}"] + (
        ["precision=bf16"] if device.type == "cuda" else []))
    small_train = data(args.train, small.image_size)
    for name in ("old", "now"):
        model = prepare(build_model(small.arch, classes, "none", seed=0, width=small.width), small, device)
        opt = make_optimizer(model, small, device)
        split = DeviceSplit.of(small_train, device)
        if name == "old":
            fn = lambda: old_epoch(model, opt, small_train, small, device)  # noqa: E731
        else:
            fn = lambda: train_epoch(model, opt, split, small, 0, 1, device)  # noqa: E731
        fn()
        out[f"default_{name}"] = len(small_train.images) / timed(fn, device)
    if device.type == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if args.workers:
        out.update(seeds_side_by_side(args, device))
    return out


def seeds_side_by_side(args, device: torch.device) -> dict:
    """The default profile's training stage with each worker count: train img/s, and whether
    every seed's best weights are identical across the counts (they must be)."""
    from prunecxr.config import load_config
    from prunecxr.io import read_json
    from prunecxr.pipeline import ensure_results
    from prunecxr.layout import seed_dir

    counts = [int(k) for k in args.workers.split(",")]
    out, weights = {}, {}
    with tempfile.TemporaryDirectory() as root:
        for k in counts:
            config = load_config("default", overrides=[
                f"max_epochs={args.seed_epochs}", f"population={args.seed_population}",
                "methods=l1", "sparsities=0", f"workers={k}", f"device={device.type}"]
                + ([f"data.n_images={args.seed_images}"] if args.seed_images else [])
                + (["threads=1"] if device.type == "cpu" else []))  # CPU bits depend on threads
            folder = ensure_results(config, Path(root) / f"workers{k}", progress=False)
            out[f"seeds_workers{k}"] = read_json(folder / "manifest.json")["rates"]["train"]["images_per_s"]
            weights[k] = [torch.load(seed_dir(folder, s) / "best.pt", weights_only=True)
                          for s in config.seeds]
    first = weights[counts[0]]
    out["seeds_identical"] = float(all(
        torch.equal(a[name], b[name]) for k in counts for a, b in zip(first, weights[k]) for name in a))
    return out


def report(r: dict, compiled: bool) -> list[tuple[str, float, float]]:
    """(what, ratio, target) of every target."""
    rows = [("project training / bare eager bf16 training", r["project_train"] / r["bare_train"], 0.9),
            ("project sweep / bare bf16 inference", r["project_sweep"] / r["bare_inference"], 0.9),
            ("default profile training now / before", r["default_now"] / r["default_old"], 3.0)]
    if compiled:
        rows.insert(1, ("project compiled training / bare compiled training",
                        r["project_train_compiled"] / r["bare_train_compiled"], 0.9))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train", type=int, default=3072)
    ap.add_argument("--test", type=int, default=2048)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd training")
    ap.add_argument("--workers", default="",
                    help="worker counts to time the default profile's training stage with, e.g. 1,2,4")
    ap.add_argument("--seed-epochs", type=int, default=2, help="--workers: epochs per seed")
    ap.add_argument("--seed-population", type=int, default=8, help="--workers: seeds")
    ap.add_argument("--seed-images", type=int, default=0,
                    help="--workers: phantom images (0: the default profile's)")
    ap.add_argument("--dry-run", action="store_true",
                    help="run every path once at a tiny size on any device (checks, not timings)")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.arch, args.width, args.size, args.batch = "resnet18", 8, 32, 8
        args.train, args.test, args.levels = 24, 16, 2
        args.seed_epochs, args.seed_population, args.seed_images = 1, 2, 200
    elif not torch.cuda.is_available():
        print("no CUDA device here: nothing timed (this benchmark compares GPU paths; "
              "--dry-run checks the code on the CPU)")
        return 0
    r = run(args)
    print(f"device: {r['device']}; {args.arch} width {args.width} at {args.size} px, batch "
          f"{args.batch}, {args.train} training / {args.test} test images, {args.levels} levels")
    for key, value in r.items():
        if key not in ("device", "seeds_identical"):
            print(f"  {key:30s} {value:12,.1f}" + ("" if key == "peak_gpu_gib" else " img/s"))
    if "seeds_identical" in r:
        by_k = {int(k.removeprefix("seeds_workers")): v for k, v in r.items() if k.startswith("seeds_workers")}
        best = max(by_k, key=by_k.get)
        print(f"  default profile training stage: fastest with workers={best}, "
              f"{by_k[best] / by_k[min(by_k)]:.2f}x workers={min(by_k)}; every seed's weights "
              + ("identical" if r["seeds_identical"] else "NOT identical") + " whatever the workers")
    for what, ratio, target in report(r, args.compile):
        print(f"{what}: {ratio:.2f}x (target >= {target:g}x: {'PASS' if ratio >= target else 'FAIL'})"
              + (" [dry run: not a timing]" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
