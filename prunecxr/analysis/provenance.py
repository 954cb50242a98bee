"""Where a build's numbers come from: its settings, software, machine, timings and seeds.

The tables and sentences of the Reproducibility chapter, read from a results store and its
manifest (and, for the book build's own timings, the JSON file ``make book`` writes).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pandas as pd

BOOK_PACKAGES = ("jupyter-book", "myst-nb", "sphinx", "papermill", "nbval", "scikit-learn")
WHAT_STAGES_COUNT = {"train": "training images", "sweep": "test images (every level of every model)"}


def run_command(config, dataset: str = "", data_dir: str = "", overrides=()) -> str:
    """The ``python -m prunecxr run`` command that gives these results again."""
    parts = ["python -m prunecxr run", f"--profile {config.profile}"]
    if dataset:
        parts.append(f"--dataset {dataset}")
    if data_dir:
        parts.append(f"--data-dir {data_dir}")
    return " ".join(parts + [f"--set {o}" for o in overrides])


def settings_table(config) -> pd.DataFrame:
    """Every result-determining setting of ``config``: columns setting, value."""
    return pd.DataFrame(
        [(k, json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v))
         for k, v in sorted(config.result_fields().items())], columns=["setting", "value"])


def versions(manifest: dict) -> dict:
    """Package versions of the run (from the manifest) and of the book's own tools."""
    out = dict(manifest.get("versions", {}))
    for name in BOOK_PACKAGES:
        try:
            out.setdefault(name, metadata.version(name))
        except metadata.PackageNotFoundError:
            out.setdefault(name, None)
    return out


def machine_text(manifest: dict) -> str:
    machine = manifest.get("machine", {})
    return ", ".join(f"{k} {v}" for k, v in machine.items() if v not in (None, "")) or "unknown"


def rates_text(store) -> str:
    """Each stage's throughput (and peak GPU memory), from the manifest, in words."""
    rates = store.manifest.get("rates", {})
    return " ".join(
        f"The {stage} stage processed {r['images_per_s']:,.0f} "
        f"{WHAT_STAGES_COUNT.get(stage, 'images')} per second of its wall time"
        + (f", with at most {r['peak_gpu_bytes'] / 2**30:.1f} GiB on the GPU."
           if r.get("peak_gpu_bytes") else ".")
        for stage, r in ((k, rates[k]) for k in store.stage_seconds() if k in rates)
    ) or "These results do not record the stages' throughput."


def timings(store, timings_file: str = "") -> tuple[pd.DataFrame, str]:
    """(seconds and images/s of each pipeline stage and book step, a sentence on the book
    build's own timings); ``timings_file`` is the JSON ``make book`` writes ("" for none)."""
    stages, rates = store.stage_seconds(), store.manifest.get("rates", {})
    rows = [("pipeline " + k, v, rates.get(k, {}).get("images_per_s")) for k, v in stages.items()]
    text = "The timings of the book build itself are not recorded in this run."
    if timings_file:
        book = json.loads(Path(timings_file).read_text())
        rows += [("notebook " + name, s, None) for name, s in book.get("notebooks", {}).items()]
        steps = ("results", "mathjax", "chapters", "jupyter_book")
        rows += [(name, book[name], None) for name in steps if name in book]
        each = sum(book.get("notebooks", {}).values())
        wall = book.get("chapters", each)  # chapters run side by side: less than their sum
        text = (f"Executing the chapter notebooks took {wall:.0f} seconds of wall time in this "
                f"build ({each:.0f} s summed over the chapters, which run side by side; the "
                "rendering time of the HTML is in the build folder's timings.json).")
    return pd.DataFrame(rows, columns=["step", "seconds", "images_per_s"]).round(1), text


def where_seeds_ran(store, precision: str) -> tuple[pd.DataFrame, str]:
    """(host, device, GPUs, SLURM task, epochs, seconds and throughput per seed, a sentence)."""
    trained = store.training_summary()
    cols = ["seed", "host", "device", "visible_gpus", "slurm_job", "epochs", "seconds",
            "images_per_s", "peak_gpu_bytes"]
    where = trained[[c for c in cols if c in trained]].copy()  # older results lack some
    if "peak_gpu_bytes" in where:  # GiB, and only where a GPU was used
        where["peak_gpu_gib"] = where.pop("peak_gpu_bytes").astype(float) / 2**30
        where = where.dropna(axis=1, how="all")
    hosts = where["host"].nunique() if "host" in where else 0
    if not hosts:
        return where, "These results do not record where their seeds ran."
    slurm = int((where.get("slurm_job", pd.Series(dtype=str)).fillna("") != "").sum())
    text = f"The {len(where)} seeds ran on {hosts} host(s), {slurm} of them as SLURM tasks."
    if "images_per_s" in where:
        text += (f" Training ran at {where['images_per_s'].median():,.0f} training images per "
                 f"second per seed (median, validation included), in {precision}.")
    return where.round({"seconds": 1, "images_per_s": 0, "peak_gpu_gib": 2}), text


def folder_contents(store) -> pd.DataFrame:
    """Files in the results folder, counted by top-level entry."""
    files = sorted(p.relative_to(store.results_dir).as_posix() for p in store.results_dir.rglob("*")
                   if p.is_file())
    return pd.Series([f.split("/")[0] for f in files]).value_counts().rename("files").to_frame()
