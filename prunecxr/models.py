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

from .config import ARCHS  # declared with the configuration that checks it

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


class _ScaledResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every channel count scaled by ``width / 64``.

    torchvision fixes the stem at 64 channels and the stages at 64-128-256-512; this subclass
    changes only those counts (stem ``width``, stages ``width * (1, 2, 4, 8)``), so the block
    structure, strides, downsampling and initialisation are torchvision's own.
    """

    def __init__(self, block, layers: list[int], width: int) -> None:
        self._width = width
        self._stem_done = False
        super().__init__(block, layers)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(8 * width * block.expansion, 1000)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if not self._stem_done:  # the first stage starts from the (scaled) stem
            self.inplanes, self._stem_done = self._width, True
        return super()._make_layer(block, planes * self._width // 64, blocks, stride, dilate)


_BLOCKS = {"resnet18": ("BasicBlock", [2, 2, 2, 2]), "resnet34": ("BasicBlock", [3, 4, 6, 3]),
           "resnet50": ("Bottleneck", [3, 4, 6, 3]), "resnet101": ("Bottleneck", [3, 4, 23, 3]),
           "resnet152": ("Bottleneck", [3, 8, 36, 3])}


def _backbone(arch: str, width: int) -> nn.Module:
    if width == 64:  # exactly torchvision's model (and its ImageNet weights)
        return torchvision.models.get_model(arch, weights=None)
    block, layers = _BLOCKS[arch]
    return _ScaledResNet(getattr(torchvision.models.resnet, block), layers, width)


def build_model(arch: str, num_classes: int, weights: str = "none", seed: int | None = None,
                width: int = 64) -> "Classifier":
    """A :class:`Classifier` around torchvision ``arch`` with ``fc`` -> ``Linear(in, num_classes)``.

    ``width`` is the stem's channel count (torchvision's 64; 32 halves every layer's channels,
    about a quarter of the weights and compute). ImageNet weights exist only for width 64.
    With ``seed``, initialisation is deterministic and the caller's global RNG is left as it was.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if width < 8 or width % 8:
        raise ValueError(f"width must be a positive multiple of 8, got {width}")
    if width != 64 and weights not in ("none", "", None):
        raise ValueError(f"pretrained weights ({weights!r}) need width=64, got width={width}")
    state = _load_state(arch, weights)
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        model = _backbone(arch, width)
        if state is not None:
            model.load_state_dict(state)
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return Classifier(model)


class Normalize(nn.Module):
    """uint8 or [0, 1] grayscale batches (B, H, W) -> ImageNet-normalised 3-channel tensors.

    The gray image is replicated to three channels, as the reference reads images as RGB. One
    fused multiply-add writes the 3-channel output (in the channels_last layout when asked),
    ``x * (1 / (255 std)) - mean / std`` for uint8 input.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        scale = 1.0 / self.std
        if x.dtype == torch.uint8:
            x, scale = x.float(), scale / 255.0
        if x.dim() == 3:
            x = x.unsqueeze(1)
        b, _, h, w = x.shape
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((b, 3, h, w), dtype=x.dtype, device=x.device, memory_format=fmt)
        return torch.addcmul(-self.mean / self.std, x, scale, out=out)


class Classifier(nn.Module):
    """Normalisation + backbone: takes grayscale batches (uint8 or [0, 1]), returns logits."""

    channels_last = False  # set by train.prepare: feed the backbone channels_last batches

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x, self.channels_last))


def count_prunable(model: nn.Module) -> int:
    """Number of Conv2d and Linear weights (what global pruning acts on)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
