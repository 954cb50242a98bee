"""A split's images on the training device: resident when they fit, else streamed.

On CUDA the uint8 images and labels of a split are copied to the GPU once when they take at most
``RESIDENT_SHARE`` of its free memory (NIH-CXR-LT's training split at 256 px is about 5.6 GiB),
so a batch is an index into device memory; otherwise they stay on the host and each batch is
gathered into pinned memory and copied on a side stream while the previous batch computes.
On the CPU the split stays where it is ("resident"), so the CPU path does exactly what it did.
Batch order comes from the caller (a CPU permutation from the seeded generator), so the order,
and with it every result, does not depend on the placement.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

RESIDENT_SHARE = 0.5  # at most this share of the device's free memory for one split's images
PLACEMENTS = ("resident", "streamed")


def placement(nbytes: int, device: torch.device, free_bytes: int | None = None) -> str:
    """"resident" if ``nbytes`` fit in ``RESIDENT_SHARE`` of the device's free memory (always
    on the CPU), else "streamed". ``free_bytes`` replaces the CUDA query (for tests)."""
    if device.type != "cuda" and free_bytes is None:
        return "resident"
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return "resident" if nbytes <= RESIDENT_SHARE * free_bytes else "streamed"


def peak_gpu_bytes(device: torch.device) -> int | None:
    """The most GPU memory this process has held on ``device`` (None off CUDA)."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` moved to ``device`` when it fits there (:func:`placement`), else as it is
    (pinned on CUDA, so its batches copy asynchronously)."""
    if placement(tensor.nbytes, device) == "resident":
        return tensor.to(device)
    return tensor.pin_memory() if device.type == "cuda" else tensor


class DeviceSplit:
    """One split's uint8 images (n, H, W) and 0/1 labels (n, C) for batches on ``device``.

    ``mode`` is :func:`placement`'s choice unless given (tests force "streamed" on the CPU,
    which exercises the prefetching order without pinned memory or streams).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                 mode: str | None = None) -> None:
        self.device = torch.device(device)
        self.mode = mode or placement(images.nbytes + labels.nbytes, self.device)
        if self.mode not in PLACEMENTS:
            raise ValueError(f"mode must be one of {PLACEMENTS}, got {self.mode!r}")
        if self.mode == "resident":
            self.images, self.labels = images.to(self.device), labels.to(self.device)
        else:
            self.images, self.labels = images, labels
        self._cuda = self.device.type == "cuda"

    @classmethod
    def of(cls, data, device: torch.device) -> "DeviceSplit":
        """``data`` (anything with ``images`` and ``labels``) as a DeviceSplit (as it is if it
        already is one)."""
        return data if isinstance(data, cls) else cls(data.images, data.labels, device)

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(uint8 images, labels) on the device for consecutive ``batch_size`` chunks of
        ``order`` (int64 indices on the CPU)."""
        starts = range(0, len(order), batch_size)
        if self.mode == "resident":
            index = order.to(self.device)  # one transfer of the whole order
            for start in starts:
                idx = index[start:start + batch_size]
                yield self.images[idx], self.labels[idx]
            return
        stream = torch.cuda.Stream(self.device) if self._cuda else None
        chunks = [order[start:start + batch_size] for start in starts]
        ahead = self._fetch(chunks[0], stream) if chunks else None
        for i in range(len(chunks)):
            x, y = ahead
            if stream is not None:  # the copy must be done before compute reads it
                current = torch.cuda.current_stream(self.device)
                current.wait_stream(stream)
                x.record_stream(current)
                y.record_stream(current)
            ahead = self._fetch(chunks[i + 1], stream) if i + 1 < len(chunks) else None
            yield x, y

    def _fetch(self, idx: torch.Tensor, stream) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather one batch on the host; on CUDA pin it and start its copy on ``stream``."""
        x, y = self.images[idx], self.labels[idx]
        if stream is None:
            return x.to(self.device), y.to(self.device)
        x, y = x.pin_memory(), y.pin_memory()
        with torch.cuda.stream(stream):
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
