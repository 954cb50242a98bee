"""Benchmark: the main job from an empty cache, its stage times, throughput and preconditions.

Runs ``ensure_results`` for a profile (default: ``default``) in a fresh temporary
``PRUNECXR_HOME`` (so data generation, training and the sweep all run), then prints

- the wall time of each stage (data, train, sweep, as recorded in the manifest) and in total,
  against the budget: 600 s for the default profile's paper methods (l1 and random) on 2 CPU
  cores, plus at most 420 s for the Q5 methods on all 8 seeds (every other method; their share of the sweep's
  wall time is estimated by their share of its work, from the seconds each sweep records);
- images per second of training (training images seen, validation passes included in the
  time) and of the sweep (test images x levels x models);
- every precondition of :mod:`prunecxr.analysis.convergence` with its measured value;
- the capacity ladder's other rungs (Q6; ``widths``), their wall time against
  ``--ladder-budget``, each rung's preconditions and the capacity rule
  (:mod:`prunecxr.analysis.capacity`).

Exit code 0 when every precondition holds and the main job fits the budget, else 1. Usage:
    python benchmarks/main_job.py [--profile default] [--set field=value ...] [--budget 600]
        [--extra-budget 420] [--ladder-budget 900] [--keep DIR]   # keep the results (and reuse them on a rerun) in DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PAPER_METHODS = ("l1", "random")  # the default's methods before Q5; the rest is Q5's extra


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--budget", type=float, default=600.0, help="seconds the main job may take")
    ap.add_argument("--extra-budget", type=float, default=420.0,
                    help="seconds the methods beyond l1 and random may add")
    ap.add_argument("--ladder-budget", type=float, default=900.0,
                    help="seconds the capacity ladder's other rungs may take")
    ap.add_argument("--keep", default=None, help="PRUNECXR_HOME to use and keep (default: a temp dir)")
    args = ap.parse_args(argv)
    home = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prunecxr-bench-"))
    os.environ["PRUNECXR_HOME"] = str(home)  # before importing prunecxr: data and results here

    from prunecxr.analysis.convergence import store_preconditions
    from prunecxr.analysis.overview import dataset_facts
    from prunecxr.config import load_config
    from prunecxr.analysis import capacity
    from prunecxr.pipeline import ensure_ladder, ensure_results
    from prunecxr.store import load

    config = load_config(args.profile, overrides=args.overrides)
    print(f"profile {config.profile} (key {config.key}): {config.arch} width {config.width} at "
          f"{config.image_size} px, {config.precision}, {config.population} seeds, methods "
          f"{', '.join(config.methods)}, workers {config.workers}; PRUNECXR_HOME={home}")
    t0 = time.perf_counter()
    store = load(ensure_results(config))
    wall = time.perf_counter() - t0
    stages = store.stage_seconds()
    total = sum(stages.values())
    work = store.sweep_seconds().groupby("method")["seconds"].sum()
    extra_methods = [m for m in store.methods if m not in PAPER_METHODS]
    extra = stages.get("sweep", 0.0) * work[extra_methods].sum() / work.sum() if len(work) else 0.0
    base = total - extra
    fits = base <= args.budget and extra <= args.extra_budget
    print("\nstage wall times:")
    for name, seconds in stages.items():
        print(f"  {name:6s} {seconds:8.1f} s")
    print(f"  {'total':6s} {total:8.1f} s; this call {wall:.1f} s")
    print("sweep work per method (seconds, all its seeds): "
          + ", ".join(f"{m} {work[m]:.1f}" for m in store.methods))
    print(f"  without {', '.join(extra_methods) or 'nothing'}: {base:.1f} s (budget {args.budget:.0f} s: "
          f"{'PASS' if base <= args.budget else 'FAIL'}); they add about {extra:.1f} s "
          f"(budget {args.extra_budget:.0f} s: {'PASS' if extra <= args.extra_budget else 'FAIL'})")

    done = store.training_summary()
    history = store.history()
    n_train = dataset_facts(store)["n_train"]
    if len(history) and stages.get("train"):
        seen = n_train * len(history)
        print(f"training: {len(done)} models, {len(history)} epochs in all, "
              f"{seen / stages['train']:,.0f} training images/s (wall, validation included)")
    if stages.get("sweep"):
        levels = sum(len(store.levels(m)) * len(store.method_seeds(m)) for m in store.methods)
        print(f"sweep: {levels} model levels x {len(store.labels)} test images, "
              f"{levels * len(store.labels) / stages['sweep']:,.0f} images/s (fine-tuning included)")

    table = store_preconditions(store)
    print("\npreconditions:")
    for row in table.itertuples():
        print(f"  [{'PASS' if row.passed else 'FAIL'}] {row.condition}: {row.measured} "
              f"(needs {row.threshold}){'; ' + row.detail if row.detail else ''}")
    ok = bool(table["passed"].all()) and fits
    if config.widths:
        t0 = time.perf_counter()
        rungs = {w: load(f) for w, f in ensure_ladder(config).items()}
        ladder_wall = time.perf_counter() - t0
        rung_table = capacity.rung_table(capacity.equal_footing(rungs))
        check = capacity.capacity_check(rung_table, config.width)
        print(f"\ncapacity ladder (widths {', '.join(map(str, sorted(rungs)))}): the other rungs "
              f"took {ladder_wall:.1f} s (budget {args.ladder_budget:.0f} s: "
              f"{'PASS' if ladder_wall <= args.ladder_budget else 'FAIL'})")
        print(rung_table.drop(columns=["failing"]).round(4).to_string(index=False))
        for row in rung_table.itertuples():
            if row.failing:
                print(f"  [FAIL] width {row.width}: {row.failing}")
        print(f"  [{'PASS' if check['passed'] else 'FAIL'}] capacity precondition: "
              + capacity.capacity_text(check, config.width))
        ok = ok and ladder_wall <= args.ladder_budget and bool(rung_table["preconditions met"].all())
    print(f"\n{'all preconditions hold and the job fits the budget' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
