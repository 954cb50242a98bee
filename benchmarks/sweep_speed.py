"""Benchmark: our pruning sweep vs the naive one, on the same model and test set, one process.

(a) ours: the project's own ``sweep.sweep_seed`` (rank the weights once, walk the sparsity grid
    upward on one working copy, test images held in memory, a resumable checkpoint per level,
    the checksummed result file), on a copy of the model's checkpoint in a temporary folder;
(b) naive: at each level deep-copy the model, call torch.nn.utils.prune.global_unstructured
    (L1Unstructured) from scratch, and re-read and re-decode the test images from PNG files
    through a DataLoader;
(c) bare: the forward passes alone (dense model, in-memory images, the profile's layout and
    precision), the floor any sweep pays.

Checks (a) and (b) give the same probabilities and prints the ratios naive/ours (target >= 5)
and ours/bare (target <= 1.10), plus the part each sweep adds on top of the forward passes
(pruning and data handling), which is what the two approaches really differ in: with a large
test set the shared forward passes dominate both and bound naive/ours. Usage:
    python benchmarks/sweep_speed.py [--results-dir DIR] [--profile default] [--levels 20] [--n-test N]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn.utils import prune as torch_prune

from prunecxr.config import load_config
from prunecxr.data import get_dataset
from prunecxr.layout import seed_dir
from prunecxr.models import build_model
from prunecxr.prune import prunable_parameters
from prunecxr.sweep import sweep_seed
from prunecxr.train import predict as project_predict
from prunecxr.train import prepare


class PngFolder(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(Image.open(self.paths[i]).convert("L")))


CPU = torch.device("cpu")


def ours(model, images, config, n_classes):
    """The project's sweep of seed 0, from a checkpoint of ``model`` in a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = seed_dir(Path(tmp), 0) / "best.pt"
        ckpt.parent.mkdir(parents=True)
        torch.save(model.state_dict(), ckpt)
        sweep_seed(config, n_classes, images, "l1", 0, Path(tmp), CPU, progress=False)
        return np.load(Path(tmp) / "predictions" / "l1" / "seed_000.npy")


def naive(model, paths, levels, batch):
    out = []
    for k in levels:
        work = copy.deepcopy(model)
        params = [(m, n) for m, n in prunable_parameters(work)]
        if k > 0:
            torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=k)
            for m, n in params:
                torch_prune.remove(m, n)
        loader = torch.utils.data.DataLoader(PngFolder(paths), batch_size=batch, shuffle=False)
        work.eval()
        with torch.no_grad():
            out.append(torch.cat([torch.sigmoid(work(x)) for x in loader]).numpy())
    return np.stack(out)


def bare(model, images, config):
    work = prepare(copy.deepcopy(model), config, CPU, train=False)
    return np.stack([project_predict(work, images, config.eval_batch_size, CPU, config.precision)
                     for _ in config.sparsities])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--results-dir", default=None, help="use seed 0's trained model from this results folder")
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--n-test", type=int, default=None, help="use only the first N test images")
    args = ap.parse_args(argv)
    config = load_config(args.profile, overrides=args.overrides)
    config = load_config(args.profile, overrides=[*args.overrides, "sparsities=" + ",".join(
        str(k) for k in list(config.sparsities)[: args.levels])])
    levels = list(config.sparsities)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    test = np.ascontiguousarray(dataset.images("test")[: args.n_test])
    images = torch.from_numpy(test)
    model = build_model(config.arch, len(dataset.classes), "none", seed=0, width=config.width)
    if args.results_dir:
        state = Path(args.results_dir) / "models" / "seed_000" / "best.pt"
        model.load_state_dict(torch.load(state, map_location="cpu", weights_only=True))
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, img in enumerate(test):
            p = Path(tmp) / f"{i:06d}.png"
            Image.fromarray(img).save(p)
            paths.append(p)
        print(f"{len(levels)} levels x {len(test)} test images, {config.arch} width {config.width} "
              f"at {config.image_size} px, {config.precision}, channels_last {config.channels_last}, "
              f"{torch.get_num_threads()} threads")
        bare(model, images[:64], config)  # warm-up
        runs = (("bare", lambda: bare(model, images, config)),
                ("ours", lambda: ours(model, images, config, len(dataset.classes))),
                ("naive", lambda: naive(model, paths, levels, config.eval_batch_size)),
                ("bare2", lambda: bare(model, images, config)))
        timings, results = {}, {}
        for name, fn in runs:
            t0 = time.perf_counter()
            results[name] = fn()
            timings[name] = time.perf_counter() - t0
            print(f"  {name:5s} {timings[name]:8.2f} s")
    floor = min(timings["bare"], timings["bare2"])
    # Trained weights have tied magnitudes (torch's topk and our index rule may pick different
    # tied weights at a cut), so the probabilities agree up to those ties, not bit for bit.
    diff = float(np.abs(results["ours"] - results["naive"]).max())
    same = diff < 1e-3
    print(f"max |ours - naive| = {diff:.2e} "
          f"({'same up to tied weights' if same else 'DIFFERENT'} probabilities)")
    print(f"speed-up naive/ours = {timings['naive'] / timings['ours']:.2f}x (target >= 5)")
    print(f"overhead ours/bare  = {timings['ours'] / floor:.3f}x (target <= 1.10)")
    extra_ours, extra_naive = timings["ours"] - floor, timings["naive"] - floor
    print(f"time beyond the forward passes: ours {extra_ours:.2f} s, naive {extra_naive:.2f} s "
          f"({extra_naive / max(extra_ours, 1e-9):.1f}x)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
