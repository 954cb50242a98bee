"""Q5 compression methods: structure of channel-pruned ResNets, torch.ao's int8 weights against
fake quantisation, masked fine-tuning, every method through the sweep, and the storage each
compressed model keeps (against a loop)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from prunecxr import compress
from prunecxr.config import load_config
from prunecxr.models import build_model, count_prunable
from prunecxr.prune import NestedPruner, prunable_parameters
from prunecxr.quantize import fake_quantize, torch_ao_int8
from prunecxr.batches import DeviceSplit
from prunecxr.train import SplitArrays, make_optimizer, train_epoch

C = 5
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


def model(seed: int = 0) -> nn.Module:
    m = build_model("resnet18", C, "none", seed=seed, width=8).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for i, bn in enumerate(mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)):
            g = torch.Generator().manual_seed(i)
            bn.running_mean.normal_(0, 0.1, generator=g)
            bn.running_var.uniform_(0.5, 1.5, generator=g)
    return m


def images(n: int = 6, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (n, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


CONFIG = load_config("smoke", overrides=["image_size=32", "channel_ratios=0.25,0.5,0.75",
                                         "quant_bits=8,4,2", "finetune_sparsities=0.5,0.9"])


def test_registry_grids_and_errors():
    assert set(compress.GRID_METHODS) <= set(compress.METHODS)
    assert compress.grid("l1", CONFIG) == list(CONFIG.sparsities)
    assert compress.grid("channel_l1", CONFIG) == [0.0, 0.25, 0.5, 0.75]
    assert compress.grid("quant", CONFIG) == [32, 8, 4, 2]
    assert compress.grid("l1_ft", CONFIG) == [0.0, 0.5, 0.9]
    assert compress.needs_train("l1_ft") and not compress.needs_train("quant")
    with pytest.raises(ValueError) as caught:
        compress.get("l2")
    assert str(caught.value) == ("unknown compression method 'l2'; allowed: "
                                 + ", ".join(sorted(compress.METHODS)))
    with pytest.raises(ValueError) as caught:
        compress.get("l1_ft")(model(), CONFIG, 0)
    assert str(caught.value) == ("method 'l1_ft' needs the training split (it trains or "
                                 "re-estimates statistics on it)")


@pytest.mark.parametrize("method", ["l1", "random", "local_l1"])
def test_unstructured_methods_are_the_nested_pruner(method):
    a, b = model(), model()
    at = compress.get(method)(a, CONFIG, seed=3)
    pruner = NestedPruner(b, method, seed=3)
    for k in CONFIG.sparsities:
        evaluated, fact = at.apply(k)
        step = pruner.prune_to(k)
        assert evaluated is a and fact["level"] == k and fact["sparsity"] == step.sparsity
        for (m1, _), (m2, _) in zip(prunable_parameters(a), prunable_parameters(b)):
            assert torch.equal(m1.weight, m2.weight)


@pytest.mark.parametrize("method,norm", [("channel_l1", 1), ("channel_l2", 2)])
def test_channel_pruning_makes_a_smaller_resnet_that_runs(method, norm):
    dense = model()
    x = images()
    ref = dense(x)
    at = compress.get(method)(dense, CONFIG, seed=0)
    same, fact0 = at.apply(0.0)
    assert torch.equal(same(x), ref) and fact0["level"] == 0 and fact0["params_share"] == 1
    convs = [m for m in dense.modules() if isinstance(m, nn.Conv2d)]
    previous = count_prunable(dense)
    for ratio in (0.25, 0.5, 0.75):
        small, fact = at.apply(ratio)
        assert small is not dense and small(x).shape == (len(x), C)  # residual shapes agree
        kept = count_prunable(small)
        assert kept < previous  # more channels out, fewer weights
        previous = kept
        assert fact["level"] == pytest.approx(1 - kept / count_prunable(dense))
        assert fact["params"] == sum(p.numel() for p in small.parameters())
        assert 0 < fact["macs_share"] < 1 and 0 < fact["params_share"] < 1
        small_convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
        for c0, c1 in zip(convs, small_convs):  # the same share gone from every layer
            assert c1.out_channels == c0.out_channels - int(ratio * c0.out_channels)
        assert small.backbone.fc.out_features == C
        # a block's first conv is in no residual group: it keeps its filters of largest norm,
        # unchanged (found through their BatchNorm statistics, which are distinct per channel)
        block0, block1 = dense.backbone.layer2[0], small.backbone.layer2[0]
        means = block0.bn1.running_mean.tolist()
        kept_idx = sorted(means.index(v) for v in block1.bn1.running_mean.tolist())
        norms = block0.conv1.weight.detach().abs().pow(norm).flatten(1).sum(1)
        expect = sorted(torch.argsort(norms, descending=True, stable=True)[:len(kept_idx)].tolist())
        assert kept_idx == expect
        assert torch.equal(block1.conv1.weight, block0.conv1.weight[kept_idx][:, [
            means_in for means_in in _kept(dense.backbone.layer1[-1].bn2, small.backbone.layer1[-1].bn2)]])
    assert count_prunable(dense) == sum(m.weight.numel() for m, _ in prunable_parameters(dense))
    assert torch.equal(dense(x), ref)  # the trained model itself is untouched


def _kept(bn0: nn.BatchNorm2d, bn1: nn.BatchNorm2d) -> list[int]:
    """Indices of bn0's channels that bn1 kept (matched by their running means)."""
    means = bn0.running_mean.tolist()
    return [means.index(v) for v in bn1.running_mean.tolist()]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_eight_bits_agree_with_torch_ao_int8_weights():
    x = images()
    fake = model()
    fake_out = compress.get("quant")(fake, CONFIG, 0).apply(8)[0](x)
    real = torch_ao_int8(model())
    convs = [m for m in real.modules() if hasattr(m, "get_quantized_weight")]
    assert len(convs) == len(prunable_parameters(model()))
    q = convs[0].get_quantized_weight()
    assert q.dtype == torch.qint8 and q.int_repr().abs().max() <= 127
    real_out = real(x)
    torch.testing.assert_close(real_out, fake_out, rtol=0, atol=1e-4)


def test_quantization_levels_are_bits_saved_and_32_restores():
    m = model()
    x = images()
    ref = m(x)
    at = compress.get("quant")(m, CONFIG, 0)
    out, fact = at.apply(2)
    assert fact["level"] == 1 - 2 / 32 and fact["bits"] == 2 and fact["max_levels"] <= 3
    w0 = next(iter(prunable_parameters(model())))[0].weight
    assert torch.equal(next(iter(prunable_parameters(m)))[0].weight, fake_quantize(w0, 2))
    back, fact32 = at.apply(32)
    assert fact32["level"] == 0 and torch.equal(back(x), ref)


def _train_split(n: int = 48, seed: int = 2) -> SplitArrays:
    g = torch.Generator().manual_seed(seed)
    return SplitArrays(images(n, 32, seed), (torch.rand(n, C, generator=g) < 0.3).float())


def test_prune_then_finetune_keeps_the_mask_and_trains_the_rest():
    train = _train_split()
    at = compress.get("l1_ft")(model(), CONFIG, seed=4, train=train)
    x = images()
    dense_out = model()(x)
    out0, fact0 = at.apply(0.0)  # level 0: the trained model fine-tuned the same way, no mask
    assert np.isfinite(fact0["train_loss"]) and fact0["finetuned"] and fact0["level"] == 0
    assert not torch.equal(out0.eval()(x), dense_out)
    by_hand = model()  # the same epochs, rate and data order, by hand, without a mask
    opt = make_optimizer(by_hand, CONFIG, torch.device("cpu"), lr=CONFIG.finetune_lr)
    split = DeviceSplit.of(train, torch.device("cpu"))
    for e in range(CONFIG.finetune_epochs):
        train_epoch(by_hand, opt, split, CONFIG, 4, compress.FINETUNE_EPOCH0 + e, torch.device("cpu"))
    torch.testing.assert_close(out0.eval()(x), by_hand.eval()(x), rtol=0, atol=0)
    assert fact0["storage_removed"] == pytest.approx(0.0)
    tuned, fact = at.apply(0.5)
    pruned_only = model()
    mask_pruner = NestedPruner(pruned_only, "l1", seed=4)
    mask_pruner.prune_to(0.5)
    moved = 0
    for (m1, _), (m0, _), keep in zip(prunable_parameters(tuned), prunable_parameters(pruned_only),
                                      mask_pruner.masks()):
        assert torch.all(m1.weight[~keep] == 0)  # pruned weights stayed at zero
        moved += int((m1.weight[keep] != m0.weight[keep]).sum())
    assert moved > 0 and np.isfinite(fact["train_loss"])
    assert fact["sparsity"] == pytest.approx(mask_pruner.state().sparsity)
    # deterministic, and each level starts again from the trained weights
    again = compress.get("l1_ft")(model(), CONFIG, seed=4, train=train)
    again.apply(0.9)
    torch.testing.assert_close(again.apply(0.5)[0](x), tuned(x), rtol=0, atol=0)


@pytest.mark.parametrize("method", ["channel_l1", "quant", "l1_ft"])
def test_every_method_through_the_sweep_resumes_and_records_levels(method, tmp_path, monkeypatch):
    from prunecxr import sweep

    seed, test = 0, images(10)
    trained = model()
    monkeypatch.setattr(sweep, "load_trained", lambda *a, **k: model())
    train = _train_split()
    info = sweep.sweep_seed(CONFIG, C, test, method, seed, tmp_path, torch.device("cpu"),
                            progress=False, train=train)
    grid = compress.grid(method, CONFIG)
    assert info["nominal"] == grid and len(info["levels"]) == len(grid) == len(info["achieved"])
    assert info["levels"][0] == 0 and all(np.diff(info["levels"]) > 0)
    probs = np.load(sweep.prediction_path(tmp_path, method, seed))
    assert probs.shape == (len(grid), len(test), C)
    if method != "l1_ft":  # l1_ft's level 0 is fine-tuned (see the test above)
        np.testing.assert_allclose(probs[0], torch.sigmoid(trained(test)).detach().numpy(),
                                   atol=1e-6)
    assert all(0 <= f["storage_removed"] <= f["level"] + 1e-9
               for f in info["achieved"])  # positions and scales cost storage
    # a sweep interrupted after its second level resumes there and gives the same bits
    path = sweep.prediction_path(tmp_path / "b", method, seed)
    calls = {"n": 0}
    real_predict = sweep.predict

    def predict_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_predict(*a, **k)

    monkeypatch.setattr(sweep, "predict", predict_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep_seed(CONFIG, C, test, method, seed, tmp_path / "b", torch.device("cpu"),
                         progress=False, train=train)
    assert path.with_suffix(".partial.npz").exists()
    monkeypatch.setattr(sweep, "predict", real_predict)
    resumed = sweep.sweep_seed(CONFIG, C, test, method, seed, tmp_path / "b", torch.device("cpu"),
                               progress=False, train=train)
    assert np.array_equal(np.load(path), probs)
    assert resumed["achieved"] == info["achieved"]


def test_batchnorm_recalibration_is_the_average_of_the_batch_statistics():
    """After recalibration on equal batches the stem's BatchNorm holds the mean of its input
    over every training image and pixel, and the average of the batches' unbiased variances;
    the weights do not move and the model is left in eval mode."""
    m = model()
    data = _train_split(n=48)
    weights = {k: v.clone() for k, v in m.state_dict().items() if "running" not in k and "num_batches" not in k}
    stem_out = []
    hook = m.backbone.conv1.register_forward_hook(lambda mod, i, o: stem_out.append(o.detach()))
    compress.recalibrate_batchnorm(m, data, 16, torch.device("cpu"))
    hook.remove()
    assert not m.training
    bn = m.backbone.bn1
    outs = torch.stack(stem_out)  # 3 batches x (16, C, H, W)
    mean = outs.transpose(1, 2).reshape(3, outs.shape[2], -1).mean(dim=2).mean(dim=0)
    var = outs.transpose(1, 2).reshape(3, outs.shape[2], -1).var(dim=2, unbiased=True).mean(dim=0)
    torch.testing.assert_close(bn.running_mean, mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_var, var, atol=1e-5, rtol=1e-4)
    assert bn.momentum == 0.1  # restored
    for k, v in weights.items():
        assert torch.equal(m.state_dict()[k], v), k


def test_channel_pruning_with_recalibration_changes_only_the_batchnorm_statistics():
    train = _train_split()
    plain = compress.get("channel_l1")(model(), CONFIG, 0)
    recal = compress.get("channel_l1_bn")(model(), CONFIG, 0, train=train)
    assert compress.needs_train("channel_l1_bn")
    x = images()
    dense0, _ = recal.apply(0.0)
    assert torch.equal(dense0(x), model()(x))  # level 0 stays the trained model
    a, fa = plain.apply(0.5)
    b, fb = recal.apply(0.5)
    assert fa == fb  # same structure, same facts
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        same = torch.equal(sa[k], sb[k])
        stats = "running" in k or "num_batches" in k
        assert same != stats, k  # statistics differ, everything else is equal


def test_batchnorm_recalibration_discards_the_old_running_statistics():
    """From statistics that must go (wrong means and variances, 1000 batches already counted,
    so a cumulative average without a reset would barely move): every BatchNorm ends with the
    average of the batch statistics of its input over the training images' batches."""
    m = model()
    norms = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in norms:
            bn.running_mean.add_(5.0)
            bn.running_var.mul_(10.0)
            bn.num_batches_tracked.fill_(1000)
    inputs: dict[nn.Module, list[torch.Tensor]] = {bn: [] for bn in norms}
    hooks = [bn.register_forward_pre_hook(lambda mod, args: inputs[mod].append(args[0].detach()))
             for bn in norms]
    data = _train_split(n=48)
    compress.recalibrate_batchnorm(m, data, 16, torch.device("cpu"))
    for h in hooks:
        h.remove()
    # the stem's input, computed here from the images: the same 3 batches of 16, in order
    with torch.no_grad():
        stem = [m.backbone.conv1(m.normalize(data.images[i:i + 16])) for i in (0, 16, 32)]
    for x, y in zip(inputs[m.backbone.bn1], stem, strict=True):
        torch.testing.assert_close(x, y)
    for bn in norms:
        xs = torch.stack([x.transpose(0, 1).flatten(1) for x in inputs[bn]])  # (3, C, N*H*W)
        assert xs.shape[0] == 3
        torch.testing.assert_close(bn.running_mean, xs.mean(dim=2).mean(dim=0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bn.running_var, xs.var(dim=2, unbiased=True).mean(dim=0),
                                   atol=1e-5, rtol=1e-4)
        assert int(bn.num_batches_tracked) == 3


def test_storage_facts_of_quantisation_and_of_channel_pruning_with_zeros():
    """Quantisation stores every weight densely at its bits plus a scale per output channel
    (none at 32 bits); channel pruning's sparsity counts the removed weights and the zeros left
    in the kept ones, against the dense model's weights."""
    m = model()
    dense = count_prunable(m)
    at = compress.get("quant")(m, CONFIG, 0)
    _, fact4 = at.apply(4)
    assert fact4["stored_bits"] == compress.stored_bits(m, 4, sparse=False, scales=True)
    assert fact4["stored_bits"] > 4 * dense
    _, fact32 = at.apply(32)
    assert (fact32["bits"], fact32["sparsity"]) == (32, 0.0)
    assert fact32["stored_bits"] == 32 * dense and fact32["storage_removed"] == 0.0
    with torch.no_grad():  # zeros in the head, which keeps its outputs
        m.backbone.fc.weight.view(-1)[::2] = 0.0
    small, fact = compress.get("channel_l1")(m, CONFIG, seed=0).apply(0.5)
    kept, zeros = count_prunable(small), int((small.backbone.fc.weight == 0).sum())
    assert zeros > 0
    assert compress.zero_share(small) == pytest.approx(zeros / kept)
    assert fact["sparsity"] == pytest.approx((dense - kept + zeros) / dense)
    assert fact["stored_bits"] == 32 * kept   # smaller dense layers: no positions


def test_storage_and_structure_facts_of_the_pruning_methods():
    """Unstructured pruning stores its kept weights sparsely (positions included), and so does
    pruning with fine-tuning from its first level on; channel pruning reports the MACs and the
    convolution channels of the smaller model it returns."""
    m = model()
    dense = count_prunable(m)
    _, fact = compress.get("l1")(m, CONFIG, seed=0).apply(0.9)
    assert fact["stored_bits"] == compress.stored_bits(m, sparse=True) < 32 * dense
    assert fact["storage_removed"] > 0.5
    tuned, fact = compress.get("l1_ft")(model(), CONFIG, seed=0, train=_train_split()).apply(0.9)
    assert fact["stored_bits"] == compress.stored_bits(tuned, sparse=True) < 32 * dense
    at = compress.get("channel_l1")(model(), CONFIG, seed=0)
    _, fact0 = at.apply(0.0)
    small, fact = at.apply(0.5)
    convs = [mod for mod in small.modules() if isinstance(mod, nn.Conv2d)]
    assert fact["channels"] == sum(c.out_channels for c in convs) < fact0["channels"]
    assert fact["macs"] == pytest.approx(fact["macs_share"] * fact0["macs"], rel=1e-6)
    assert 0 < fact["macs"] < fact0["macs"]


def test_finetuning_epochs_draw_their_own_data_order(monkeypatch):
    """Epoch e of fine-tuning shuffles and augments as epoch FINETUNE_EPOCH0 + e of the seed,
    so its epochs differ from each other and from training's (here under bf16, which needs
    the device passed down)."""
    config = load_config("smoke", overrides=["image_size=32", "finetune_sparsities=0.5",
                                             "finetune_epochs=3", "precision=bf16"])
    seen = []
    real = compress.train_epoch

    def record(model, opt, split, cfg, seed, epoch, device):
        seen.append((seed, epoch))
        return real(model, opt, split, cfg, seed, epoch, device)

    monkeypatch.setattr(compress, "train_epoch", record)
    compress.get("l1_ft")(model(), config, seed=4, train=_train_split()).apply(0.5)
    e0 = compress.FINETUNE_EPOCH0
    assert seen == [(4, e0), (4, e0 + 1), (4, e0 + 2)]


def test_recalibration_runs_at_the_configured_precision():
    """channel_l1_bn re-estimates the statistics under the run's precision (bf16 autocast
    gives other statistics than fp32)."""
    train = _train_split()
    bf16 = load_config("smoke", overrides=["image_size=32", "channel_ratios=0.5",
                                           "precision=bf16"])
    got, _ = compress.get("channel_l1_bn")(model(), bf16, 0, train=train).apply(0.5)
    plain, _ = compress.get("channel_l1")(model(), bf16, 0).apply(0.5)
    fp32 = compress.recalibrate_batchnorm(
        compress.get("channel_l1")(model(), bf16, 0).apply(0.5)[0], train,
        bf16.eval_batch_size, torch.device("cpu"), "fp32")
    want = compress.recalibrate_batchnorm(plain, train, bf16.eval_batch_size,
                                          torch.device("cpu"), "bf16")
    for k, v in want.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    assert not torch.equal(got.backbone.layer1[0].bn1.running_mean,
                           fp32.backbone.layer1[0].bn1.running_mean)


def test_a_sweep_predicts_at_the_run_precision_and_redoes_another_grid(tmp_path, monkeypatch):
    """Each level is evaluated under the run's precision (bf16 here); a finished file of
    another grid is swept again, not returned."""
    from prunecxr import sweep
    from prunecxr.train import predict

    monkeypatch.setattr(sweep, "load_trained", lambda *a, **k: model())
    test, cpu = images(10), torch.device("cpu")
    bf16 = load_config("smoke", overrides=["image_size=32", "sparsities=0,0.5", "precision=bf16"])
    info = sweep.sweep_seed(bf16, C, test, "l1", 0, tmp_path, cpu, progress=False)
    probs = np.load(sweep.prediction_path(tmp_path, "l1", 0))
    np.testing.assert_array_equal(probs[0], predict(model(), test, bf16.eval_batch_size, cpu, "bf16"))
    assert not np.array_equal(probs[0], predict(model(), test, bf16.eval_batch_size, cpu, "fp32"))
    other = load_config("smoke", overrides=["image_size=32", "sparsities=0,0.5,0.9",
                                            "precision=bf16"])
    again = sweep.sweep_seed(other, C, test, "l1", 0, tmp_path, cpu, progress=False)
    assert info["nominal"] == [0.0, 0.5] and again["nominal"] == [0.0, 0.5, 0.9]
    assert info["peak_gpu_bytes"] is None and info["images_this_run"] == 2 * 10  # no GPU here
    assert np.load(sweep.prediction_path(tmp_path, "l1", 0)).shape == (3, 10, C)


def _bits_by_hand(model, value_bits=32, sparse=True, scales=False) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().numpy()
            n, kept = w.size, int(np.count_nonzero(w))
            options = [n * value_bits]
            if sparse:
                options += [kept * value_bits + n,
                            kept * value_bits + kept * math.ceil(math.log2(n))]
            total += min(options) + (32 * w.shape[0] if scales else 0)
    return total


def test_stored_bits_against_a_loop_and_the_issues_example():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, 64, 8), nn.Linear(64, 5))
    assert compress.stored_bits(model) == _bits_by_hand(model) == 32 * sum(
        m.weight.numel() for m in model if hasattr(m, "weight"))
    with torch.no_grad():
        for m, share in zip(model, (0.5, 0.9, 0.99)):
            w = m.weight
            w.mul_((torch.rand_like(w) >= share).float())
    for kw in ({}, {"sparse": False}, {"value_bits": 4, "sparse": False, "scales": True}):
        assert compress.stored_bits(model, **kw) == _bits_by_hand(model, **kw)
    # one layer of 2^16 weights at sparsity 0.9: 0.1 x 32 value bits + a 1-bit mask per weight
    # (16-bit indices would cost 1.6): 4.2 bits a weight, 87% of the storage removed, not 90%
    layer = nn.Linear(256, 256, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight.view(-1)[: 2 ** 16 // 10 + 1] = 1.0
    kept = 2 ** 16 // 10 + 1
    facts = compress.storage_facts(nn.Sequential(layer), 2 ** 16)
    assert facts["stored_bits"] == kept * 32 + 2 ** 16
    assert facts["storage_removed"] == pytest.approx(0.869, abs=0.002)
