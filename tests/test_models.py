"""Model construction: heads, deterministic init without touching the global RNG, weights errors."""

import pytest
import torch

from prunecxr.models import WeightsNotFound, build_model, imagenet_weights_file

TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


def test_head_and_deterministic_init():
    before = torch.random.get_rng_state()
    a = build_model("resnet18", 7, seed=3)
    b = build_model("resnet18", 7, seed=3)
    c = build_model("resnet18", 7, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)  # caller's RNG untouched
    assert a.backbone.fc.out_features == 7
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["backbone.conv1.weight"], sc["backbone.conv1.weight"])
    out = a.eval()(torch.randint(0, 255, (2, 32, 32), dtype=torch.uint8))
    assert out.shape == (2, 7)


def test_missing_imagenet_weights_say_where(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFound) as err:
        build_model("resnet50", 20, "imagenet")
    msg = str(err.value)
    assert str(imagenet_weights_file("resnet50")) in msg and "weights=none" in msg


def test_weights_from_a_file(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = build_model("resnet18", 3, str(path))
    assert torch.equal(model.backbone.conv1.weight, ref.conv1.weight)
    with pytest.raises(WeightsNotFound, match="does not exist"):
        build_model("resnet18", 3, str(tmp_path / "nope.pth"))


def test_imagenet_weights_come_from_the_hub_cache(monkeypatch, tmp_path):
    """A file already in the torch hub cache is loaded through torchvision's weights API."""
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    ref = torchvision.models.resnet18()
    path = imagenet_weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), path)
    model = build_model("resnet18", 4, "imagenet")
    assert torch.equal(model.backbone.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)
    assert model.backbone.fc.out_features == 4


def test_width_scales_every_channel_count_and_64_is_torchvision():
    import torchvision

    ref = torchvision.models.resnet18(num_classes=5)
    full = build_model("resnet18", 5, seed=0)
    assert [tuple(p.shape) for p in full.backbone.parameters()] == \
        [tuple(p.shape) for p in ref.parameters()]
    half = build_model("resnet18", 5, seed=0, width=32)
    for (name, a), b in zip(half.backbone.named_parameters(), ref.parameters()):
        if name.startswith("fc."):
            assert a.shape[0] == 5 and (a.ndim == 1 or a.shape[1] == b.shape[1] // 2), name
        else:  # every other tensor: output channels halved, input channels halved after the stem
            want = (b.shape[0] // 2, *([b.shape[1] if name == "conv1.weight" else b.shape[1] // 2]
                                       if b.ndim > 1 else []), *b.shape[2:])
            assert tuple(a.shape) == want, name
    out = half.eval()(torch.randint(0, 255, (2, 64, 64), dtype=torch.uint8))
    assert out.shape == (2, 5)
    narrow = build_model("resnet50", 3, width=16)
    assert narrow.backbone.fc.in_features == 16 * 8 * 4


def test_width_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        build_model("resnet18", 3, width=12)
    with pytest.raises(ValueError, match="need width=64"):
        build_model("resnet18", 3, "imagenet", width=32)
