"""torchvision ResNets with a C-way multi-label head, and the input normalisation they expect.

ImageNet weights come through torchvision's weights API, but only from a file already on disk
(the torch hub cache, or a path given as ``weights``): nothing is downloaded at run time. When
the file is missing, the error says exactly where to put it, or to train from scratch with
``weights=none``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torchvision
from torch import nn

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFound(FileNotFoundError):
    """ImageNet weights were asked for but are not on disk."""


def imagenet_weights_file(arch: str) -> Path:
    """Where torchvision looks for ``arch``'s default ImageNet weights (the torch hub cache)."""
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _load_state(arch: str, weights: str) -> dict | None:
    if weights in ("none", "", None):
        return None
    if weights == "imagenet":
        path = imagenet_weights_file(arch)
        if not path.exists():
            url = torchvision.models.get_model_weights(arch).DEFAULT.url
            raise WeightsNotFound(
                f"ImageNet weights for {arch} are not on this machine and cannot be downloaded "
                f"at run time. Put the file {path.name} (from {url}) at {path}, or pass "
                f"weights=<path to the .pth file>, or train from scratch with weights=none."
            )
        # The file is in the hub cache, so torchvision's weights API loads it without a download.
        return torchvision.models.get_model_weights(arch).DEFAULT.get_state_dict(progress=False)
    else:
        path = Path(weights).expanduser()
        if not path.exists():
            raise WeightsNotFound(f"weights file {path} does not exist (weights={weights!r})")
    return torch.load(path, map_location="cpu", weights_only=True)


def build_model(arch: str, num_classes: int, weights: str = "none", seed: int | None = None) -> "Classifier":
    """A :class:`Classifier` around torchvision ``arch`` with ``fc`` -> ``Linear(in, num_classes)``.

    With ``seed``, initialisation is deterministic and the caller's global RNG is left as it was.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    state = _load_state(arch, weights)
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None)
        if state is not None:
            model.load_state_dict(state)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return Classifier(model)


class Normalize(nn.Module):
    """uint8 or [0, 1] grayscale batches (B, H, W) -> ImageNet-normalised 3-channel tensors.

    The gray image is replicated to three channels, as the reference reads images as RGB.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalisation + backbone: takes grayscale batches (uint8 or [0, 1]), returns logits."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


def count_prunable(model: nn.Module) -> int:
    """Number of Conv2d and Linear weights (what global pruning acts on)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
