"""Post-training weight quantisation (Q5): per-channel symmetric fake quantisation of the weights.

The weights pruning touches (every Conv2d and Linear ``.weight``) are rounded, one output
channel at a time, to ``bits``-bit signed integers on the symmetric range
``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` times the channel's scale ``max|w| / (2**(bits-1) - 1)``,
then stored back as floats (fake quantisation, through torch's own
``torch.fake_quantize_per_channel_affine``). Activations, biases and BatchNorm are untouched.
Unlike pruning, levels are not nested: every level starts again from the trained weights.
For 8 bits the result equals torch's real int8 per-channel quantisation
(``torch.quantize_per_channel(..., torch.qint8)``) dequantised, and a model whose Conv2d and
Linear layers are torch.ao's reference quantized modules holding int8 weights
(:func:`torch_ao_int8`) gives the same outputs; the tests and the Q5 chapter check that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .prune import prunable_parameters


def channel_scales(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-output-channel scale ``max|w| / (2**(bits-1) - 1)`` (1 for an all-zero channel)."""
    qmax = 2 ** (bits - 1) - 1
    amax = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1).double()
    return torch.where(amax > 0, amax / qmax, torch.ones_like(amax))


def fake_quantize(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """``weight`` rounded per output channel to ``bits``-bit symmetric integers (as floats)."""
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 2 to 8, got {bits!r}")
    qmax = 2 ** (bits - 1) - 1
    scale = channel_scales(weight, bits)
    zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    w = weight.detach().float().contiguous()
    out = torch.fake_quantize_per_channel_affine(w, scale.float().to(w.device), zero, 0, -qmax, qmax)
    return out.to(weight.dtype)


@dataclass(frozen=True)
class QuantStep:
    """State after :meth:`WeightQuantizer.quantize_to`: bits, zero share, distinct values."""

    bits: int
    sparsity: float  # share of prunable weights that round to exactly 0
    max_levels: int  # most distinct values in any one output channel


class WeightQuantizer:
    """Quantises one model's prunable weights in place to a bit width, always from the
    trained weights it saw at construction (so levels can come in any order)."""

    def __init__(self, model: nn.Module) -> None:
        self._weights = [getattr(m, n) for m, n in prunable_parameters(model)]
        if not self._weights:
            raise ValueError("model has no Conv2d or Linear weights to quantise")
        self._original = [w.detach().clone() for w in self._weights]

    @torch.no_grad()
    def quantize_to(self, bits: int) -> QuantStep:
        zeros = total = levels = 0
        for w, w0 in zip(self._weights, self._original):
            q = fake_quantize(w0, bits)
            w.copy_(q)
            zeros += int((q == 0).sum())
            total += q.numel()
            rows = q.reshape(q.shape[0], -1).sort(dim=1).values  # distinct values per channel:
            distinct = 1 + (rows[:, 1:] != rows[:, :-1]).sum(dim=1)  # one sort, no Python loop
            levels = max(levels, int(distinct.max()))
        return QuantStep(bits=bits, sparsity=zeros / total, max_levels=levels)

    @torch.no_grad()
    def restore(self) -> None:
        """Put the trained weights back."""
        for w, w0 in zip(self._weights, self._original):
            w.copy_(w0)


def torch_ao_int8(model: nn.Module) -> nn.Module:
    """``model`` (changed in place) with every Conv2d and Linear replaced by torch.ao's
    reference quantized module holding the layer's weight as real int8, per output channel,
    with this module's symmetric scales (zero point 0); activations stay float, as in
    :func:`fake_quantize`. The reference modules dequantise the int8 weight in ``forward``."""
    from torch.ao.nn.quantized import reference

    kinds = {nn.Conv2d: reference.Conv2d, nn.Linear: reference.Linear}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            kind = kinds.get(type(child))
            if kind is None:
                continue
            scale = channel_scales(child.weight, 8).float()
            qparams = {"qscheme": torch.per_channel_affine, "dtype": torch.qint8, "scale": scale,
                       "zero_point": torch.zeros(len(scale), dtype=torch.int32), "axis": 0}
            setattr(parent, name, kind.from_float(child, qparams))
    return model


def int8_max_difference(config, store, seed: int, batch_size: int = 256) -> float:
    """Largest difference in test probabilities between ``seed``'s model fake-quantised to 8
    bits (:class:`WeightQuantizer`, what the sweep evaluates) and the same model holding real
    int8 weights (:func:`torch_ao_int8`): checks that fake quantisation is what int8 computes."""
    import warnings

    import numpy as np

    from .train import load_trained, predict

    device = torch.device("cpu")
    images = torch.from_numpy(np.array(store.test_images()))  # a writable copy
    fake = load_trained(config, len(store.classes), store.results_dir, seed, device)
    WeightQuantizer(fake).quantize_to(8)
    real = torch_ao_int8(load_trained(config, len(store.classes), store.results_dir, seed, device))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.abs(predict(fake, images, batch_size, device)
                            - predict(real, images, batch_size, device)).max())
