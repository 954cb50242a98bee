"""Per-channel symmetric weight fake-quantisation (Q5) against numpy and torch's real int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prunecxr.models import build_model
from prunecxr.prune import prunable_parameters
from prunecxr.quantize import WeightQuantizer, channel_scales, fake_quantize


def numpy_fake_quant(w: np.ndarray, bits: int) -> np.ndarray:
    """The definition, independently: round(w / s) clipped to +-(2^(b-1) - 1), times s."""
    qmax = 2 ** (bits - 1) - 1
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    s = np.abs(flat).max(axis=1, keepdims=True) / qmax
    s[s == 0] = 1.0
    q = np.clip(np.round(flat / s.astype(np.float32).astype(np.float64)), -qmax, qmax)
    return (q * s.astype(np.float32)).astype(np.float32).reshape(w.shape)


@pytest.mark.parametrize("bits", [8, 6, 5, 4, 3, 2])
def test_fake_quantize_matches_the_definition(bits):
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(6, 3, 3, 3, generator=g) * torch.tensor([1, 0.1, 3, 0.01, 1, 1]).view(6, 1, 1, 1)
    w[4] = 0.0  # an all-zero channel stays zero
    q = fake_quantize(w, bits)
    np.testing.assert_allclose(q.numpy(), numpy_fake_quant(w.numpy(), bits), rtol=0, atol=1e-6)
    scale = channel_scales(w, bits).float().view(-1, 1, 1, 1)
    assert torch.all((q - w).abs() <= scale / 2 + 1e-6)  # error within half a step
    for row in q.reshape(6, -1):
        assert len(torch.unique(row)) <= 2 ** bits - 1
    assert torch.equal(q[4], torch.zeros_like(q[4]))
    assert channel_scales(w, bits)[4] == 1.0                # a zero channel's scale: 1, not 0
    assert q.abs().reshape(6, -1).amax(1)[0] == pytest.approx(w.abs().reshape(6, -1).amax(1)[0].item())


def test_fake_quantize_keeps_the_weights_dtype_and_refuses_other_widths():
    w = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    q = fake_quantize(w, 4)
    assert q.dtype == torch.float64
    np.testing.assert_allclose(q.numpy(), numpy_fake_quant(w.numpy(), 4), atol=1e-6)
    for bits in (1, 9, 4.0):
        with pytest.raises(ValueError) as caught:
            fake_quantize(w, bits)
        assert str(caught.value) == f"bits must be an integer from 2 to 8, got {bits!r}"


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_eight_bits_equal_torch_real_int8_per_channel():
    w = torch.randn(16, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    scale = channel_scales(w, 8)
    real = torch.quantize_per_channel(w, scale, torch.zeros(16, dtype=torch.int64), 0, torch.qint8)
    assert real.int_repr().abs().max() <= 127
    np.testing.assert_allclose(fake_quantize(w, 8).numpy(), real.dequantize().numpy(), atol=1e-6)


def test_quantizer_on_a_model_restarts_from_the_trained_weights_and_leaves_the_rest():
    model = build_model("resnet18", 5, "none", seed=0, width=8).eval()
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    ref = model(x)
    others = {k: v.clone() for k, v in model.state_dict().items()
              if not any(k == f"{n}.weight" for n, m in model.named_modules()
                         if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))}
    quant = WeightQuantizer(model)
    step2 = quant.quantize_to(2)
    assert step2.max_levels <= 3 and step2.sparsity > 0.3  # ternary weights: many round to 0
    step8 = quant.quantize_to(8)  # from the trained weights again, not from the 2-bit ones
    fresh = build_model("resnet18", 5, "none", seed=0, width=8).eval()  # the same trained weights
    WeightQuantizer(fresh).quantize_to(8)  # straight to 8 bits
    for (m, _), (m0, _) in zip(prunable_parameters(model), prunable_parameters(fresh)):
        assert torch.equal(m.weight, m0.weight)
    assert step8.max_levels <= 255 and step8.sparsity < 0.05
    assert torch.allclose(model(x), ref, atol=0.05 * ref.abs().max().item())  # 8 bits ~ fp32
    for k, v in model.state_dict().items():
        if k in others:
            assert torch.equal(v, others[k])  # biases, BatchNorm untouched
    quant.restore()
    assert torch.equal(model(x), ref)
    with pytest.raises(ValueError) as caught:
        WeightQuantizer(nn.Sequential(nn.ReLU()))
    assert str(caught.value) == "model has no Conv2d or Linear weights to quantise"
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 8"):
        quant.quantize_to(1)


def test_int8_max_difference_is_zero_on_a_trained_seed_and_sees_a_wrong_bit_width(monkeypatch):
    """On the frozen smoke results (seed 0 keeps its weights): the sweep's 8-bit fake
    quantisation computes what torch's int8 modules compute, and a model quantised to another
    width does not."""
    from pathlib import Path

    from prunecxr import quantize
    from prunecxr.config import load_config
    from prunecxr.store import load

    store = load(Path(__file__).parent / "fixtures" / "smoke_results")
    config = load_config("smoke")
    assert quantize.int8_max_difference(config, store, 0) < 1e-6
    to_bits = WeightQuantizer.quantize_to
    monkeypatch.setattr(WeightQuantizer, "quantize_to", lambda self, bits: to_bits(self, 7))
    assert quantize.int8_max_difference(config, store, 0) > 1e-4
