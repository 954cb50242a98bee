"""The results folder, read through one public call: ``prunecxr.store.load(results_dir)``.

The folder's layout is declared in :mod:`prunecxr.layout`, which the pipeline writes through.
Reading imports no training code (no train, sweep, compress or pipeline): only
:meth:`Results.prunable_weights`, which must build a model to read its weights, imports
:mod:`prunecxr.models` and :mod:`prunecxr.prune`, inside the method.

Every prediction file is checked against its sidecar's sha256 before it is read. Each method
has its own level grid (:mod:`prunecxr.compress`): ``levels(method)`` is the share of the
prunable weight storage it removed at each grid entry (the sparsity, for pruning methods).
"""

from __future__ import annotations

import warnings
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import io, layout
from .config import GRID_METHODS, seeds_for
from .layout import prediction_path, seed_dir, sidecar_path, verify_predictions
from .metrics import auroc, average_precision


class ResultsError(FileNotFoundError):
    """A results folder is missing, incomplete or corrupt; the message says what to run."""


class Results:
    """Read-only view of one experiment's results (layout: :mod:`prunecxr.layout`)."""

    def __init__(self, results_dir: str | Path) -> None:
        self.results_dir = Path(results_dir)
        for name in layout.DATA_FILES:
            if not (self.results_dir / name).exists():
                raise ResultsError(
                    f"{self.results_dir}: missing {name}; not a finished results folder. "
                    "Run `python -m prunecxr run` (or prunecxr.pipeline.ensure_results) first."
                )
        self._dataset = io.read_json(self.results_dir / layout.DATASET)
        self.config: dict = io.read_json(self.results_dir / layout.CONFIG)
        self.dataset: str = self._dataset["name"]
        self.classes: list[str] = list(self._dataset["classes"])
        self.labels: np.ndarray = np.load(self.results_dir / layout.TEST_LABELS)
        self.meta: pd.DataFrame = pd.read_csv(self.results_dir / layout.TEST_META,
                                              keep_default_na=False, na_values=[""])
        self.train_counts = pd.Series(self._dataset["train_counts"]).reindex(self.classes)
        self.test_counts = pd.Series(self._dataset["test_counts"]).reindex(self.classes)
        self.image_size: int = int(self._dataset.get("image_size", self.config.get("image_size", 0)))
        self.sparsities: np.ndarray = np.asarray(self.config["sparsities"], dtype=float)
        self.seeds: list[int] = list(range(self.config["first_seed"],
                                           self.config["first_seed"] + self.config["population"]))
        self.methods: list[str] = list(self.config["methods"])
        # Methods on the shared sparsity grid (what the Q1-Q4 chapters compare).
        self.grid_methods: list[str] = [m for m in self.methods if m in GRID_METHODS]

    def method_seeds(self, method: str) -> list[int]:
        """Seeds swept with ``method`` (:func:`prunecxr.config.seeds_for`)."""
        return seeds_for(method, self.methods, self.seeds, self.config.get("control_population", 0))

    def subset(self, population: int, methods=None) -> "Results":
        """This store read as if it held only its first ``population`` seeds (and ``methods``,
        default all): how populations of different sizes are compared on equal terms."""
        if not 1 <= population <= len(self.seeds):
            raise ValueError(f"population must be in 1..{len(self.seeds)}, got {population}")
        methods = list(self.methods if methods is None else methods)
        unknown = [m for m in methods if m not in self.methods]
        if unknown:
            raise KeyError(f"methods {unknown} not in this store; available: {self.methods}")
        view = Results(self.results_dir)
        view.config = {**self.config, "population": population, "methods": methods}
        view.seeds = self.seeds[:population]
        view.methods = methods
        view.grid_methods = [m for m in methods if m in GRID_METHODS]
        return view

    def __repr__(self) -> str:
        return (f"Results({str(self.results_dir)!r}: {self.dataset}, {len(self.classes)} classes, "
                f"{len(self.labels)} test images, seeds {len(self.seeds)}, methods {self.methods})")

    @property
    def manifest(self) -> dict:
        path = self.results_dir / layout.MANIFEST
        return io.read_json(path) if path.exists() else {}

    def stage_seconds(self) -> dict[str, float]:
        """Wall seconds per pipeline stage, in pipeline order (data, train, sweep)."""
        stages = self.manifest.get("stages", {})
        order = ("data", "train", "sweep")
        return {k: stages[k] for k in sorted(stages, key=lambda k: (order + (k,)).index(k))}

    def _check(self, method: str, seed: int) -> None:
        if method not in self.methods:
            raise KeyError(f"method {method!r} not in this store; available: {self.methods}")
        if seed not in self.method_seeds(method):
            raise KeyError(f"seed {seed} not swept with {method!r} in this store; available: "
                           f"{self.method_seeds(method)}")

    def _sidecar(self, method: str, seed: int) -> dict:
        self._check(method, seed)
        return _read_sidecar(sidecar_path(prediction_path(self.results_dir, method, seed)))

    def predictions(self, method: str, seed: int) -> np.ndarray:
        """Sigmoid probabilities (n_levels of ``method``, n_test, n_classes), float32, verified."""
        self._check(method, seed)
        shape = (len(self._sidecar(method, seed)["nominal"]), len(self.labels), len(self.classes))
        return _read_predictions(prediction_path(self.results_dir, method, seed), shape)

    def achieved_sparsity(self, method: str, seed: int) -> np.ndarray:
        """Measured share of prunable weights that are zero or removed, per level of ``method``."""
        return np.asarray(self._sidecar(method, seed)["achieved_sparsity"], dtype=float)

    def levels(self, method: str) -> np.ndarray:
        """``method``'s levels: the share of the prunable weight storage removed at each grid
        entry (the same for every seed; checked)."""
        seeds = self.method_seeds(method)
        first = np.asarray(self._sidecar(method, seeds[0])["levels"], dtype=float)
        for seed in seeds[1:]:
            other = np.asarray(self._sidecar(method, seed)["levels"], dtype=float)
            if other.shape != first.shape or not np.allclose(other, first, atol=1e-9):
                raise ResultsError(f"{method}: seed {seed} has levels {other.tolist()}, seed "
                                   f"{seeds[0]} {first.tolist()}; rerun the pipeline")
        return first

    def level_facts(self, method: str) -> pd.DataFrame:
        """What ``method`` achieved at each level, per seed (from the sidecars): columns seed,
        nominal (the grid entry in the method's unit), unit, seconds, and the method's facts
        (level, sparsity; bits; params, macs, channels; train_loss)."""
        rows = []
        for seed in self.method_seeds(method):
            side = self._sidecar(method, seed)
            for nominal, fact, sec in zip(side["nominal"], side["achieved"], side["level_seconds"]):
                rows.append({"method": method, "seed": seed, "nominal": nominal,
                             "unit": side["unit"], "seconds": sec, **fact})
        return pd.DataFrame(rows)

    def sweep_seconds(self) -> pd.DataFrame:
        """Seconds each (method, seed) sweep took: columns method, seed, levels, seconds."""
        return pd.DataFrame([{"method": m, "seed": s, "levels": len(side["nominal"]),
                              "seconds": float(side["seconds"])}
                             for m in self.methods for s in self.method_seeds(m)
                             for side in [self._sidecar(m, s)]])

    def _metric_table(self, name: str, fn, methods=None) -> pd.DataFrame:
        rows = []
        for method in self.methods if methods is None else methods:
            levels = self.levels(method)
            on_grid = method in self.grid_methods
            for seed in self.method_seeds(method):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = fn(self.labels, self.predictions(method, seed))  # (L, C)
                rows.append(pd.DataFrame({
                    "method": method, "seed": seed,
                    "sparsity": np.repeat(levels if on_grid else np.full(len(levels), np.nan),
                                          len(self.classes)),
                    "level": np.repeat(levels, len(self.classes)),
                    "class": np.tile(self.classes, len(levels)),
                    name: values.reshape(-1),
                }))
        return pd.concat(rows, ignore_index=True)

    @cached_property
    def _ap(self) -> pd.DataFrame:
        return self._metric_table("ap", average_precision)

    def ap_table(self, methods=None) -> pd.DataFrame:
        """Tidy AP: columns method, seed, sparsity, level, class, ap (NaN where a class has no
        positives). ``level`` is each method's (see :meth:`levels`); ``sparsity`` equals it for
        the methods on the sparsity grid (``grid_methods``) and is NaN for the others.
        ``methods`` (default: all) selects rows."""
        if methods is None:
            return self._ap.copy()
        unknown = [m for m in methods if m not in self.methods]
        if unknown:
            raise KeyError(f"methods {unknown} not in this store; available: {self.methods}")
        return self._ap[self._ap["method"].isin(list(methods))].reset_index(drop=True)

    def auroc_table(self, methods=None) -> pd.DataFrame:
        """Tidy AUROC: columns method, seed, sparsity, level, class, auroc."""
        return self._metric_table("auroc", auroc, methods)

    def history(self) -> pd.DataFrame:
        """Training curves: columns seed, epoch, train_loss, val_loss, val_map."""
        frames = [pd.read_csv(p) for s in self.seeds
                  if (p := seed_dir(self.results_dir, s) / layout.HISTORY).exists()]
        if not frames:
            return pd.DataFrame(columns=["seed", "epoch", "train_loss", "val_loss", "val_map"])
        return pd.concat(frames, ignore_index=True)

    def training_summary(self) -> pd.DataFrame:
        """One row per seed from its done.json (epochs, best epoch, best val loss, seconds)."""
        rows = [io.read_json(p) for s in self.seeds
                if (p := seed_dir(self.results_dir, s) / layout.DONE).exists()]
        return pd.DataFrame(rows)

    def state_dict(self, seed: int) -> dict:
        """The trained dense model's weights of one seed (best checkpoint)."""
        path = seed_dir(self.results_dir, seed) / layout.BEST
        if not path.exists():
            raise ResultsError(f"{path} is missing; rerun the pipeline to train seed {seed}")
        return torch.load(path, map_location="cpu", weights_only=True)

    def prunable_weights(self, seed: int) -> np.ndarray:
        """1-D float32 of the dense model's Conv2d and Linear weights (what pruning acts on)."""
        from .models import build_model
        from .prune import prunable_parameters

        model = build_model(self.config["arch"], len(self.classes), width=self.config["width"])
        model.load_state_dict(self.state_dict(seed))
        return torch.cat([getattr(m, n).detach().reshape(-1)
                          for m, n in prunable_parameters(model)]).numpy()

    def test_images(self) -> np.ndarray:
        """Test images, uint8 (n_test, H, W)."""
        name = self._dataset.get("test_images")
        if name:
            return np.load(self.results_dir / name, mmap_mode="r")
        source = Path(self._dataset["images_path"])
        if not source.exists():
            raise ResultsError(f"image cache {source} is gone; rerun the pipeline to rebuild it")
        return np.asarray(np.load(source, mmap_mode="r")[self._dataset["test_indices_in_dataset"]])


@lru_cache(maxsize=64)
def _read_verified(path: Path, shape: tuple[int, ...], mtime: float) -> np.ndarray:
    if verify_predictions(path, shape) is None:
        raise ResultsError(
            f"{path} is missing, truncated or does not match its checksum; rerun the pipeline "
            "(python -m prunecxr run with the same settings) to recompute it"
        )
    array = np.load(path)
    array.setflags(write=False)
    return array


@lru_cache(maxsize=256)
def _read_sidecar_cached(path: Path, mtime: float) -> dict:
    return io.read_json(path)


def _read_sidecar(path: Path) -> dict:
    if not path.exists():
        raise ResultsError(f"{path} is missing; rerun the pipeline (python -m prunecxr run with "
                           "the same settings) to compute it")
    return _read_sidecar_cached(path, path.stat().st_mtime)


def _read_predictions(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    mtime = path.stat().st_mtime if path.exists() else -1.0
    return _read_verified(path, shape, mtime)


def load(results_dir: str | Path) -> Results:
    """Open a results folder written by :func:`prunecxr.pipeline.ensure_results`."""
    return Results(results_dir)
