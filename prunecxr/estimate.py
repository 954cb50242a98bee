"""What a run would do, and about how long it would take: ``python -m prunecxr run --dry-run``.

The work is counted from the configuration (models, levels per method, images per split); the
time divides it by a throughput, measured when possible: the ``rates`` of the newest manifest
under the results root whose model, image size and device match (images per second of its
training and sweep stages), else a figure measured on this project's machines
(:data:`MEASURED`), scaled by the model's relative cost. Training is counted at
``max_epochs`` (an upper bound: early stopping usually ends sooner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import layout

# Throughputs measured on this project's machines (README, ../shared/DESIGN.md), images/s:
# (device, arch, width, image_size) -> (training, inference, where measured).
MEASURED = {
    ("cpu", "resnet18", 8, 64): (2884.0, None, "2 CPU cores, 2 processes (benchmarks/train_speed.py)"),
    ("cuda", "resnet50", 64, 256): (1229.0, 5643.0, "one H200, ResNet-50 at 256 px, batch 256"),
}
# Forward+backward costs about three forwards (DESIGN.md: 557/184, 720/190, 1,816/558).
INFERENCE_OVER_TRAINING = 3.0
# Relative cost per image of each architecture at width 64 (GFLOPs at 224 px).
ARCH_GFLOPS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 4.1}


@dataclass
class Plan:
    """The counted work of one configuration and its estimated seconds."""

    models: int
    sweeps: dict  # method -> (seeds, levels)
    images: dict  # split -> count (None when unknown without reading the data)
    train_rate: float | None
    sweep_rate: float | None
    rate_source: str
    train_s: float | None
    sweep_s: float | None

    @property
    def total_s(self) -> float | None:
        if self.train_s is None or self.sweep_s is None:
            return None
        return self.train_s + self.sweep_s


def _cost(arch: str, width: int, size: int) -> float:
    return ARCH_GFLOPS.get(arch, 4.1) * (width / 64) ** 2 * (size / 224) ** 2


def measured_rates(config, root: Path, device: str) -> tuple[float | None, float | None, str]:
    """(training, sweep) images/s and where they come from."""
    best = None
    for manifest in root.glob(f"*/{layout.MANIFEST}") if root.is_dir() else []:
        try:
            m = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        c, rates = m.get("config", {}), m.get("rates", {})
        used_cuda = bool(m.get("machine", {}).get("cuda")) and c.get("device") != "cpu"
        same = all(c.get(k) == getattr(config, k) for k in
                   ("arch", "width", "image_size", "batch_size", "precision", "channels_last"))
        if same and used_cuda == (device == "cuda") and "train" in rates:
            if best is None or m.get("updated", "") > best[0]:
                best = (m.get("updated", ""), rates, manifest.parent)
    if best:
        rates = best[1]
        train = rates["train"].get("images_per_s")
        sweep = rates.get("sweep", {}).get("images_per_s") or (train or 0) * INFERENCE_OVER_TRAINING
        return train, sweep, f"measured by the run in {best[2]}"
    candidates = [(k, v) for k, v in MEASURED.items() if k[0] == device]
    if not candidates:
        return None, None, "no measured throughput for this device"
    key, (train, infer, where) = min(
        candidates, key=lambda kv: abs(_cost(*kv[0][1:]) / _cost(config.arch, config.width,
                                                                 config.image_size) - 1))
    scale = _cost(*key[1:]) / _cost(config.arch, config.width, config.image_size)
    exact = key[1:] == (config.arch, config.width, config.image_size)
    train = train * scale
    sweep = (infer * scale) if infer else train * INFERENCE_OVER_TRAINING
    how = "measured" if exact else f"scaled by model cost from {key[1]} width {key[2]} at {key[3]} px"
    return train, sweep, f"{how} ({where}); a rough guide"


def plan(config, root: Path, device: str = "cpu") -> Plan:
    """Count the work of ``config`` and estimate its time on ``device`` ("cpu" or "cuda")."""
    from . import compress
    from .data.registry import split_sizes

    sizes = split_sizes(config)
    sweeps = {m: (len(config.method_seeds(m)), len(compress.grid(m, config)))
              for m in config.methods}
    train_rate, sweep_rate, source = measured_rates(config, root, device)
    n_train, n_val, n_test = sizes.get("train"), sizes.get("val"), sizes.get("test")
    train_s = sweep_s = None
    if train_rate and sweep_rate and None not in (n_train, n_val, n_test):
        train_images = config.population * config.max_epochs * n_train
        val_images = config.population * config.max_epochs * n_val
        ft = sum(seeds * (levels - 1) * config.finetune_epochs * n_train
                 for m, (seeds, levels) in sweeps.items() if compress.needs_train(m))
        train_s = (train_images + ft) / train_rate + val_images / sweep_rate
        sweep_s = sum(seeds * levels * n_test for seeds, levels in sweeps.values()) / sweep_rate
    return Plan(config.population, sweeps, sizes, train_rate, sweep_rate, source, train_s, sweep_s)


def duration(seconds: float) -> str:
    """``95`` -> ``2 min``; ``7200`` -> ``2.0 h``; ``400000`` -> ``4.6 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(config, root: Path, device: str, workers: int = 1) -> str:
    """The dry run's report: configuration, results folder, models and levels, estimate."""
    import dataclasses

    p = plan(config, root, device)
    fields = dataclasses.asdict(config)
    width = max(map(len, fields))
    lines = ["configuration (profile %s, key %s):" % (config.profile, config.key)]
    lines += [f"  {k.ljust(width)}  {json.dumps(v) if not isinstance(v, str) else v}"
              for k, v in fields.items()]
    folder = f"{config.profile}-{config.dataset}-{config.key}-<data id>"
    existing = sorted(root.glob(f"{config.profile}-{config.dataset}-{config.key}-*"))
    lines.append(f"results folder: {root}/{folder}"
                 + (f" (exists: {existing[-1].name})" if existing else " (new)"))
    sizes = ", ".join(f"{s} {n:,}" if n is not None else f"{s} ?" for s, n in p.images.items())
    lines.append(f"images: {sizes}")
    total = sum(s * lv for s, lv in p.sweeps.values())
    lines.append(f"models: {p.models} trained (up to {config.max_epochs} epochs each); "
                 f"{total} compressed models evaluated:")
    for m, (seeds, levels) in p.sweeps.items():
        lines.append(f"  {m}: {seeds} seed(s) x {levels} levels")
    if p.total_s is None and None in p.images.values():
        lines.append("estimated time: unknown (the label files under data_dir could not be "
                     "counted)")
    elif p.total_s is None:
        lines.append(f"estimated time: unknown ({p.rate_source}; run once with "
                     "--set population=1 and dry-run again to measure)")
    else:
        par = max(1, min(workers, p.models)) if device == "cuda" else 1
        lines.append(f"estimated time on {device}: at most {duration(p.total_s / par)} "
                     f"(training {duration(p.train_s / par)} at {p.train_rate:,.0f} img/s, sweeps "
                     f"{duration(p.sweep_s / par)} at {p.sweep_rate:,.0f} img/s; {p.rate_source})")
    lines.append("nothing was run (--dry-run)")
    return "\n".join(lines)
