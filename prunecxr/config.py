"""Experiment configuration: one dataclass, three named profiles, typed overrides, a key.

``paper`` is the published recipe (REFERENCE.md), meant for a GPU; ``default`` is the embedded
phantom at a size that meets the preconditions of
:mod:`prunecxr.analysis.convergence` (every seed early-stopped, every class learned, 64 px,
8 seeds), made to run on 2 CPU cores by the levers measured in ``benchmarks/`` (its time:
``benchmarks/main_job.py``); ``smoke`` is a tiny version for tests. Any field can be
overridden (``population=5``, ``methods=l1``, ``data.n_images=2000`` for a dataset option).
The key hashes every field that changes results plus the library version, so a changed
parameter never reuses stale results.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from . import __version__
from .errors import UsageError, did_you_mean, option

PROFILES = ("paper", "default", "smoke")
# Fields that change how fast results come, not what they are: excluded from the key.
EXECUTION_FIELDS = ("device", "threads", "workers", "compile", "data_dir", "cache_dir")
# Fields that name the other populations of the capacity ladder (:func:`ladder`), not this
# one's results: excluded from the key, so adding a rung never retrains the default.
LADDER_FIELDS = ("widths", "ladder_population")
# The methods every rung of the ladder sweeps (issue 25: l1 and its random control).
LADDER_METHODS = ("l1", "random")
PRECISIONS = ("fp32", "bf16")
LR_SCHEDULES = ("constant", "plateau", "cosine")
# torchvision's ResNets that prunecxr.models builds (declared here so that checking a
# configuration imports no torchvision; models takes them from here).
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


class Method(NamedTuple):
    """A compression method as a configuration names it (:mod:`prunecxr.compress` implements it)."""

    levels: str  # the Config field holding its level grid
    label: str  # what the book calls it


# The compression methods: prunecxr.compress registers a class under each name (and checks that
# the names agree). Declared here, below compress, so that a configuration is checked and the
# book names the methods without importing the methods and the training code.
COMPRESSION_METHODS = {
    "l1": Method("sparsities", "global L1 (magnitude) pruning"),
    "random": Method("sparsities", "global random pruning"),
    "local_l1": Method("sparsities", "layer-wise L1 pruning"),
    "channel_l1": Method("channel_ratios", "L1 channel pruning"),
    "channel_l2": Method("channel_ratios", "L2 channel pruning"),
    "channel_l1_bn": Method("channel_ratios", "L1 channel pruning with BatchNorm re-estimated"),
    "quant": Method("quant_bits", "weight quantisation"),
    "l1_ft": Method("finetune_sparsities", "L1 pruning with fine-tuning"),
}
# Methods swept along ``sparsities`` with nominal level = sparsity (what Q1-Q4 compare).
GRID_METHODS = tuple(m for m, method in COMPRESSION_METHODS.items() if method.levels == "sparsities")


def _default_grid() -> list[float]:
    """The paper's sparsities 0, 0.05, ..., 0.95: ``prunecxr.prune.sparsity_grid()``, written
    out here so that checking a configuration imports no torch (a tested equality)."""
    return [round(i * 0.05, 10) for i in range(20)]


def _fraction(text: str) -> float:
    return round(float(text), 10)


# Tuple fields given as "a,b,c" on the command line, and how each item is read.
NUMBER_TUPLES = {"sparsities": _fraction, "channel_ratios": _fraction,
                 "finetune_sparsities": _fraction, "quant_bits": int, "widths": int}


def seeds_for(method: str, methods, seeds: list[int], control_population: int) -> list[int]:
    """Every seed for the first (main) method; the first ``control_population`` of them (all
    when 0) for the controls after it."""
    if method == methods[0] or not control_population:
        return list(seeds)
    return list(seeds)[:control_population]


@dataclass(frozen=True)
class Config:
    """Everything that determines an experiment's results (and a few execution knobs)."""

    profile: str = "default"
    dataset: str = "phantom"
    data: dict = field(default_factory=dict)  # options passed to get_dataset
    arch: str = "resnet18"
    width: int = 64  # stem channels; torchvision's ResNets have 64, 32 halves every layer
    weights: str = "none"  # "none", "imagenet" (torch cache) or a path to a state dict
    image_size: int = 48
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" (the paper), "plateau" or "cosine"
    lr_patience: int = 1  # plateau: epochs without a lower validation loss before lr x0.1
    lr_epochs: int = 10  # cosine: epochs over which lr decays to 1% of lr (then stays there)
    max_epochs: int = 8
    patience: int = 3
    min_delta: float = 0.0  # an epoch improves only if val loss falls by more than this fraction
    population: int = 10
    control_population: int = 0  # seeds for the methods after the first (controls); 0 = all
    #   (at most population: a smaller population applies to the controls too)
    first_seed: int = 0
    augment: bool = True
    rotation: float = 15.0
    methods: tuple = ("l1", "random")  # the first is the main method; see prunecxr.compress
    sparsities: tuple = field(default_factory=lambda: tuple(_default_grid()))
    # Level grids of the Q5 methods (prunecxr.compress), each without its uncompressed level.
    # channel_l1/l2: fine steps first (at width 8 the first 2% already removes a channel of
    # the widest layer), up to 0.8 (beyond it Torch-Pruning keeps channels it cannot remove)
    channel_ratios: tuple = (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6,
                             0.7, 0.8)
    quant_bits: tuple = (8, 6, 5, 4, 3, 2)  # quant
    finetune_sparsities: tuple = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)  # l1_ft
    finetune_epochs: int = 1  # l1_ft: epochs of masked training after pruning
    finetune_lr: float = 1e-4  # l1_ft: Adam's rate (the plateau schedule's first lowered rate)
    eval_batch_size: int = 256
    precision: str = "fp32"  # "fp32" or "bf16" (autocast)
    channels_last: bool = False  # NHWC activations (faster convolutions on CPU and GPU)
    device: str = "auto"  # "auto", "cpu", "cuda"
    threads: int = 0  # torch intra-op threads per process; 0 = leave torch's default
    workers: int = 1  # seeds trained and swept side by side in this many processes
    compile: bool = False  # torch.compile the training step (agrees with eager to 1e-3: tests)
    data_dir: str = ""
    cache_dir: str = ""
    # The capacity ladder (Q6): the same data and recipe at these widths (and at ``width``, the
    # rung that is this population), each rung a population with its own key; () = no ladder.
    widths: tuple = ()
    ladder_population: int = 3  # seeds of the other rungs (their first seeds)

    @property
    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.population))

    def method_seeds(self, method: str) -> list[int]:
        """Seeds swept with ``method``: all for the first method, ``control_population`` after."""
        return seeds_for(method, self.methods, self.seeds, self.control_population)

    def result_fields(self) -> dict:
        """The fields that determine results (execution knobs removed)."""
        d = dataclasses.asdict(self)
        for name in EXECUTION_FIELDS + LADDER_FIELDS:
            d.pop(name)
        return d

    @property
    def key(self) -> str:
        """Short hash of the result-determining fields and the library version."""
        from .data.base import digest

        return digest(self.result_fields(), __version__)[:10]

    def dataset_options(self) -> dict:
        """Keyword arguments for ``get_dataset(self.dataset, ...)`` (from the dataset's
        registry entry, :func:`prunecxr.data.registry.dataset_options`)."""
        from .data.registry import dataset_options

        return dataset_options(self)


_PROFILE_VALUES: dict[str, dict[str, Any]] = {
    "paper": dict(
        dataset="nih-cxr-lt", arch="resnet50", weights="imagenet", image_size=256,
        batch_size=256, lr=1e-4, max_epochs=60, patience=15, population=30,
        methods=("l1",), eval_batch_size=512,
    ),
    "default": dict(
        dataset="phantom", data={"n_images": 10000}, arch="resnet18", width=8, weights="none",
        image_size=64, batch_size=64, lr=1e-3, lr_schedule="plateau", lr_patience=1,
        max_epochs=30, patience=3, min_delta=0.01, population=8,
        control_population=0,  # every method on all 8 seeds: Q5 compares methods paired by seed
        channels_last=True, workers=2,
        methods=("l1", "random", "local_l1", "channel_l1", "channel_l1_bn", "quant", "l1_ft"),
        # width 24: about the paper's 270 prunable weights per training image (issue 25)
        widths=(8, 16, 24), ladder_population=3,
    ),
    "smoke": dict(
        dataset="phantom", data={"n_images": 600}, arch="resnet18", width=16, weights="none",
        image_size=32, batch_size=32, lr=1e-3, lr_schedule="plateau", max_epochs=2, patience=2,
        population=3, channels_last=True,
        methods=("l1", "random", "local_l1", "channel_l1", "channel_l1_bn", "quant", "l1_ft"),
        channel_ratios=(0.25, 0.5, 0.75), quant_bits=(8, 4, 2), finetune_sparsities=(0.5, 0.9),
        widths=(8, 16), ladder_population=3,
    ),
}


def ladder(config: Config) -> list[Config]:
    """The rungs of ``config``'s capacity ladder, narrowest first: ``config`` itself at its own
    width, and at every other width of ``widths`` the same data and recipe with
    :data:`LADDER_METHODS` on its first ``ladder_population`` seeds (a key of its own).
    Empty without ``widths``, and from pretrained weights (they exist for width 64 alone)."""
    if not config.widths or config.weights != "none":
        return []
    rungs = []
    for width in sorted(set(config.widths) | {config.width}):
        if width == config.width:
            rungs.append(config)
        else:
            rungs.append(dataclasses.replace(
                config, width=width, methods=LADDER_METHODS, control_population=0,
                population=min(config.ladder_population, config.population)))
    return rungs


def _field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


# What an override of each type must look like, for messages.
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number",
             dict: "a JSON object, e.g. {\"n_images\": 2000}", tuple: "a list", str: "text"}


def _override(name: str, raw: Any) -> str:
    """How the user wrote an override: ``--set name=raw`` (CLI) or ``override name=raw``."""
    text = f"{name}={raw}"
    return f"--set {text}" if option("set").startswith("--") else f"override {text!r}"


def _expected(name: str, current: Any) -> str:
    """What a value of ``name`` must look like, for a text that does not parse (a number list,
    number, boolean or JSON object) or a Python value of another type (:func:`_typed`)."""
    if name in NUMBER_TUPLES:
        kind = "integers" if NUMBER_TUPLES[name] is int else "numbers"
        example = ",".join(f"{x:g}" for x in current[:3])
        return f"a comma-separated list of {kind}, e.g. {name}={example}"
    return next(text for kind, text in _EXPECTED.items() if isinstance(current, kind))


def _typed(name: str, raw: Any, current: Any) -> Any:
    """A value given from Python (a dict of overrides) as the field's type: a list for a
    tuple, any integer for an int, any real for a float; else a UsageError naming it."""
    if isinstance(current, tuple) and isinstance(raw, (list, tuple)):
        return tuple(raw)
    if isinstance(current, bool) or isinstance(raw, bool):
        ok = isinstance(current, bool) and isinstance(raw, bool)
    elif isinstance(current, (int, float)):
        ok = isinstance(raw, numbers.Integral if isinstance(current, int) else numbers.Real)
    else:
        ok = isinstance(raw, type(current)) and not isinstance(current, tuple)
    if not ok:
        raise UsageError(f"{_override(name, raw)}: expected {_expected(name, current)}")
    return type(current)(raw)


def _coerce(name: str, raw: Any, current: Any) -> Any:
    """Convert an override value (often a string from the CLI) to the field's type."""
    if not isinstance(raw, str):
        return _typed(name, raw, current)
    text = raw.strip()
    try:
        if isinstance(current, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            items = [t.strip() for t in text.strip("()[]").split(",") if t.strip()]
            if name in NUMBER_TUPLES:
                return tuple(NUMBER_TUPLES[name](t) for t in items)
            return tuple(items)
        if isinstance(current, dict):
            return json.loads(text)
    except ValueError:
        raise UsageError(f"{_override(name, raw)}: expected {_expected(name, current)}") from None
    return text


def _guess(value: str, choices: Iterable[str]) -> str:
    return did_you_mean(value, choices)


def parse_overrides(overrides: dict | Iterable[str] | None) -> dict[str, Any]:
    """``["population=5", "data.n_images=2000"]`` or a dict -> dict of raw values."""
    if overrides is None:
        return {}
    if isinstance(overrides, dict):
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [overrides] if overrides.strip() else []
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"{_override(item, '')[:-1]}: an override must look like "
                             f"field=value, e.g. population=5")
        name, value = item.split("=", 1)
        out[name.strip()] = value
    return out


def load_config(
    profile: str = "default",
    dataset: str | None = None,
    data_dir: str | None = None,
    overrides: dict | Iterable[str] | None = None,
) -> Config:
    """The named profile with the dataset, data folder and field overrides applied.

    Raises ValueError naming the bad parameter and the allowed values.
    """
    from .data.registry import entry

    if profile not in PROFILES:
        raise UsageError(f"{option('profile')}: profile must be one of {', '.join(PROFILES)}, "
                         f"got {profile!r}{_guess(profile, PROFILES)}")
    values = dict(_PROFILE_VALUES[profile])
    values["data"] = dict(values.get("data", {}))
    if dataset:
        entry(dataset)  # UsageError naming the datasets
        if dataset != values["dataset"]:
            values["dataset"] = dataset
            values["data"] = {}
    if data_dir:
        values["data_dir"] = str(data_dir)
    base = Config(profile=profile)
    names = _field_names()
    for name, raw in parse_overrides(overrides).items():
        if name.startswith("data."):
            values["data"][name[5:]] = _coerce_data_value(raw)
            continue
        if name not in names or name == "profile":
            allowed = [n for n in names if n != "profile"] + ["data.<option>"]
            raise UsageError(f"{_override(name, raw)}: unknown parameter {name!r}"
                             f"{_guess(name, allowed)}; allowed: {', '.join(allowed)}")
        current = values.get(name, getattr(base, name))
        values[name] = _coerce(name, raw, current)
    config = Config(profile=profile, **values)
    validate(config)
    return config


def _check_increasing(name: str, values, low: float, high: float, open_low: bool = False) -> None:
    """``values`` must be non-empty, strictly increasing and inside [low, high) ((low, high))."""
    v = [float(x) for x in values]
    if (not v or any(b <= a for a, b in zip(v, v[1:])) or v[-1] >= high
            or v[0] < low or (open_low and v[0] <= low)):
        bound = "(" if open_low else "["
        raise ValueError(f"{name} must increase strictly within {bound}{low:g}, {high:g}), got {v}")


def _coerce_data_value(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def validate(config: Config) -> None:
    """Check ranges once, with messages that name the parameter and what is allowed."""
    from .data.registry import check_options, entry

    entry(config.dataset)
    check_options(config.dataset, config.data)
    for name in ("image_size", "batch_size", "max_epochs", "population", "eval_batch_size", "workers"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.control_population < 0:
        raise ValueError(f"control_population must be >= 0, got {config.control_population}")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {config.lr_schedule!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {config.precision!r}")
    if config.width < 8 or config.width % 8:
        raise ValueError(f"width must be a positive multiple of 8, got {config.width}")
    if any(w < 8 or w % 8 for w in config.widths):
        raise ValueError(f"widths must be positive multiples of 8, got {list(config.widths)}")
    if len(set(config.widths)) != len(config.widths):
        raise ValueError(f"widths must not repeat a width, got {list(config.widths)}")
    if config.ladder_population < 1:
        raise ValueError(f"ladder_population must be >= 1, got {config.ladder_population}")
    if config.width != 64 and config.weights != "none":
        raise ValueError(f"weights={config.weights!r} need width=64 (pretrained weights exist "
                         f"only for torchvision's widths), got width={config.width}")
    if not 0.0 <= config.min_delta < 1.0:
        raise ValueError(f"min_delta must be in [0, 1), got {config.min_delta}")
    if config.lr_epochs < 1:
        raise ValueError(f"lr_epochs must be >= 1, got {config.lr_epochs}")
    if config.lr_patience < 0:
        raise ValueError(f"lr_patience must be >= 0, got {config.lr_patience}")
    if config.patience < 1:
        raise ValueError(f"patience must be >= 1, got {config.patience}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    if not config.methods:
        raise ValueError("methods must name at least one pruning method")
    for m in config.methods:
        if m not in COMPRESSION_METHODS:
            raise ValueError(f"methods: unknown compression method {m!r}; "
                             f"allowed: {sorted(COMPRESSION_METHODS)}")
    if len(set(config.methods)) != len(config.methods):
        raise ValueError(f"methods must not repeat a method, got {list(config.methods)}")
    sp = list(config.sparsities)
    if not sp or sp[0] != 0.0:
        raise ValueError("sparsities must start at 0.0 (the dense model)")
    _check_increasing("sparsities", sp, 0.0, 1.0)
    _check_increasing("channel_ratios", config.channel_ratios, 0.0, 1.0, open_low=True)
    _check_increasing("finetune_sparsities", config.finetune_sparsities, 0.0, 1.0, open_low=True)
    bits = list(config.quant_bits)
    if (not bits or any(not isinstance(b, int) or not 2 <= b <= 8 for b in bits)
            or any(b >= a for a, b in zip(bits, bits[1:]))):
        raise ValueError(f"quant_bits must be integers from 8 down to 2, strictly decreasing, got {bits}")
    if config.finetune_epochs < 1:
        raise ValueError(f"finetune_epochs must be >= 1, got {config.finetune_epochs}")
    if not config.finetune_lr > 0:
        raise ValueError(f"finetune_lr must be > 0, got {config.finetune_lr}")
    if config.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of ('auto', 'cpu', 'cuda'), got {config.device!r}")
    if config.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {config.arch!r}{_guess(config.arch, ARCHS)}")
