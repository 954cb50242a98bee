"""Benchmark: our pruning sweep vs the naive one, on the same model and test set, one process.

(a) ours: rank the weights once, walk the sparsity grid upward on one working copy, test images
    decoded once and held in memory;
(b) naive: at each level deep-copy the model, call torch.nn.utils.prune.global_unstructured
    (L1Unstructured) from scratch, and re-read and re-decode the test images from PNG files
    through a DataLoader;
(c) bare: the forward passes alone (dense model, in-memory images), the floor any sweep pays.

Checks (a) and (b) give the same probabilities and prints the ratios naive/ours (target >= 5)
and ours/bare (target <= 1.15), plus the part each sweep adds on top of the forward passes
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
from prunecxr.models import build_model
from prunecxr.prune import NestedPruner, prunable_parameters


class PngFolder(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(Image.open(self.paths[i]).convert("L")))


def predict(model, images, batch):
    model.eval()
    with torch.no_grad():
        return torch.cat([torch.sigmoid(model(images[i:i + batch]))
                          for i in range(0, len(images), batch)]).numpy()


def ours(model, images, levels, batch):
    work = copy.deepcopy(model)
    pruner = NestedPruner(work, "l1", levels=levels)
    out = []
    for k in levels:
        pruner.prune_to(k)
        out.append(predict(work, images, batch))
    return np.stack(out)


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


def bare(model, images, levels, batch):
    return np.stack([predict(model, images, batch) for _ in levels])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--results-dir", default=None, help="use seed 0's trained model from this results folder")
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--n-test", type=int, default=None, help="use only the first N test images")
    args = ap.parse_args(argv)
    config = load_config(args.profile)
    levels = list(config.sparsities)[: args.levels]
    dataset = get_dataset(config.dataset, **config.dataset_options())
    test = np.ascontiguousarray(dataset.images("test")[: args.n_test])
    images = torch.from_numpy(test)
    model = build_model(config.arch, len(dataset.classes), "none", seed=0)
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
        print(f"{len(levels)} levels x {len(test)} test images, {config.arch} at {config.image_size} px, "
              f"{torch.get_num_threads()} threads")
        predict(model, images[:64], 64)  # warm-up
        timings, results = {}, {}
        for name, fn, arg in (("bare", bare, images), ("ours", ours, images), ("naive", naive, paths),
                              ("bare2", bare, images)):
            t0 = time.perf_counter()
            results[name] = fn(model, arg, levels, config.eval_batch_size)
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
    print(f"overhead ours/bare  = {timings['ours'] / floor:.3f}x (target <= 1.15)")
    extra_ours, extra_naive = timings["ours"] - floor, timings["naive"] - floor
    print(f"time beyond the forward passes: ours {extra_ours:.2f} s, naive {extra_naive:.2f} s "
          f"({extra_naive / max(extra_ours, 1e-9):.1f}x)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
