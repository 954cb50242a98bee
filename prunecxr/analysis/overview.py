"""Data and methods at a glance: the tables and figures of the book's "Data and methods" chapter.

Everything here takes plain arrays and DataFrames (class names, a 0/1 label matrix, count
series, the tidy training history) and returns a DataFrame or a matplotlib Figure, so it works
on any dataset behind the :mod:`prunecxr.data` interface and is tested without a results store.

- :func:`class_table` / :func:`class_counts_figure`: positives per class and split, log scale.
- :func:`iou_matrix` / :func:`cooccurrence_figure`: co-occurrence as intersection over union of
  the true label sets (|A and B| / |A or B| over images), the paper's co-occurrence measure.
- :func:`findings_per_image`: how many images carry d = 0, 1, 2, 3, 4+ findings.
- (the training curves and the convergence preconditions live in :mod:`.convergence`)
- :func:`sparsity_table`: requested vs achieved sparsity of the pruned models.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

NO_FINDING = "No Finding"

__all__ = [
    "class_table",
    "class_counts_figure",
    "iou_matrix",
    "cooccurrence_figure",
    "findings_per_image",
    "sparsity_table",
    "dataset_facts",
]


def class_table(
    classes: Sequence[str],
    train_counts: pd.Series | Sequence[int],
    test_counts: pd.Series | Sequence[int] | None = None,
    n_train: int | None = None,
) -> pd.DataFrame:
    """Positives per class, most frequent first.

    Columns: ``class``, ``train`` (count), ``train_share`` (fraction of train images when
    ``n_train`` is given), ``test`` (count, when given) and ``rank`` (1 = most frequent in train).
    The order of ``classes`` decides ties.
    """
    classes = list(classes)
    train = _as_counts(train_counts, classes, "train_counts")
    table = pd.DataFrame({"class": classes, "train": train})
    if n_train:
        table["train_share"] = table["train"] / float(n_train)
    if test_counts is not None:
        table["test"] = _as_counts(test_counts, classes, "test_counts")
    table = table.sort_values("train", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def class_counts_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Horizontal bars of positives per class (log scale), train and, when present, test.

    ``table`` is :func:`class_table`'s output.
    """
    fig = Figure(figsize=(6.4, 0.26 * len(table) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(table))
    has_test = "test" in table
    h = 0.4 if has_test else 0.8
    ax.barh(y - (h / 2 if has_test else 0), table["train"].clip(lower=0.8), height=h,
            label="train", color="#3b6ea8")
    if has_test:
        ax.barh(y + h / 2, table["test"].clip(lower=0.8), height=h, label="test", color="#e3913d")
    ax.set_yticks(y, table["class"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("positive images (log scale)")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    if title:
        ax.set_title(title)
    return fig


def iou_matrix(labels: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Intersection over union of every pair of classes' positive image sets.

    ``IoU[a, b] = |A and B| / |A or B|`` from true counts; the diagonal is 1 for a class with
    positives and NaN for a class without any (0/0). Symmetric DataFrame indexed by class.
    """
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != len(classes):
        raise ValueError(f"labels must have shape (n, {len(classes)}), got {y.shape}")
    y = (y > 0).astype(np.int64)
    inter = y.T @ y
    counts = np.diag(inter)
    union = counts[:, None] + counts[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return pd.DataFrame(iou, index=list(classes), columns=list(classes))


def cooccurrence_figure(iou: pd.DataFrame, power: float = 0.25, title: str | None = None) -> Figure:
    """Heatmap of pairwise IoU (off-diagonal), colour on the IoU^power scale (paper: 1/4).

    The diagonal is left blank: it is 1 by definition and would swamp the colour scale.
    """
    values = iou.to_numpy(dtype=float).copy()
    np.fill_diagonal(values, np.nan)
    shown = np.power(values, power)
    n = len(iou)
    size = max(4.5, 0.33 * n + 2.0)
    fig = Figure(figsize=(size + 0.9, size), layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#f2f2f2")
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0.0,
                      vmax=max(float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0, 1e-6))
    ax.set_xticks(np.arange(n), list(iou.columns), rotation=90, fontsize=7)
    ax.set_yticks(np.arange(n), list(iou.index), fontsize=7)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    label = "IoU" if power == 1 else f"IoU$^{{{_power_label(power)}}}$"
    bar.set_label(label)
    if title:
        ax.set_title(title)
    return fig


def findings_per_image(labels: np.ndarray, classes: Sequence[str], top: int = 4) -> pd.DataFrame:
    """Images by number of findings d = 0, 1, ..., top-1, top+ ("No Finding" is not counted).

    Columns: ``findings`` (label such as ``"0"`` or ``"4+"``), ``images``, ``share``.
    """
    y = np.asarray(labels) > 0
    keep = [i for i, c in enumerate(classes) if c != NO_FINDING]
    d = y[:, keep].sum(axis=1)
    bins = np.minimum(d, top)
    counts = np.bincount(bins, minlength=top + 1)[: top + 1]
    names = [str(i) for i in range(top)] + [f"{top}+"]
    total = max(int(counts.sum()), 1)
    return pd.DataFrame({"findings": names, "images": counts.astype(int), "share": counts / total})


def sparsity_table(sparsities: Sequence[float], achieved: dict[str, np.ndarray]) -> pd.DataFrame:
    """Requested sparsity k beside the achieved fraction of zero prunable weights.

    ``achieved`` maps a label (e.g. ``"l1, seed 0"``) to an array aligned with ``sparsities``.
    Columns: ``k`` then one column per label.
    """
    table = pd.DataFrame({"k": np.asarray(sparsities, dtype=float)})
    for name, values in achieved.items():
        values = np.asarray(values, dtype=float)
        if values.shape != table["k"].shape:
            raise ValueError(f"achieved[{name!r}] has shape {values.shape}, expected {table['k'].shape}")
        table[name] = values
    return table


def _as_counts(values, classes: list[str], name: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        missing = [c for c in classes if c not in values.index]
        if missing:
            raise ValueError(f"{name} lacks classes {missing}")
        values = values.reindex(classes)
    out = np.asarray(values, dtype=float)
    if out.shape != (len(classes),):
        raise ValueError(f"{name} must have one count per class ({len(classes)}), got {out.shape}")
    return out.astype(int)


def _power_label(power: float) -> str:
    inv = 1.0 / power
    return f"1/{int(round(inv))}" if abs(inv - round(inv)) < 1e-9 else f"{power:g}"


# ------------------------------------------------------------------------------------------
# Facts about a results store (the claims beside the paper's numbers: prunecxr.claims)
# ------------------------------------------------------------------------------------------


def dataset_facts(store) -> dict:
    """Plain-Python facts about a store's data and configuration, for tables and glue.

    Keys: dataset_name, dataset_description, n_classes, n_train, n_val, n_test, image_size,
    population, arch, weights, methods, n_sparsities, max_sparsity, profile, config_key.
    """
    from .. import io
    from ..data.registry import description as dataset_description
    from ..layout import DATASET

    info = {}
    path = store.results_dir / DATASET
    if path.exists():
        info = io.read_json(path)
    n_images = info.get("n_images", {})
    cfg = store.config
    return {
        "dataset_name": store.dataset,
        "dataset_description": dataset_description(store.dataset),
        "n_classes": len(store.classes),
        "n_train": int(n_images.get("train", 0)),
        "n_val": int(n_images.get("val", 0)),
        "n_test": int(len(store.labels)),
        "image_size": int(info.get("image_size", cfg.get("image_size", 0))),
        "population": len(store.seeds),
        "arch": str(cfg.get("arch", "")),
        "weights": str(cfg.get("weights", "")),
        "methods": list(store.methods),
        "n_sparsities": int(len(store.sparsities)),
        "max_sparsity": float(np.max(store.sparsities)),
        "profile": str(cfg.get("profile", "")),
        "config_key": str(cfg.get("key", "")),
    }


def recipe_texts(config) -> dict:
    """The training recipe and the compression methods of ``config`` in words, for the data
    chapter: weights_text, methods_text, other_methods_text, schedule_text, width_text,
    min_delta_text."""
    from ..config import COMPRESSION_METHODS, GRID_METHODS

    def label(m):
        return COMPRESSION_METHODS[m].label if m in COMPRESSION_METHODS else m

    others = [label(m) for m in config.methods if m not in GRID_METHODS]
    return {
        "weights_text": {"none": "trained from random initialisation",
                         "imagenet": "initialised from ImageNet weights"}.get(
            config.weights, f"initialised from {config.weights}"),
        "methods_text": " and ".join(label(m) for m in config.methods if m in GRID_METHODS),
        "other_methods_text": (("Chapter Q5 compresses the same models in further ways: "
                                + ", ".join(others) + ".") if others else
                               "This build runs no further compression methods (see Q5 to add "
                               "them)."),
        "schedule_text": {
            "constant": "constant",
            "plateau": (f"divided by 10 after {config.lr_patience + 1} epochs without a lower "
                        "validation loss"),
            "cosine": f"decayed along half a cosine to 1% over {config.lr_epochs} epochs",
        }[config.lr_schedule],
        "width_text": ("" if config.width == 64 else
                       f"The network is torchvision's {config.arch} with every channel count "
                       f"scaled by {config.width}/64 (stem {config.width} channels instead of "
                       "64), so that the whole population converges within the CPU budget of "
                       "this build."),
        "min_delta_text": (f"by more than {config.min_delta:.0%} below its best"
                           if config.min_delta else "below its best"),
    }
