"""The device data path (prunecxr.batches, train.train_epoch, predict): the resident-or-streamed
choice, streamed batches equal resident ones, and the CPU path bit-identical to the loop it
replaced (CPU augmentation, a host copy per batch, loss.item() every step)."""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn

from checkout import checkout_env
from ci import require_cuda
from prunecxr import train
from prunecxr.batches import RESIDENT_SHARE, DeviceSplit, on_device, placement
from prunecxr.config import load_config
from prunecxr.models import build_model

CPU = torch.device("cpu")
TORCH_THREADS = 1  # tests/conftest.py: one thread (fast on a busy machine)


def split(n: int = 70, size: int = 32, classes: int = 4, seed: int = 0) -> train.SplitArrays:
    g = torch.Generator().manual_seed(seed)
    return train.SplitArrays(torch.randint(0, 256, (n, size, size), dtype=torch.uint8, generator=g),
                             (torch.rand(n, classes, generator=g) < 0.3).float())


def test_placement_keeps_a_split_resident_only_when_it_fits():
    assert placement(10**12, CPU) == "resident"  # the CPU holds what it holds
    free = 8 * 2**30
    assert placement(int(RESIDENT_SHARE * free), CPU, free_bytes=free) == "resident"
    assert placement(int(RESIDENT_SHARE * free) + 1, CPU, free_bytes=free) == "streamed"
    x = torch.arange(6)
    assert on_device(x, CPU) is x
    with pytest.raises(ValueError, match="mode must be one of"):
        DeviceSplit(x, x, CPU, mode="paged")


@pytest.mark.parametrize("batch", [1, 16, 70, 100])
def test_streamed_batches_equal_resident_batches_in_order(batch):
    data = split()
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(3))
    resident = list(DeviceSplit(data.images, data.labels, CPU).batches(order, batch))
    streamed = list(DeviceSplit(data.images, data.labels, CPU, mode="streamed").batches(order, batch))
    assert len(resident) == len(streamed) == math.ceil(len(order) / batch)
    for (x1, y1), (x2, y2), start in zip(resident, streamed, range(0, len(order), batch)):
        idx = order[start:start + batch]
        assert torch.equal(x1, data.images[idx]) and torch.equal(x2, data.images[idx])
        assert torch.equal(y1, data.labels[idx]) and torch.equal(y2, data.labels[idx])
    assert list(DeviceSplit(data.images, data.labels, CPU, mode="streamed").batches(order[:0], 8)) == []


def _old_train_epoch(model, opt, data, config, seed, epoch, device) -> float:
    """The loop before the device path (session 2), kept here as the reference."""
    model.train()
    gen = train._epoch_generator(seed, epoch)
    order = torch.randperm(len(data.images), generator=gen)
    loss_fn = nn.BCEWithLogitsLoss()
    total, seen = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        idx = order[start:start + config.batch_size]
        if len(idx) < 2:
            continue
        x = data.images[idx].unsqueeze(1).float().div_(255.0)
        if config.augment:
            x = train.augment(x, gen, config.rotation)
        x, y = x.to(device), data.labels[idx].to(device)
        opt.zero_grad(set_to_none=True)
        with train.autocast(config.precision, device):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def _one_epoch(epoch_fn, data, config):
    model = train.prepare(build_model("resnet18", 4, "none", seed=1, width=8), config, CPU)
    opt = train.make_optimizer(model, config, CPU)
    loss = epoch_fn(model, opt, data, config, 5, 2, CPU)
    return loss, model.state_dict()


@pytest.mark.parametrize("mode", [None, "streamed"])
def test_cpu_epoch_is_bit_identical_to_the_previous_loop(mode):
    config = load_config("smoke", overrides=["batch_size=16"])
    data = split(n=65)  # a last batch of one image, skipped
    old_loss, old_state = _one_epoch(_old_train_epoch, data, config)
    feed = data if mode is None else DeviceSplit(data.images, data.labels, CPU, mode=mode)
    new_loss, new_state = _one_epoch(train.train_epoch, feed, config)
    assert new_loss == old_loss  # float64 sum on the device = the Python float sum
    for k in old_state:
        assert torch.equal(new_state[k], old_state[k]), k


def test_predict_with_images_already_on_the_device_matches_per_batch_copies():
    model = build_model("resnet18", 4, "none", seed=2, width=8).eval()
    images = split(n=37).images
    got = train.predict(model, on_device(images, CPU), 8, CPU)
    with torch.no_grad():
        want = np.concatenate([torch.sigmoid(model(images[i:i + 8])).numpy() for i in range(0, 37, 8)])
    np.testing.assert_array_equal(got, want)


def test_augmentation_draws_its_randomness_on_the_cpu_whatever_the_device():
    """The rotation and flip of every image come from the CPU generator, so a batch on a GPU
    is augmented with the same parameters as on the CPU ("meta" stands in for a device here:
    it computes shapes only, but consumes the generator exactly as a real device would)."""
    x = torch.rand(5, 1, 16, 16)
    g_cpu, g_dev = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    train.augment(x, g_cpu, 15.0)
    out = train.augment(x.to("meta"), g_dev, 15.0)
    assert out.device.type == "meta" and out.shape == x.shape
    assert torch.equal(torch.rand(3, generator=g_cpu), torch.rand(3, generator=g_dev))


def test_a_cuda_device_gets_deterministic_cudnn(monkeypatch):
    """Seeds side by side on one GPU must give the bits of a seed alone: on CUDA the pipeline
    turns cuDNN's non-deterministic algorithms (and their autotuner) off. No GPU is touched."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert train.resolve_device("cpu").type == "cpu" and not torch.backends.cudnn.deterministic
    assert train.resolve_device("auto") == torch.device("cuda")
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_cuda_asked_for_without_one_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train.resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError) as caught:
        train.resolve_device("cuda")
    assert str(caught.value) == "device=cuda was asked for but no CUDA device is available"


def test_gpu_augmentation_and_epoch_agree_with_the_cpu():
    require_cuda()
    cuda = torch.device("cuda")
    x = torch.rand(8, 1, 32, 32)
    a = train.augment(x, torch.Generator().manual_seed(4), 15.0)
    b = train.augment(x.to(cuda), torch.Generator().manual_seed(4), 15.0).cpu()
    torch.testing.assert_close(b, a, atol=1e-4, rtol=0)
    data = split(n=64)
    streamed = list(DeviceSplit(data.images, data.labels, cuda, mode="streamed").batches(
        torch.arange(64), 16))
    assert all(x.device.type == "cuda" for x, _ in streamed)
    assert torch.equal(torch.cat([x.cpu() for x, _ in streamed]), data.images)


@pytest.mark.slow
def test_compiled_training_agrees_with_eager():
    """``compile`` is an execution knob outside the results key, so a compiled epoch must agree
    with the eager one: here, on the CPU (torch.compile's inductor), one epoch of a tiny model."""
    config = load_config("smoke", overrides=["batch_size=16"])
    data = split(n=64)
    runs = {}
    for compiled in (False, True):
        model = train.prepare(build_model("resnet18", 4, "none", seed=1, width=8), config, CPU)
        opt = train.make_optimizer(model, config, CPU)
        step = torch.compile(model) if compiled else model
        runs[compiled] = (train.train_epoch(step, opt, data, config, 0, 0, CPU), model.state_dict())
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-3)  # fused kernels: last bits differ
    for k, eager in runs[False][1].items():
        torch.testing.assert_close(runs[True][1][k], eager, atol=1e-3, rtol=1e-3, msg=k)


def _gpu_speed():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_speed.py"
    spec = importlib.util.spec_from_file_location("gpu_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_times_nothing_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    assert _gpu_speed().main([]) == 0
    assert "no CUDA device here: nothing timed" in capsys.readouterr().out


@pytest.mark.slow
def test_the_prepared_gpu_check_runs_every_step_in_a_dry_run(tmp_path):
    """benchmarks/gpu_check.sh is what a session lent a GPU runs, with minutes to spare: its
    dry run (every step at a tiny size on this machine) must run the CUDA tests, every path of
    gpu_speed.py (seed workers with identical bits) and the paper profile to its manifest."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = checkout_env(repo, PYTHON=sys.executable, OUT=str(tmp_path / "out"),
                       PRUNECXR_HOME=str(tmp_path / "home"))
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run"], cwd=repo, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for step in ("cuda_tests", "gpu_speed", "paper_profile"):
        assert re.search(rf"^== {step}: exit 0 after \d+ s$", r.stdout, re.M), (step, r.stdout[-3000:])
    speed = (tmp_path / "out" / "gpu_speed.txt").read_text()
    for key in ("project_train", "project_inference", "project_sweep", "bare_train",
                "bare_inference", "default_old", "default_now", "seeds_workers1", "seeds_workers2"):
        assert re.search(rf"^  {key} +[\d,.]+ img/s$", speed, re.M), key
    assert "every seed's weights identical whatever the workers" in speed  # 1 and 2 processes
    assert speed.count("[dry run: not a timing]") == 3
    manifest = json.loads((tmp_path / "out" / "paper_manifest.json").read_text())
    assert manifest["config"]["profile"] == "paper" and manifest["config"]["precision"] == "bf16"
    assert set(manifest["rates"]) == {"train", "sweep"}
    assert re.search(r"^  train +[\d.]+ s +[\d,]+ img/s$", r.stdout, re.M)


def _centroid(img: torch.Tensor) -> torch.Tensor:
    """(x, y) of an image's intensity-weighted centroid, from the image centre, in pixels."""
    h, w = img.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype), torch.arange(w, dtype=img.dtype),
                            indexing="ij")
    total = img.sum()
    return torch.stack([(img * xs).sum() / total - (w - 1) / 2,
                        (img * ys).sum() / total - (h - 1) / 2])


def test_augment_rotates_by_its_drawn_angle_and_flips_half_the_images():
    """Each image is mirrored when its second uniform draw is below 0.5 and turned about the
    centre by (2u - 1) x max_degrees (u its first draw; the angles are symmetric about 0, so
    the direction does not matter): a blob off centre keeps its distance from the centre and
    turns by that angle; with no rotation a flip is an exact mirror. Float64 stays float64."""
    b, size, deg = 64, 48, 15.0
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64),
                            torch.arange(size, dtype=torch.float64), indexing="ij")
    c = (size - 1) / 2
    blob = torch.exp(-((xs - c - 8) ** 2 + (ys - c + 9) ** 2) / (2 * 2.0 ** 2))
    x = blob.expand(b, 1, size, size).clone()
    out = train.augment(x, torch.Generator().manual_seed(11), deg)
    assert out.dtype == torch.float64
    draws = torch.Generator().manual_seed(11)
    angles = (torch.rand(b, generator=draws) * 2 - 1) * deg
    flipped = torch.rand(b, generator=draws) < 0.5
    v = _centroid(blob)
    for i in range(b):
        start = torch.stack([-v[0], v[1]]) if flipped[i] else v
        end = _centroid(out[i, 0])
        assert float(end.norm()) == pytest.approx(float(v.norm()), abs=0.1)
        turn = math.degrees(math.atan2(float(start[0] * end[1] - start[1] * end[0]),
                                       float(start @ end)))
        assert abs(turn) == pytest.approx(abs(float(angles[i])), abs=0.5)
    assert 0.25 < float(flipped.double().mean()) < 0.75 and angles.min() < -7 < 7 < angles.max()
    still = train.augment(x, torch.Generator().manual_seed(11), 0.0)
    for i in range(b):
        want = torch.flip(x[i], [-1]) if flipped[i] else x[i]
        torch.testing.assert_close(still[i], want, atol=1e-9, rtol=0)


def test_split_arrays_hold_a_datasets_split_as_uint8_images_and_float_labels():
    from types import SimpleNamespace

    imgs = {"train": np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)[:, ::-1],   # a view
            "val": np.zeros((1, 3, 3), np.uint8)}
    labels = {"train": np.array([[1, 0], [0, 1]], np.uint8), "val": np.array([[1, 1]], np.uint8)}
    ds = SimpleNamespace(images=lambda s: imgs[s], split_labels=lambda s: labels[s])
    got = train.SplitArrays.from_dataset(ds, "train")
    assert got.images.dtype == torch.uint8 and got.images.is_contiguous()
    assert np.array_equal(got.images.numpy(), imgs["train"])
    assert got.labels.dtype == torch.float32 and got.labels.tolist() == [[1, 0], [0, 1]]
    assert train.SplitArrays.from_dataset(ds, "val").labels.tolist() == [[1, 1]]
