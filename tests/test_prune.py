"""Global pruning: masks equal torch's global_unstructured, nesting, determinism, validation."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.utils import prune as tprune

from prunecxr.prune import (
    METHODS,
    ImportanceMethod,
    NestedPruner,
    _global_order,
    get_method,
    global_masks,
    n_to_prune,
    prunable_parameters,
    sparsity_grid,
)

GRID = sparsity_grid()
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


# --------------------------------------------------------------------------- models


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter and BN buffer from an explicit generator (no global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=gen) + 0.5)
    return model


def _tie_free(model: nn.Module, seed: int) -> nn.Module:
    """Prunable weights get distinct magnitudes (a shuffled 1..total), so every mask is unique."""
    _randomise(model, seed)
    weights = [getattr(m, n) for m, n in prunable_parameters(model)]
    total = sum(w.numel() for w in weights)
    assert total < 2**24  # integers stay exact in float32
    gen = torch.Generator().manual_seed(seed + 1)
    mags = (torch.randperm(total, generator=gen) + 1).float() * 2.0**-24
    signs = torch.randint(0, 2, (total,), generator=gen).float() * 2 - 1
    flat, off = mags * signs, 0
    with torch.no_grad():
        for w in weights:
            w.copy_(flat[off : off + w.numel()].view(w.shape))
            off += w.numel()
    return model


def tiny(seed: int = 0) -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 1, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 4),
        nn.Linear(4, 3),
    )
    return _randomise(model, seed)


def resnet18() -> nn.Module:
    return torchvision.models.resnet18(num_classes=5)


class SmallResNet18(torchvision.models.ResNet):
    """torchvision's ResNet-18 (same blocks, strides, downsample convs and fc: 21 prunable
    layers) with every channel count divided by 64 / ``width``: 0.7M weights at width 16, so
    the fast tier checks the same layer structure as resnet18 in a fraction of the time."""

    def __init__(self, width: int = 16, num_classes: int = 5) -> None:
        self._width, self._stem_done = width, False
        super().__init__(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2],
                         num_classes=num_classes)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if not self._stem_done:
            self.inplanes, self._stem_done = self._width, True
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


# --------------------------------------------------------------------------- helpers


def torch_masks(model: nn.Module, amount: float) -> list[torch.Tensor]:
    """Keep-masks of torch's global L1 pruning, from scratch on a deep copy."""
    clone = copy.deepcopy(model)
    params = prunable_parameters(clone)
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=amount)
    return [m.weight_mask.bool() for m, _ in params]


def flat(masks: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([m.reshape(-1) for m in masks])


def flat_scores(model: nn.Module) -> torch.Tensor:
    weights = [getattr(m, n).detach() for m, n in prunable_parameters(model)]
    return torch.cat([w.abs().reshape(-1) for w in weights])


def untouched_state(model: nn.Module) -> dict[str, torch.Tensor]:
    pruned = {id(m) for m, _ in prunable_parameters(model)}
    names = {f"{n}.weight" for n, m in model.named_modules() if id(m) in pruned}
    return {k: v.clone() for k, v in model.state_dict().items() if k not in names}


# --------------------------------------------------------------------------- what is prunable


@pytest.mark.parametrize("make", [resnet18, SmallResNet18], ids=["resnet18", "small"])
def test_prunable_parameters_resnet18(make):
    model = make()
    params = prunable_parameters(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and len(params) == 21  # 17 convs + 3 downsample convs + fc
    expected = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [m for m, _ in params] == expected
    assert all(name == "weight" for _, name in params)
    assert params[-1][0] is model.fc
    assert any(m is model.layer2[0].downsample[0] for m, _ in params)


def test_sparsity_grid():
    expected = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45,
                0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]  # fmt: skip
    assert GRID == expected
    assert sparsity_grid(0.25, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="multiple"):
        sparsity_grid(0.3, 0.95)
    assert sparsity_grid(1.0, 1.0) == [0.0, 1.0] and sparsity_grid(0.5, 0.0) == [0.0]
    for step, stop in ((0.0, 0.5), (1.5, 0.5), (0.5, 1.5), (0.5, -0.5)):
        with pytest.raises(ValueError) as caught:
            sparsity_grid(step, stop)
        assert str(caught.value) == (f"need 0 < step <= 1 and 0 <= stop <= 1, got step={step}, "
                                     f"stop={stop}")


def test_random_scores_and_masks_default_to_seed_0_and_walk_is_prune_to():
    from prunecxr.prune import NestedPruner, RandomScores, global_masks

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    weights = [model[0].weight, model[1].weight]
    for a, b in zip(RandomScores().scores(weights), RandomScores().scores(weights, seed=0)):
        assert torch.equal(a, b) and a.dtype == torch.float32
    assert not torch.equal(RandomScores().scores(weights)[0],
                           RandomScores().scores(weights, seed=1)[0])
    for a, b in zip(global_masks(model, "random", 0.5), global_masks(model, "random", 0.5, seed=0)):
        assert torch.equal(a, b)
    walked = [step.sparsity for step in NestedPruner(copy.deepcopy(model), "l1").walk([0.2, 0.6])]
    by_hand = NestedPruner(copy.deepcopy(model), "l1")
    assert walked == [by_hand.prune_to(0.2).sparsity, by_hand.prune_to(0.6).sparsity]


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize("total", [0, 1, 7, 10, 101, 11_689_512])
def test_n_to_prune_matches_torch(total):
    for amount in [*GRID, 1.0, 0.125, 1 / 3, 0.5]:
        assert n_to_prune(amount, total) == tprune._compute_nparams_toprune(amount, total)


@pytest.mark.parametrize("bad", [-0.05, 1.01, float("nan"), float("inf")])
def test_bad_amount_raises(bad):
    with pytest.raises(ValueError, match=r"amount must be a fraction in \[0, 1\]"):
        n_to_prune(bad, 100)
    with pytest.raises(ValueError, match="amount"):
        NestedPruner(tiny(), "l1").prune_to(bad)
    with pytest.raises(ValueError, match="amount"):
        global_masks(tiny(), "l1", bad)


@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_amount_type_raises(bad):
    with pytest.raises(TypeError, match="amount must be a real number"):
        n_to_prune(bad, 100)


def test_decreasing_amount_raises():
    pruner = NestedPruner(tiny(), "l1")
    pruner.prune_to(0.5)
    pruner.prune_to(0.5)  # equal is fine (no-op)
    with pytest.raises(ValueError, match="non-decreasing.*0.5.*0.3"):
        pruner.prune_to(0.3)


def test_unknown_method_lists_allowed():
    with pytest.raises(ValueError, match="unknown pruning method 'snip'.*l1, local_l1, random"):
        get_method("snip")
    assert isinstance(get_method("l1"), METHODS["l1"])


# --------------------------------------------------------------------------- ranking


def test_global_order_is_stable_argsort():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(500, generator=gen).round(decimals=1)  # many ties, negatives
    b = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 0.0, 1e-45, -1e-45, 3.0])
    c = torch.randint(0, 3, (7, 11), generator=gen).float()
    scores = [a, b, c]
    ref = torch.sort(torch.cat([s.reshape(-1) for s in scores]), stable=True).indices
    assert torch.equal(_global_order(scores), ref)
    assert torch.equal(_global_order([s.double() for s in scores]), ref)  # float64 path
    with pytest.raises(ValueError, match="NaN"):
        _global_order([torch.tensor([1.0, float("nan")])])


# --------------------------------------------------------------------------- L1 vs torch


def _assert_walk_equals_torch(model: nn.Module, levels=GRID) -> list:
    before = untouched_state(model)
    reference = copy.deepcopy(model)
    pruner = NestedPruner(model, "l1")
    steps = []
    for k in levels:
        step = pruner.prune_to(k)
        ours, theirs = pruner.masks(), torch_masks(reference, k)
        assert [m.shape for m in ours] == [m.shape for m in theirs]
        assert torch.equal(flat(ours), flat(theirs)), f"masks differ from torch at k={k}"
        # the weights themselves: zero exactly where pruned, untouched elsewhere
        pairs = zip(prunable_parameters(model), prunable_parameters(reference))
        for ((m, n), (rm, _)), mask in zip(pairs, ours):
            w, w0 = getattr(m, n).detach(), getattr(rm, n).detach()
            assert torch.equal(w, torch.where(mask, w0, torch.zeros_like(w0)))
        assert step.n_pruned == n_to_prune(k, pruner.total)
        assert step.sparsity == step.n_pruned / pruner.total
        params = prunable_parameters(model)
        sizes = {nm: getattr(m, n).numel() for nm, (m, n) in zip(pruner.names, params)}
        layer_zeros = sum(step.layer_sparsity[nm] * sizes[nm] for nm in pruner.names)
        assert round(layer_zeros) == step.n_pruned
        steps.append(step)
    after = untouched_state(model)
    assert after.keys() == before.keys() and len(after) > 0
    assert all(torch.equal(after[k], before[k]) for k in before), "bias/BN changed"
    return steps


def test_l1_walk_equals_torch_tiny():
    _assert_walk_equals_torch(_tie_free(tiny(), seed=1))


def test_l1_walk_equals_torch_resnet18_jumps():
    """Upward in uneven jumps (each level still compared with torch from scratch), on the
    resnet18 layer structure at a quarter of the channels (the full model: the slow test below)."""
    model = _tie_free(SmallResNet18(), seed=2)
    total = sum(getattr(m, n).numel() for m, n in prunable_parameters(model))
    assert total == 700_336
    steps = _assert_walk_equals_torch(model, levels=[0.0, 0.05, 0.5, 0.95])
    assert [s.n_pruned for s in steps] == [0, 35_017, 350_168, 665_319]  # round(k * total)


@pytest.mark.slow
def test_l1_walk_equals_torch_resnet18_full_grid():
    """All 20 levels (about a minute on 2 CPU cores: torch's global_unstructured dominates)."""
    steps = _assert_walk_equals_torch(_tie_free(resnet18(), seed=2))
    print("resnet18 achieved sparsity:", [round(s.sparsity, 6) for s in steps])


@pytest.mark.slow
def test_l1_natural_init_agrees_up_to_ties():
    """As initialised (no forced distinct values), float32 weights of an 11M model do tie."""
    model = _randomise(resnet18(), seed=4)
    scores = flat_scores(model)
    reference = copy.deepcopy(model)
    pruner = NestedPruner(model, "l1")
    ordered = scores.sort().values
    for k in [0.25, 0.75]:  # with this seed both thresholds fall inside a group of tied weights
        pruner.prune_to(k)
        n = n_to_prune(k, scores.numel())
        assert ordered[n - 1] == ordered[n], "test data no longer has a tie at the threshold"
        _assert_agree_off_ties(flat(pruner.masks()), flat(torch_masks(reference, k)), scores, n)


def test_l1_natural_init_agrees_up_to_ties_small():
    """The same on the small resnet18: levels chosen where its float32 weights do tie."""
    model = _randomise(SmallResNet18(width=8), seed=4)
    scores = flat_scores(model)
    reference = copy.deepcopy(model)
    pruner = NestedPruner(model, "l1")
    ordered = scores.sort().values
    tied_at = torch.nonzero(ordered[1:] == ordered[:-1]).squeeze(1) + 1  # ordered[n-1] == ordered[n]
    total = scores.numel()
    levels = [int(tied_at[tied_at >= f * total][0]) / total for f in (0.25, 0.75)]
    for k in levels:
        pruner.prune_to(k)
        n = n_to_prune(k, total)
        assert ordered[n - 1] == ordered[n], "the chosen level does not cut through a tie"
        _assert_agree_off_ties(flat(pruner.masks()), flat(torch_masks(reference, k)), scores, n)


def _assert_agree_off_ties(ours, theirs, scores, n):
    assert int((~ours).sum()) == int((~theirs).sum()) == n
    if n == 0:
        return
    threshold = scores.sort().values[n - 1]
    off_tie = scores != threshold
    assert torch.equal(ours[off_tie], theirs[off_tie])
    assert not ours[scores < threshold].any() and ours[scores > threshold].all()
    # our tie rule: among weights tied at the threshold, the lowest flat indices are pruned
    tied = torch.nonzero(~off_tie).squeeze(1)
    n_tied_pruned = n - int((scores < threshold).sum())
    assert torch.equal(ours[tied], torch.arange(tied.numel()) >= n_tied_pruned)


def test_l1_tie_heavy_model():
    model = tiny(seed=5)
    with torch.no_grad():  # magnitudes in {0, 1, 2, 3}: almost every weight is tied
        for m, n in prunable_parameters(model):
            w = getattr(m, n)
            gen = torch.Generator().manual_seed(w.numel())
            w.copy_(torch.randint(-3, 4, w.shape, generator=gen).float())
    scores = flat_scores(model)
    reference = copy.deepcopy(model)
    pruner = NestedPruner(model, "l1")
    previous = flat(pruner.masks())
    for k in GRID:
        step = pruner.prune_to(k)
        ours = flat(pruner.masks())
        n = n_to_prune(k, pruner.total)
        _assert_agree_off_ties(ours, flat(torch_masks(reference, k)), scores, n)
        assert torch.equal(ours, flat(global_masks(reference, "l1", k)))
        assert not (ours & ~previous).any()  # nested
        previous = ours
        # weights that were already 0 count as sparsity even before they are "pruned"
        assert step.sparsity == max(n, int((scores == 0).sum())) / pruner.total


def test_l1_channels_last_matches_contiguous():
    model = _tie_free(tiny(seed=6), seed=6)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert not prunable_parameters(cl)[0][0].weight.is_contiguous()
    a, b = NestedPruner(model, "l1"), NestedPruner(cl, "l1")
    for k in [0.1, 0.6, 0.95]:
        a.prune_to(k)
        b.prune_to(k)
        assert torch.equal(flat(a.masks()), flat(b.masks()))
        for (m1, _), (m2, _) in zip(prunable_parameters(model), prunable_parameters(cl)):
            assert torch.equal(m1.weight, m2.weight)


def test_float64_model_equals_torch():
    _assert_walk_equals_torch(_tie_free(tiny(seed=7), seed=7).double(), levels=[0.0, 0.3, 0.95])


# --------------------------------------------------------------------------- random method


def test_random_method_deterministic_nested_and_exact():
    model = tiny(seed=8)
    walks = {}
    for seed in (0, 0, 1):
        pruner = NestedPruner(copy.deepcopy(model), "random", seed=seed)
        masks, previous = [], flat(pruner.masks())
        for k in GRID:
            step = pruner.prune_to(k)
            current = flat(pruner.masks())
            assert step.sparsity == n_to_prune(k, pruner.total) / pruner.total
            assert int((~current).sum()) == step.n_pruned
            assert not (current & ~previous).any()  # nested
            assert torch.equal(current, flat(global_masks(model, "random", k, seed=seed)))
            masks.append(current)
            previous = current
        walks.setdefault(seed, []).append(torch.stack(masks))
    assert torch.equal(walks[0][0], walks[0][1])  # same seed, same masks
    assert not torch.equal(walks[0][0], walks[1][0])  # different seed, different masks
    # random pruning ignores magnitude: it prunes large weights too
    s = flat_scores(model)
    assert s[~walks[0][0][10]].max() > s[walks[0][0][10]].median()


def test_random_does_not_touch_global_rng():
    model = tiny()  # building modules draws from the global RNG; pruning must not
    state = torch.random.get_rng_state()
    NestedPruner(model, "random", seed=3).prune_to(0.5)
    global_masks(model, "random", 0.7, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())


# --------------------------------------------------------------------------- extension


def test_new_method_slots_in():
    class LargestFirst(ImportanceMethod):
        name = "largest"

        def scores(self, weights, seed=0):
            return [-w.detach().abs() for w in weights]

    model = _tie_free(tiny(seed=9), seed=9)
    pruner = NestedPruner(model, LargestFirst())
    s = flat_scores(model)
    pruner.prune_to(0.25)
    keep = flat(pruner.masks())
    assert s[~keep].min() > s[keep].max()


def test_planned_levels_give_the_same_masks_as_the_full_ranking():
    """levels=... partitions at the planned cut points instead of sorting: same masks, faster."""
    import copy

    from prunecxr.prune import NestedPruner, sparsity_grid

    for method in ("l1", "random"):
        base = SmallResNet18(width=8, num_classes=4)
        full_model, planned_model = copy.deepcopy(base), copy.deepcopy(base)
        full = NestedPruner(full_model, method, seed=3)
        planned = NestedPruner(planned_model, method, seed=3, levels=sparsity_grid())
        for k in (0.0, 0.05, 0.5, 0.9, 0.95):  # all planned; masks checked at a few
            a, b = full.prune_to(k), planned.prune_to(k)
            assert a == b
            assert all(torch.equal(x, y) for x, y in zip(full.masks(), planned.masks()))
        assert all(torch.equal(x, y) for x, y in
                   zip(full_model.state_dict().values(), planned_model.state_dict().values()))
    with pytest.raises(ValueError, match="not one of the levels"):
        NestedPruner(SmallResNet18(num_classes=4), "l1", levels=[0.0, 0.5]).prune_to(0.3)


# --------------------------------------------------------------------------- local (layer-wise) L1


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_local_l1_walk_equals_torch_l1_unstructured_per_layer(channels_last):
    """Each layer loses round(k * its size) of its smallest |w|: torch's l1_unstructured applied
    layer by layer, at every level of a nested walk (one weight buffer or one per layer)."""
    model = _tie_free(SmallResNet18(width=8), seed=11)
    reference = copy.deepcopy(model)  # contiguous: torch's l1_unstructured cannot view NHWC
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    before = untouched_state(model)
    pruner = NestedPruner(model, "local_l1", levels=[0.1, 0.5, 0.9])
    for k in (0.1, 0.5, 0.9):
        step = pruner.prune_to(k)
        for (mod, name), mask, (live, _) in zip(prunable_parameters(reference), pruner.masks(),
                                              prunable_parameters(model)):
            torch_mod = tprune.l1_unstructured(copy.deepcopy(mod), name, amount=k)
            assert torch.equal(torch_mod.weight_mask.bool(), mask)
            assert torch.equal(live.weight, torch_mod.weight)  # pruned in place, same values
        assert all(abs(v - k) <= 1 / 64 for v in step.layer_sparsity.values())
        from_scratch = global_masks(reference, "local_l1", k)
        assert torch.equal(flat(from_scratch), flat(pruner.masks()))
    pruned_fc = torch.count_nonzero(model.fc.weight == 0).item()
    assert pruned_fc == round(0.9 * model.fc.weight.numel())  # the same share as every layer
    for key, value in untouched_state(model).items():
        assert torch.equal(value, before[key])  # biases and BatchNorm untouched
    with pytest.raises(ValueError, match="non-decreasing"):
        pruner.prune_to(0.5)


def test_local_and_global_l1_differ_where_layers_differ():
    """Global L1 lets layers lose different shares; local L1 takes the same share of each."""
    model = _tie_free(SmallResNet18(width=8), seed=12)
    with torch.no_grad():
        model.fc.weight.mul_(100.0)  # the head's weights are far larger than the rest
    g = NestedPruner(copy.deepcopy(model), "l1").prune_to(0.5).layer_sparsity["fc.weight"]
    loc = NestedPruner(copy.deepcopy(model), "local_l1").prune_to(0.5).layer_sparsity["fc.weight"]
    assert g < 0.05 and loc == pytest.approx(0.5, abs=0.01)


def test_a_method_with_the_wrong_scores_is_named():
    class Short(ImportanceMethod):
        name = "short"

        def scores(self, weights, seed=0):
            return [w.detach().abs() for w in weights][:-1]

    class Flat(ImportanceMethod):
        name = "flat"

        def scores(self, weights, seed=0):
            return [w.detach().abs().flatten() for w in weights]

    model = tiny()
    weights = [getattr(m, n) for m, n in prunable_parameters(model)]
    with pytest.raises(ValueError) as caught:
        NestedPruner(model, Short())
    assert str(caught.value) == (f"method returned {len(weights) - 1} score tensors for "
                                 f"{len(weights)} weights")
    with pytest.raises(ValueError) as caught:
        NestedPruner(model, Flat())
    w = weights[0]
    assert str(caught.value) == f"score shape {(w.numel(),)} != weight shape {tuple(w.shape)}"


def test_weights_share_one_buffer_only_when_contiguous_of_one_dtype():
    """The flat buffer holds every weight as a view (same values) when all are contiguous,
    of one dtype and device, even a single one; otherwise None, and weights stay as they were."""
    from prunecxr.prune import _flatten_into_buffer

    def params(*tensors):
        return [nn.Parameter(t) for t in tensors]

    a, b = torch.randn(3, 4), torch.randn(5)
    ws = params(a.clone(), b.clone())
    flat = _flatten_into_buffer(ws)
    assert torch.equal(flat, torch.cat([a.flatten(), b]))
    assert ws[0].data_ptr() == flat.data_ptr() and torch.equal(ws[0], a)
    one = params(b.clone())
    assert torch.equal(_flatten_into_buffer(one), b)
    doubles = params(a.clone().double(), b.clone().double())
    assert _flatten_into_buffer(doubles).dtype == torch.float64
    assert doubles[0].dtype == torch.float64
    for bad in (params(a.clone().t(), b.clone()), params(a.clone(), b.clone().double()),
                params(a.clone().double(), b.clone())):
        before = [w.data_ptr() for w in bad]
        assert _flatten_into_buffer(bad) is None
        assert [w.data_ptr() for w in bad] == before


def test_state_reports_the_amount_asked_and_the_total():
    model = tiny()
    pruner = NestedPruner(model)
    total = sum(getattr(m, n).numel() for m, n in prunable_parameters(model))
    step = pruner.prune_to(0.3)
    assert (step.amount, step.total, step.n_pruned) == (0.3, total, n_to_prune(0.3, total))
    assert pruner.state() == step


@pytest.mark.parametrize("make", [
    lambda: nn.Linear(4, 3), lambda: nn.Conv2d(2, 3, 3),
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Linear(4, 3))],
    ids=["linear", "conv", "sequential"])
def test_layer_sparsity_is_keyed_by_the_state_dict_names(make):
    """Each prunable weight's sparsity is reported under its state_dict key, also for a model
    that is itself one Linear or Conv2d (key "weight")."""
    model = make()
    step = NestedPruner(model).prune_to(0.5)
    state = model.state_dict()
    assert list(step.layer_sparsity) == [k for k in state if k.endswith("weight")]
    for (m, n), name in zip(prunable_parameters(model), step.layer_sparsity):
        w = state[name]
        assert getattr(m, n).data_ptr() == w.data_ptr()
        assert step.layer_sparsity[name] == (w == 0).sum().item() / w.numel()


def test_global_order_is_torchs_stable_sort_on_every_path():
    """Against torch.sort(stable=True) of the concatenated scores: the packed float32 keys
    (negative and tied scores, float16 scores), the float64 path (scores that float32 would
    tie), one weight, none; with cut points, the prefixes hold the same positions."""
    def torch_order(scores):
        return torch.sort(torch.cat([s.reshape(-1).double() for s in scores]), stable=True).indices

    g = torch.Generator().manual_seed(0)
    f32 = [torch.randn(4, 5, generator=g), torch.randn(7, generator=g).round()]
    f16 = [s.half() for s in f32]
    close = [torch.tensor([1.0 + 1e-12, 1.0, 1.0 + 2e-12], dtype=torch.float64),
             torch.tensor([1.0 + 5e-13], dtype=torch.float64)]
    for scores in (f32, f16, close, [torch.tensor([3.0])]):
        assert torch.equal(_global_order(scores), torch_order(scores))
    assert _global_order([torch.tensor([0.0, 0.0])]).tolist() == [0, 1]
    assert _global_order(close).tolist() == [1, 3, 0, 2]           # float32 would tie them all
    empty = _global_order([torch.empty(0)])
    assert empty.dtype == torch.int64 and empty.shape == (0,)
    full = torch_order(f32)
    cut = _global_order(f32, kth=[0, 5, 11, 27])
    assert set(cut[:5].tolist()) == set(full[:5].tolist())
    assert set(cut[:11].tolist()) == set(full[:11].tolist())


def test_bad_scores_and_models_are_named():
    for scores in ([torch.tensor([1.0, float("nan")])],
                   [torch.tensor([1.0, float("nan")], dtype=torch.float64)]):
        with pytest.raises(ValueError) as caught:
            _global_order(scores)
        assert str(caught.value) == "importance scores contain NaN"
    with pytest.raises(TypeError) as caught:
        _global_order([torch.tensor([1, 2])])
    assert str(caught.value) == "scores must be floating point, got torch.int64"
    with pytest.raises(ValueError) as caught:
        NestedPruner(nn.Sequential(nn.ReLU()))
    assert str(caught.value) == "model has no Conv2d or Linear weights to prune"
    for bad in (-1, True, 2.0):
        with pytest.raises(ValueError) as caught:
            n_to_prune(0.5, bad)
        assert str(caught.value) == f"total must be a non-negative integer, got {bad!r}"
    pruner = NestedPruner(tiny(), "random", seed=3, levels=[0.5])
    assert repr(pruner).startswith("NestedPruner(method='random', seed=3, total=")
    with pytest.raises(ValueError) as caught:
        pruner.prune_to(0.25)
    assert str(caught.value).endswith(
        "the NestedPruner with levels=None (full ranking) to prune to any amount")
