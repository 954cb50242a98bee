"""One-shot global unstructured pruning, split into scoring and masking.

What is pruned (the paper's setting, Holste et al. 2023): every ``nn.Conv2d.weight`` (downsample
convs included) and every ``nn.Linear.weight``, ranked *globally* across all of them. Biases and
BatchNorm parameters are never pruned. Pruning is one-shot from the trained weights, with no
fine-tuning afterwards.

The code is split the way ``torch.nn.utils.prune`` and Torch-Pruning split it:

- a *method* (``METHODS``, ``get_method``) maps the list of weight tensors to importance scores
  (higher = keep); it knows nothing about amounts or masks;
- the *masking* step ranks all scores once and removes the lowest ``n_to_prune(amount, total)``.

Global pruning is nested: the set pruned at a higher sparsity contains the set pruned at a lower
one, because both are prefixes of the same global ranking. ``NestedPruner`` exploits that: it ranks
once and each ``prune_to`` only zeroes the newly pruned weights, so a whole sparsity sweep costs
one sort instead of one sort per level. Ties in the scores are broken by flat index (position in
the concatenation of all prunable weights, in ``model.modules()`` order), so every mask is
deterministic. ``torch.nn.utils.prune.global_unstructured`` leaves ties to ``torch.topk`` and
otherwise selects the same weights.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

__all__ = [
    "METHODS",
    "ImportanceMethod",
    "L1Magnitude",
    "LocalL1Magnitude",
    "NestedPruner",
    "PruneStep",
    "RandomScores",
    "get_method",
    "global_masks",
    "n_to_prune",
    "prunable_parameters",
    "sparsity_grid",
]


# --------------------------------------------------------------------------- what is prunable


def prunable_parameters(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Conv2d and Linear in ``model.modules()`` order.

    Biases and BatchNorm parameters are excluded: the paper (and its code) prunes only these
    weights. The pair format is the one ``torch.nn.utils.prune.global_unstructured`` takes.
    """
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _prunable_names(model: nn.Module) -> list[str]:
    """Qualified names (``layer1.0.conv1.weight``), aligned with ``prunable_parameters``."""
    return [
        f"{name}.weight" if name else "weight"
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]


# --------------------------------------------------------------------------- amounts


def n_to_prune(amount: float, total: int) -> int:
    """Number of weights to prune: ``round(amount * total)``, as torch computes it.

    ``amount`` is always a fraction in [0, 1] (validated here, once); unlike torch, an integer is
    not read as an absolute count, so ``1`` means "everything".
    """
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"amount must be a real number in [0, 1], got {amount!r}")
    if not (0.0 <= float(amount) <= 1.0):  # also rejects NaN
        raise ValueError(f"amount must be a fraction in [0, 1], got {amount!r}")
    if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 0:
        raise ValueError(f"total must be a non-negative integer, got {total!r}")
    return round(float(amount) * int(total))


def sparsity_grid(step: float = 0.05, stop: float = 0.95) -> list[float]:
    """Sparsities ``0, step, ..., stop`` as exactly rounded floats (default: the paper's 20)."""
    if not (0.0 < step <= 1.0) or not (0.0 <= stop <= 1.0):
        raise ValueError(f"need 0 < step <= 1 and 0 <= stop <= 1, got step={step}, stop={stop}")
    n = stop / step
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"stop={stop} is not a multiple of step={step}")
    return [round(i * step, 10) for i in range(round(n) + 1)]


# --------------------------------------------------------------------------- methods (scores)


class ImportanceMethod(abc.ABC):
    """Maps the prunable weights to importance scores of the same shapes (higher = keep).

    ``weights`` are the live parameters in ``prunable_parameters`` order; a method must not modify
    them. A data-dependent method (e.g. SNIP, ``|w * grad|``) can read ``w.grad`` filled by the
    caller; a layer-wise one can return per-layer normalised scores (e.g. within-layer rank
    quantiles), so that the global ranking prunes every layer by the same fraction.
    """

    name: ClassVar[str]
    # Layer-wise (local) pruning: each layer loses the same fraction, ranked within the layer.
    layerwise: ClassVar[bool] = False

    @abc.abstractmethod
    def scores(self, weights: Sequence[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
        """One score tensor per weight tensor."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class L1Magnitude(ImportanceMethod):
    """Magnitude pruning: score = ``|w|`` (the paper's method; torch's ``L1Unstructured``)."""

    name = "l1"

    def scores(self, weights: Sequence[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
        return [w.detach().abs() for w in weights]


class RandomScores(ImportanceMethod):
    """Global random unstructured pruning: i.i.d. uniform scores from a generator seeded by seed.

    Drawn on the CPU in parameter order, so the mask depends only on ``seed`` and the shapes, not
    on the device or on the global RNG.
    """

    name = "random"

    def scores(self, weights: Sequence[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
        gen = torch.Generator(device="cpu")
        gen.manual_seed(int(seed))
        return [torch.rand(w.shape, generator=gen, dtype=torch.float32) for w in weights]


class LocalL1Magnitude(L1Magnitude):
    """Layer-wise (local) magnitude pruning: every layer loses ``round(amount * its size)`` of
    its smallest ``|w|`` (torch's ``l1_unstructured`` applied to each layer; the classic contrast
    to global pruning, which lets layers lose different fractions)."""

    name = "local_l1"
    layerwise = True


METHODS: dict[str, type[ImportanceMethod]] = {
    "l1": L1Magnitude, "random": RandomScores, "local_l1": LocalL1Magnitude}


def get_method(name: str | ImportanceMethod) -> ImportanceMethod:
    """The method registered under ``name`` (an instance is passed through)."""
    if isinstance(name, ImportanceMethod):
        return name
    try:
        return METHODS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown pruning method {name!r}; allowed: {', '.join(sorted(METHODS))}"
        ) from None


# --------------------------------------------------------------------------- ranking


_LOW32 = 0xFFFFFFFF


def _global_order(scores: Sequence[torch.Tensor], kth: Sequence[int] | None = None) -> torch.Tensor:
    """Flat positions of all scores, ascending by score, ties by position (int64, CPU).

    With ``kth`` (prefix lengths, e.g. the counts pruned at each planned level), the order is
    only guaranteed at those cut points: each prefix ``[:n]`` holds exactly the same positions as
    the full sort's prefix (the packed keys are unique), found by one multi-point partition
    instead of a full sort.

    Equivalent to ``torch.sort(torch.cat(flat scores), stable=True).indices``. For float32 (and
    narrower) scores it packs each score's order-preserving 32-bit key above its 32-bit position
    into one int64 and sorts those unique keys in place (one int64 array, no separate index
    array), about 1.5x faster than the stable float sort on resnet50. float64 scores (and more
    than 2**32 weights) take the plain stable sort.
    """
    sizes = [s.numel() for s in scores]
    total = sum(sizes)
    for s in scores:
        if not s.is_floating_point():
            raise TypeError(f"scores must be floating point, got {s.dtype}")
    if total == 0:
        return torch.empty(0, dtype=torch.int64)
    if any(s.dtype == torch.float64 for s in scores) or total >= 2**32:
        flat = torch.cat([s.detach().reshape(-1).to("cpu", torch.float64) for s in scores])
        if torch.isnan(flat).any():
            raise ValueError("importance scores contain NaN")
        return torch.sort(flat, stable=True).indices

    keys = torch.empty(total, dtype=torch.int64)
    off = 0
    for s, n in zip(scores, sizes):
        f = s.detach().reshape(-1).to("cpu", torch.float32) + 0.0  # + 0.0 maps -0.0 to +0.0
        if torch.isnan(f).any():
            raise ValueError("importance scores contain NaN")
        bits = f.view(torch.int32)
        bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # IEEE float order -> signed int order
        dst = keys[off : off + n]
        dst.copy_(bits)
        dst <<= 32
        dst |= torch.arange(off, off + n, dtype=torch.int64)
        off += n
    cuts = sorted({int(k) for k in kth if 0 < k < total}) if kth is not None else None
    if cuts is not None and len(cuts) < 64:
        if cuts:
            keys.numpy().partition(cuts)  # in place; unique keys, so prefixes are exact
    else:
        keys.numpy().sort()  # in place; keys are unique, so any sort gives the stable order
    return keys.bitwise_and_(_LOW32)


def _check_scores(scores: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> None:
    if len(scores) != len(weights):
        raise ValueError(f"method returned {len(scores)} score tensors for {len(weights)} weights")
    for s, w in zip(scores, weights):
        if s.shape != w.shape:
            raise ValueError(f"score shape {tuple(s.shape)} != weight shape {tuple(w.shape)}")


def global_masks(
    model: nn.Module, method: str | ImportanceMethod, amount: float, seed: int = 0
) -> list[torch.Tensor]:
    """Boolean keep-masks (True = kept) for one sparsity, computed from scratch.

    The model is not modified. Same ranking and tie rule as ``NestedPruner``; kept as the simple
    reference implementation.
    """
    weights = [getattr(m, n) for m, n in prunable_parameters(model)]
    method = get_method(method)
    scores = method.scores(weights, seed=seed)
    _check_scores(scores, weights)
    if method.layerwise:  # each layer by itself: the same fraction of every layer
        return [_keep_masks(_global_order([s])[: n_to_prune(amount, s.numel())], [w])[0]
                for s, w in zip(scores, weights)]
    n = n_to_prune(amount, sum(w.numel() for w in weights))
    return _keep_masks(_global_order(scores)[:n], weights)


def _flatten_into_buffer(weights: Sequence[nn.Parameter]) -> torch.Tensor | None:
    """Re-home the weights as views of one flat buffer, so pruning is one ``index_fill_``.

    Values, shapes and strides are unchanged (``param.data`` becomes a contiguous view); only
    possible when every weight is contiguous, of one dtype, on one device. Returns the buffer,
    or None (then weights are zeroed one tensor at a time).
    """
    first = weights[0]
    if any(not w.is_contiguous() or w.dtype != first.dtype or w.device != first.device for w in weights):
        return None
    flat = torch.empty(sum(w.numel() for w in weights), dtype=first.dtype, device=first.device)
    off = 0
    with torch.no_grad():
        for w in weights:
            n = w.numel()
            view = flat[off : off + n].view(w.shape)
            view.copy_(w)
            w.data = view
            off += n
    return flat


def _keep_masks(pruned: torch.Tensor, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per-weight boolean keep-masks from the global flat positions that are pruned."""
    keep = torch.ones(sum(w.numel() for w in weights), dtype=torch.bool)
    keep[pruned] = False
    out, off = [], 0
    for w in weights:
        out.append(keep[off : off + w.numel()].view(w.shape).to(w.device))
        off += w.numel()
    return out


# --------------------------------------------------------------------------- nested pruner


@dataclass(frozen=True)
class PruneStep:
    """State after ``NestedPruner.prune_to``.

    ``sparsity`` and ``layer_sparsity`` are *measured*: the fraction of exact zeros among the
    prunable weights (weights that were zero before pruning count too).
    """

    amount: float
    n_pruned: int
    total: int
    sparsity: float
    layer_sparsity: dict[str, float]


class NestedPruner:
    """Walks one model up a sparsity schedule, pruning in place, ranking only once.

    ``NestedPruner(model, "l1")`` scores and ranks all prunable weights once (ties by flat index);
    ``prune_to(amount)`` then zeroes exactly the weights ranked ``[n_before, n_to_prune(amount))``,
    so the model after ``prune_to(k)`` equals one-shot global pruning at ``k`` from the original
    weights. Amounts must be non-decreasing: the pruned values are gone, so to go back down reload
    the weights and build a new pruner. Only ``.weight`` of Conv2d/Linear is touched; biases and
    BatchNorm are never modified. No fine-tuning is done.
    """

    def __init__(self, model: nn.Module, method: str | ImportanceMethod = "l1", seed: int = 0,
                 levels: Sequence[float] | None = None):
        self.method = get_method(method)
        self.seed = seed
        self.names = _prunable_names(model)
        self._weights = [getattr(m, n) for m, n in prunable_parameters(model)]
        if not self._weights:
            raise ValueError("model has no Conv2d or Linear weights to prune")
        sizes = [w.numel() for w in self._weights]
        self.total = sum(sizes)
        self._offsets = torch.tensor([0, *sizes], dtype=torch.int64).cumsum(0)
        # With known levels only their cut points need ordering (a partition, not a sort).
        self._planned = None if levels is None else {n_to_prune(a, self.total) for a in levels}
        scores = self.method.scores(self._weights, seed=seed)
        _check_scores(scores, self._weights)
        if self.method.layerwise:  # one ranking per layer, in global flat positions
            self._order = None
            self._layer_orders = [_global_order([s]) + off
                                  for s, off in zip(scores, self._offsets[:-1].tolist())]
        else:
            self._order = _global_order(scores, kth=None if levels is None else sorted(self._planned))
        del scores
        self._flat = _flatten_into_buffer(self._weights)
        self._layer_zeros = torch.tensor(
            [w.numel() - int(torch.count_nonzero(w.detach())) for w in self._weights])
        self.amount = 0.0
        self.n_pruned = 0
        self._counts = tuple(0 for _ in self._weights)  # per layer, for a layer-wise method

    def _layer_counts(self, amount: float) -> tuple[int, ...]:
        """Weights pruned in each layer at ``amount`` by a layer-wise method."""
        return tuple(n_to_prune(amount, w.numel()) for w in self._weights)

    def _pruned(self, n) -> torch.Tensor:
        """Flat positions pruned at ``n`` (a count, or per-layer counts for a layer-wise method)."""
        if self._order is not None:
            return self._order[:n]
        return torch.cat([o[:k] for o, k in zip(self._layer_orders, n)])

    def prune_to(self, amount: float) -> PruneStep:
        """Prune in place to sparsity ``amount``; returns achieved sparsity (overall, per layer)."""
        if self._order is None:
            return self._prune_layers_to(amount)
        n = n_to_prune(amount, self.total)
        if float(amount) < self.amount:
            raise ValueError(
                f"amount must be non-decreasing: already pruned to {self.amount}, asked for "
                f"{amount}; reload the weights and make a new NestedPruner to go back down"
            )
        if self._planned is not None and n not in self._planned and n != self.n_pruned:
            raise ValueError(
                f"amount {amount} is not one of the levels this pruner was planned for; make "
                "the NestedPruner with levels=None (full ranking) to prune to any amount"
            )
        if n > self.n_pruned:
            self._zero(self._order[self.n_pruned : n])
        self.amount = float(amount)
        self.n_pruned = n
        return self.state()

    def _prune_layers_to(self, amount: float) -> PruneStep:
        """``prune_to`` for a layer-wise method: the next ranks of every layer's own ranking."""
        counts = self._layer_counts(amount)
        if float(amount) < self.amount:
            raise ValueError(f"amount must be non-decreasing: already pruned to {self.amount}, "
                             f"asked for {amount}")
        new = [o[b:k] for o, b, k in zip(self._layer_orders, self._counts, counts) if k > b]
        if new:
            self._zero(torch.cat(new))
        self._counts, self.amount, self.n_pruned = counts, float(amount), sum(counts)
        return self.state()

    def walk(self, amounts: Sequence[float]) -> Iterator[PruneStep]:
        """``prune_to`` each amount in turn, yielding the step (evaluate the model in the loop)."""
        for a in amounts:
            yield self.prune_to(a)

    def masks(self) -> list[torch.Tensor]:
        """Current boolean keep-masks (True = kept), one per prunable weight (built on demand)."""
        n = self.n_pruned if self._order is not None else self._counts
        return _keep_masks(self._pruned(n), self._weights)

    def state(self) -> PruneStep:
        """Measured sparsity now: zeros among prunable weights (tracked as weights are zeroed)."""
        zeros = self._layer_zeros.tolist()
        layer = {nm: z / w.numel() for nm, z, w in zip(self.names, zeros, self._weights)}
        return PruneStep(
            amount=self.amount,
            n_pruned=self.n_pruned,
            total=self.total,
            sparsity=sum(zeros) / self.total,
            layer_sparsity=layer,
        )

    @torch.no_grad()
    def _zero(self, positions: torch.Tensor) -> None:
        """Zero the weights at global flat ``positions``, counting the ones that were not zero."""
        if self._flat is not None:  # one gather and one fill on the shared buffer
            pos = positions.to(self._flat.device)
            was_nonzero = self._flat[pos] != 0
            layer = torch.bucketize(pos[was_nonzero], self._offsets[1:].to(pos.device), right=True)
            self._layer_zeros += torch.bincount(layer, minlength=len(self._weights)).cpu()
            self._flat.index_fill_(0, pos, 0)
            return
        pos = positions.clone()  # weights in several buffers: split positions by one small sort
        pos.numpy().sort()
        bounds = torch.searchsorted(pos, self._offsets).tolist()
        for i, w in enumerate(self._weights):
            lo, hi = bounds[i], bounds[i + 1]
            if lo == hi:
                continue
            idx = (pos[lo:hi] - self._offsets[i]).to(w.device)
            drop = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
            drop[idx] = True
            drop = drop.view(w.shape)
            self._layer_zeros[i] += int(torch.count_nonzero(w.detach()[drop]))
            w.detach().masked_fill_(drop, 0)

    def __repr__(self) -> str:
        return (
            f"NestedPruner(method={self.method.name!r}, seed={self.seed}, total={self.total}, "
            f"amount={self.amount})"
        )
