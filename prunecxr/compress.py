"""Compression methods behind one interface (Q5): a trained model and a level -> the model
evaluated at that level, and what was achieved there.

Every method has its own grid in its own unit (``grid``: the entry that leaves the model as
trained, then the levels of the config field named in ``config.COMPRESSION_METHODS``) and
reports, per level, ``level``: the share of the dense model's prunable weight storage (Conv2d
and Linear ``.weight``) that the method removed. That is the common axis of the Q5 chapter;
the matched-damage analysis needs only that it grows with compression.

Each level also records ``stored_bits``, what the compressed model's prunable weights must
store (:func:`stored_bits`: values, plus the positions of the kept weights where a layer is
stored sparse, plus quantisation's per-channel scales), and ``storage_removed``, the share of
the dense 32-bit storage that saves: the storage axis counted honestly, beside ``level`` (the
weights-only share).

- ``l1``, ``random``, ``local_l1``: unstructured pruning (:class:`prunecxr.prune.NestedPruner`);
  unit and level = sparsity; nested, so one ranking serves the whole grid.
- ``channel_l1``, ``channel_l2``: structured pruning of whole output channels by the L1 / L2
  norm of their filters (Li et al. 2017; for channels coupled through a residual connection,
  the filters of the group's first layer), the same share in every layer, through
  Torch-Pruning's DependencyGraph (coupled layers lose the same channels, so the residual
  additions still match); the classifier's outputs are kept. Unit = share
  of channels; level = share of the prunable weights gone (the model really is smaller); MACs
  and parameters are recorded per level. ``channel_l1_bn`` then re-estimates the BatchNorm
  statistics on the training images (no training).
- ``quant``: per-channel symmetric post-training weight quantisation
  (:mod:`prunecxr.quantize`); unit = bits (32 = as trained); level = ``1 - bits / 32``.
- ``l1_ft``: global L1 pruning, then ``finetune_epochs`` epochs of training of the surviving
  weights at ``finetune_lr`` with the masks kept (re-applied after every optimizer step).
  Its level 0 is the trained model fine-tuned the same way (same epochs, rate and data order,
  no mask), so l1_ft's losses measure pruning against a fine-tuned dense model, and the
  effect of fine-tuning alone is l1_ft's level 0 against the other methods' (the trained
  model).

Levels other than nested pruning start again from the trained weights.
"""

from __future__ import annotations

import abc
import copy
import math
from typing import ClassVar

import torch
from torch import nn

from .batches import DeviceSplit
from .config import GRID_METHODS as GRID_METHODS  # re-exported: swept along config.sparsities
from .config import COMPRESSION_METHODS, Config
from .models import count_prunable
from .prune import METHODS as PRUNE_METHODS
from .prune import NestedPruner, prunable_parameters
from .quantize import WeightQuantizer
from .train import autocast, make_optimizer, train_epoch

FINETUNE_EPOCH0 = 10_000  # fine-tuning epochs draw data order from (seed, 10_000 + e)


FLOAT_BITS = 32  # a trained weight, a quantisation scale
SCALE_BITS = 32


def stored_bits(model: nn.Module, value_bits: int = FLOAT_BITS, sparse: bool = True,
                scales: bool = False) -> int:
    """Bits the prunable weights of ``model`` must store, layer by layer.

    A layer of ``n`` weights of which ``kept`` are non-zero is stored densely (``n`` values of
    ``value_bits``) or, when ``sparse`` and it is smaller, as its ``kept`` values plus their
    positions: a bitmask of ``n`` bits or ``kept`` indices of ``ceil(log2(n))`` bits each,
    whichever is smaller. ``scales``: one ``SCALE_BITS`` scale per output channel (per-channel
    quantisation). Structured pruning removes weights from the model itself, so its smaller
    dense layers need no positions.
    """
    total = 0
    for m, name in prunable_parameters(model):
        w = getattr(m, name).detach()
        n = w.numel()
        dense = n * value_bits
        if sparse:
            kept = int((w != 0).sum())
            positions = min(n, kept * max(1, math.ceil(math.log2(n))))
            dense = min(dense, kept * value_bits + positions)
        total += dense + (SCALE_BITS * w.shape[0] if scales else 0)
    return int(total)


def storage_facts(model: nn.Module, dense_weights: int, **kwargs) -> dict:
    """``stored_bits`` of :func:`stored_bits` and ``storage_removed``: the share of the dense
    model's ``FLOAT_BITS * dense_weights`` bits that it saves."""
    bits = stored_bits(model, **kwargs)
    return {"stored_bits": bits, "storage_removed": 1.0 - bits / (FLOAT_BITS * dense_weights)}


def zero_share(model: nn.Module) -> float:
    """Share of the prunable weights that are exactly zero."""
    ws = [getattr(m, n).detach() for m, n in prunable_parameters(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


class Compression(abc.ABC):
    """One method applied to one trained model (modified in place, or copied when it shrinks)."""

    name: ClassVar[str]
    unit: ClassVar[str]  # what a grid entry is: "sparsity", "share of channels", "bits"
    needs_train: ClassVar[bool] = False  # whether ``train`` data must be given
    # The grid entry that leaves the model as trained, put before the levels of the method's
    # config field (config.COMPRESSION_METHODS); None when that field starts with it.
    uncompressed: ClassVar[float | None] = 0.0

    def __init__(self, model: nn.Module, config: Config, seed: int, train=None,
                 device: torch.device | None = None) -> None:
        if self.needs_train and train is None:
            raise ValueError(f"method {self.name!r} needs the training split (it trains or "
                             "re-estimates statistics on it)")
        self.model, self.config, self.seed, self.train = model, config, seed, train
        self.device = device or torch.device("cpu")
        self.dense_weights = count_prunable(model)

    @classmethod
    def grid(cls, config: Config) -> list[float]:
        """The method's levels in its unit, from its config field; the first leaves the model
        as trained."""
        levels = list(getattr(config, COMPRESSION_METHODS[cls.name].levels))
        return levels if cls.uncompressed is None else [cls.uncompressed, *levels]

    @abc.abstractmethod
    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        """The model at grid entry ``nominal`` and its facts (``level``, ``sparsity``, ...)."""


class UnstructuredPruning(Compression):
    """Global (or layer-wise) unstructured pruning along ``config.sparsities``, nested."""

    name = "l1"
    unit = "sparsity"
    uncompressed = None  # config.sparsities starts at 0

    def __init__(self, model, config, seed, train=None, device=None) -> None:
        super().__init__(model, config, seed, train, device)
        self.pruner = NestedPruner(model, self.name, seed=seed, levels=self.grid(config))

    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        step = self.pruner.prune_to(nominal)
        return self.model, {"level": float(nominal), "sparsity": step.sparsity,
                            **storage_facts(self.model, self.dense_weights)}


class ChannelPruning(Compression):
    """Structured pruning of output channels by norm (Torch-Pruning), from the trained model."""

    name = "channel_l1"
    unit = "share of channels"
    norm: ClassVar[int] = 1

    def __init__(self, model, config, seed, train=None, device=None) -> None:
        super().__init__(model, config, seed, train, device)
        import torch_pruning as tp  # imported here: only this method needs it

        self._tp = tp
        size = config.image_size
        self.example = torch.zeros(1, size, size, dtype=torch.uint8, device=self.device)
        self.total = count_prunable(model)
        self.macs, self.params = tp.utils.count_ops_and_params(model, self.example)

    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        model = copy.deepcopy(self.model)
        if nominal > 0:
            head = model.backbone.fc
            pruner = self._tp.pruner.MagnitudePruner(
                model, self.example, importance=self._tp.importance.MagnitudeImportance(
                    p=self.norm, group_reduction="first", normalizer=None),
                pruning_ratio=float(nominal), ignored_layers=[head], global_pruning=False)
            pruner.step()
        macs, params = self._tp.utils.count_ops_and_params(model, self.example)
        kept = count_prunable(model)
        gone = 1.0 - kept / self.total
        return model, {"level": gone, "sparsity": gone + kept / self.total * zero_share(model),
                       "params": int(params), "params_share": params / self.params,
                       "macs": int(macs), "macs_share": macs / self.macs,
                       "channels": _conv_channels(model),
                       **storage_facts(model, self.total, sparse=False)}


class ChannelPruningL2(ChannelPruning):
    name = "channel_l2"
    norm = 2


class ChannelPruningBN(ChannelPruning):
    """``channel_l1``, then every BatchNorm's statistics re-estimated on the training images
    (:func:`recalibrate_batchnorm`; no weight changes): removing channels changes what each
    BatchNorm sees, and re-estimating its statistics is the usual cheap repair."""

    name = "channel_l1_bn"
    needs_train = True

    def __init__(self, model, config, seed, train=None, device=None) -> None:
        super().__init__(model, config, seed, train, device)
        self.train = DeviceSplit.of(train, self.device)

    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        model, facts = super().apply(nominal)
        if nominal > 0:  # level 0 stays the trained model
            recalibrate_batchnorm(model, self.train, self.config.eval_batch_size, self.device,
                                  self.config.precision)
        return model, facts


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data, batch_size: int, device: torch.device,
                          precision: str = "fp32") -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance from one pass over ``data``'s
    images (in order, no augmentation): statistics reset, then a cumulative average over the
    batches (``momentum=None``) in train mode; weights untouched. Returns the model in eval."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    split = DeviceSplit.of(data, device)
    with autocast(precision, device):
        for images, _ in split.batches(torch.arange(len(split)), batch_size):
            model(images)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    return model.eval()


def _conv_channels(model: nn.Module) -> int:
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


class WeightQuantization(Compression):
    """Per-channel symmetric weight fake quantisation at each of ``config.quant_bits``."""

    name = "quant"
    unit = "bits"
    uncompressed = 32

    def __init__(self, model, config, seed, train=None, device=None) -> None:
        super().__init__(model, config, seed, train, device)
        self.quantizer = WeightQuantizer(model)

    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        bits = int(nominal)
        if bits == 32:
            self.quantizer.restore()
            return self.model, {"level": 0.0, "sparsity": zero_share(self.model), "bits": 32,
                                **storage_facts(self.model, self.dense_weights, sparse=False)}
        step = self.quantizer.quantize_to(bits)
        return self.model, {"level": 1.0 - bits / 32, "sparsity": step.sparsity, "bits": bits,
                            "max_levels": step.max_levels,
                            **storage_facts(self.model, self.dense_weights, value_bits=bits,
                                            sparse=False, scales=True)}


class PruneFinetune(Compression):
    """Global L1 pruning at each of ``config.finetune_sparsities``, then a masked fine-tune."""

    name = "l1_ft"
    unit = "sparsity"
    needs_train = True

    def __init__(self, model, config, seed, train=None, device=None) -> None:
        super().__init__(model, config, seed, train, device)
        self.train = DeviceSplit.of(train, self.device)  # on a GPU: copied once for all levels
        self.dense = copy.deepcopy(model.state_dict())

    def apply(self, nominal: float) -> tuple[nn.Module, dict]:
        """Level ``nominal`` pruned, then fine-tuned; level 0: fine-tuned without a mask."""
        self.model.load_state_dict(self.dense)
        weights = [getattr(m, n) for m, n in prunable_parameters(self.model)]
        masks = None
        if nominal > 0:
            pruner = NestedPruner(self.model, "l1", seed=self.seed, levels=[nominal])
            pruner.prune_to(nominal)
            masks = pruner.masks()
        opt = make_optimizer(self.model, self.config, self.device, lr=self.config.finetune_lr)

        def keep_pruned_at_zero(*_):
            with torch.no_grad():
                for w, m in zip(weights, masks):
                    w.mul_(m)

        hook = opt.register_step_post_hook(keep_pruned_at_zero) if masks is not None else None
        try:
            loss = None
            for e in range(self.config.finetune_epochs):
                loss = train_epoch(self.model, opt, self.train, self.config, self.seed,
                                    FINETUNE_EPOCH0 + e, self.device)
        finally:
            if hook is not None:
                hook.remove()
        return self.model, {"level": float(nominal), "sparsity": zero_share(self.model),
                            "train_loss": loss, "finetuned": True,
                            **storage_facts(self.model, self.dense_weights, sparse=nominal > 0)}


METHODS: dict[str, type[Compression]] = {
    **{name: type(f"Pruning_{name}", (UnstructuredPruning,), {"name": name}) for name in PRUNE_METHODS},
    "channel_l1": ChannelPruning, "channel_l2": ChannelPruningL2, "channel_l1_bn": ChannelPruningBN,
    "quant": WeightQuantization, "l1_ft": PruneFinetune}
# The names are declared in config (COMPRESSION_METHODS: each one's level grid and label),
# below this module, so that a configuration is checked without loading the methods.
if set(METHODS) != set(COMPRESSION_METHODS):
    raise RuntimeError(f"compress.METHODS {sorted(METHODS)} and config.COMPRESSION_METHODS "
                       f"{sorted(COMPRESSION_METHODS)} must name the same methods")


def get(name: str) -> type[Compression]:
    """The compression class registered under ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown compression method {name!r}; allowed: "
                         f"{', '.join(sorted(METHODS))}") from None


def grid(name: str, config: Config) -> list[float]:
    """Method ``name``'s levels in its own unit (the first: as trained)."""
    return list(get(name).grid(config))


def needs_train(name: str) -> bool:
    return bool(get(name).needs_train)
