"""The pipeline in this process on a micro ladder (two widths, two seeds, 200 phantom images,
one epoch; about 2 s): what a results folder holds, what the manifest records, that a second
call computes nothing, that a lost prediction file is recomputed alone and to the same bits,
and what the store reads back. Fast, so that ``make mutation`` can run it for every mutant of
:mod:`prunecxr.pipeline` and :mod:`prunecxr.store`; the smoke run end to end, resumes and
several workers are in the slow ``test_pipeline.py``."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from importlib import metadata
import platform
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from prunecxr import __version__, io, layout, pipeline
from prunecxr.compress import needs_train
from prunecxr.config import load_config
from prunecxr.data import get_dataset
from prunecxr.store import ResultsError, load
from prunecxr.sweep import sweep_shape

TORCH_THREADS = 1
MICRO = ["population=2", "methods=l1,random,channel_l1_bn,quant,l1_ft", "data.n_images=200",
         "max_epochs=1", "width=8", "image_size=16", "sparsities=0,0.5,0.9", "workers=1",
         "widths=8,16", "ladder_population=1", "channel_ratios=0.5", "quant_bits=8",
         "finetune_sparsities=0.5"]


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    config = load_config("smoke", overrides=MICRO)
    root = tmp_path_factory.mktemp("micro")
    folders = pipeline.ensure_ladder(config, results_root=root, progress=False)
    return config, root, folders


def rung(config, width):
    return next(r for r in pipeline.ladder(config) if r.width == width)


def test_each_rung_has_its_own_folder_named_by_key_and_dataset(micro):
    config, root, folders = micro
    assert sorted(folders) == [8, 16]
    dataset = get_dataset(config.dataset, **config.dataset_options())
    for width, folder in folders.items():
        r = rung(config, width)
        assert folder == root / layout.folder_name(r.profile, r.dataset, r.key, dataset.identity)
        assert folder == pipeline.results_dir_for(r, dataset, root)
        assert io.read_json(folder / layout.CONFIG) == json.loads(
            json.dumps({**r.result_fields(), "key": r.key}))
    assert folders[8] != folders[16]
    assert folders[8].name == f"smoke-phantom-{config.key}-{dataset.identity[:8]}"
    assert layout.partial_path(Path("p/seed_000.npy")) == Path("p/seed_000.partial.npz")
    assert rung(config, 16).methods == ("l1", "random") and rung(config, 16).population == 1


def test_dataset_files_describe_the_test_split(micro):
    config, _, folders = micro
    dataset = get_dataset(config.dataset, **config.dataset_options())
    test = dataset.indices("test")
    info = io.read_json(folders[8] / layout.DATASET)
    assert info["name"] == dataset.name and info["identity"] == dataset.identity
    assert info["classes"] == list(dataset.classes)
    assert info["n_images"] == {s: len(dataset.indices(s)) for s in ("train", "val", "test")}
    assert info["test_counts"] == dataset.counts("test").to_dict()
    assert info["train_counts"] == dataset.counts("train").to_dict()
    assert info["test_indices_in_dataset"] == test.tolist()
    assert info["test_images"] == layout.TEST_IMAGES
    np.testing.assert_array_equal(np.load(folders[8] / layout.TEST_LABELS), dataset.labels[test])
    np.testing.assert_array_equal(np.load(folders[8] / layout.TEST_IMAGES), dataset.images("test"))
    meta = pd.read_csv(folders[8] / layout.TEST_META)
    assert list(meta.columns) == list(dataset.split_meta("test").columns) and len(meta) == len(test)
    assert info["image_size"] == dataset.image_size
    assert info["val_counts"] == dataset.counts("val").to_dict()
    assert info["images_path"] == str(dataset.images_path)
    assert pipeline.results_dir_for(config, dataset) == (   # rung 8 is the population itself
        pipeline.default_results_root() / folders[8].name)


def test_every_seed_is_trained_and_swept(micro):
    config, _, folders = micro
    dataset = get_dataset(config.dataset, **config.dataset_options())
    n_test, C = len(dataset.indices("test")), len(dataset.classes)
    for width, folder in folders.items():
        r = rung(config, width)
        assert pipeline.missing_sweeps(r, folder, n_test, C) == []
        for seed in r.seeds:
            assert pipeline.seed_finished(r, folder, n_test, C, seed)
        for m in r.methods:
            for s in r.method_seeds(m):
                p = np.load(layout.prediction_path(folder, m, s))
                assert p.shape == sweep_shape(r, m, n_test, C)
                assert np.isfinite(p).all()
    # The layout layout.py documents (users and the frozen fixtures read it without the library).
    names = {str(p.relative_to(folders[8])) for p in folders[8].rglob("*") if p.is_file()}
    assert {"config.json", "dataset.json", "manifest.json", "test_labels.npy", "test_meta.csv",
            "models/seed_000/best.pt", "models/seed_000/done.json",
            "models/seed_000/history.csv", "predictions/l1/seed_000.npy",
            "predictions/l1/seed_000.json"} <= names
    assert not any(n.endswith(("last.pt", ".partial.npz")) for n in names)
    # A seed with one sweep missing is not finished; the others are.
    r = rung(config, 8)
    path = layout.prediction_path(folders[8], "quant", 1)
    kept = path.read_bytes()
    path.write_bytes(kept[:-8])
    try:
        assert pipeline.missing_sweeps(r, folders[8], n_test, C) == [("quant", 1)]
        assert pipeline.missing_sweeps(r, folders[8], n_test, C, seeds=[0]) == []
        assert not pipeline.seed_finished(r, folders[8], n_test, C, 1)
        assert pipeline.seed_finished(r, folders[8], n_test, C, 0)
    finally:
        path.write_bytes(kept)
    # An intact file whose sidecar records no shape, or another one (another grid), is missing.
    path = layout.prediction_path(folders[8], "l1", 0)
    no_shape = {k: v for k, v in io.read_json(layout.sidecar_path(path)).items() if k != "shape"}
    assert layout.verify_predictions(path, (3, n_test, C)) is not None
    kept = layout.sidecar_path(path).read_text()
    try:
        io.write_json(layout.sidecar_path(path), no_shape)
        assert layout.verify_predictions(path, (3, n_test, C)) is None
        assert layout.verify_predictions(path) is not None
    finally:
        layout.sidecar_path(path).write_text(kept)
    side = layout.sidecar_path(layout.prediction_path(folders[8], "l1", 0))
    info = side.read_text()
    try:
        io.write_json(side, {**json.loads(info), "shape": [1, 1, 1]})
        assert pipeline.missing_sweeps(r, folders[8], n_test, C) == [("l1", 0)]
    finally:
        side.write_text(info)


def test_manifest_records_stages_throughput_versions_and_config(micro):
    config, _, folders = micro
    dataset = get_dataset(config.dataset, **config.dataset_options())
    n_train = len(dataset.indices("train"))
    for width, folder in folders.items():
        r = rung(config, width)
        m = io.read_json(folder / layout.MANIFEST)
        assert set(m["stages"]) == {"data", "train", "sweep"}
        assert all(v > 0 for v in m["stages"].values())
        assert m["config"]["key"] == r.key and m["config"]["width"] == width
        assert m["config"]["device"] == r.device and m["config"]["threads"] == r.threads
        assert m["dataset"] == {"name": dataset.name, "identity": dataset.identity}
        assert m["versions"]["prunecxr"] == __version__
        assert set(pipeline.PACKAGES) <= set(m["versions"])
        assert m["machine"]["torch_threads"] >= 1 and m["machine"]["cpu_count"] >= 1
        assert set(m) == {"stages", "rates", "versions", "machine", "config", "dataset",
                          "updated"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", m["updated"])
        assert m["versions"]["python"] == platform.python_version()
        assert m["versions"]["torch"] == metadata.version("torch")
        assert set(m["machine"]) == {"platform", "processor", "cpu_count", "torch_threads", "cuda"}
        assert m["machine"]["platform"] == platform.platform()
        assert m["machine"]["processor"] == platform.processor()
        assert m["machine"]["cuda"] is None
        assert m["stages"]["data"] < 60
        epochs = sum(io.read_json(layout.seed_dir(folder, s) / layout.DONE)["epochs"]
                     for s in r.seeds)
        train = m["rates"]["train"]
        assert train["images"] == epochs * n_train
        assert train["seconds"] == pytest.approx(m["stages"]["train"])
        assert train["images_per_s"] == pytest.approx(train["images"] / train["seconds"])
        assert train["peak_gpu_bytes"] is None
        assert m["rates"]["sweep"]["images"] > 0


def test_update_manifest_adds_up_a_stage_run_again(micro, tmp_path):
    config, _, folders = micro
    dataset = get_dataset(config.dataset, **config.dataset_options())
    pipeline.update_manifest(tmp_path, config, dataset, "train", 2.0,
                             [{"images_this_run": 10, "peak_gpu_bytes": 5}])
    pipeline.update_manifest(tmp_path, config, dataset, "train", 3.0,
                             [{"images_this_run": 30, "peak_gpu_bytes": 7},
                              {"images_this_run": 0, "peak_gpu_bytes": None}])
    pipeline.update_manifest(tmp_path, config, dataset, "data", 1.5)
    m = io.read_json(tmp_path / layout.MANIFEST)
    assert m["stages"] == {"train": 5.0, "data": 1.5}
    assert m["rates"]["train"] == {"images": 40, "seconds": 5.0, "images_per_s": 8.0,
                                   "peak_gpu_bytes": 7}
    assert "data" not in m["rates"]


def test_second_call_computes_nothing(micro, monkeypatch):
    config, root, folders = micro
    before = {w: json.loads((f / layout.MANIFEST).read_text())["stages"] for w, f in folders.items()}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished results folder was computed again")

    monkeypatch.setattr(pipeline, "_train_job", refuse)
    monkeypatch.setattr(pipeline, "_sweep_job", refuse)
    assert pipeline.ensure_ladder(config, results_root=root, progress=False) == folders
    assert pipeline.ensure_results(rung(config, 16), results_root=root,
                                   progress=False) == folders[16]
    for w, f in folders.items():
        after = io.read_json(f / layout.MANIFEST)["stages"]
        assert after["train"] == before[w]["train"] and after["sweep"] == before[w]["sweep"]


def test_a_lost_prediction_is_recomputed_alone_to_the_same_bits(micro, monkeypatch):
    config, root, folders = micro
    path = layout.prediction_path(folders[16], "random", 0)
    kept = np.load(path)
    path.unlink()
    ran = []
    job = pipeline._sweep_job
    monkeypatch.setattr(pipeline, "_sweep_job",
                        lambda task, progress=False: ran.append(task.job) or job(task, progress))
    monkeypatch.setattr(pipeline, "_train_job", lambda *a, **k: pytest.fail("retrained"))
    pipeline.ensure_ladder(config, results_root=root, progress=False)
    assert ran == [("random", 0)]
    np.testing.assert_array_equal(np.load(path), kept)


def test_run_seed_gives_the_pooled_runs_bits(micro, tmp_path):
    config, _, folders = micro
    r = rung(config, 8)
    folder, _ = pipeline.prepare_results(r, tmp_path)
    assert folder.name == folders[8].name
    info = pipeline.run_seed(r, folder, 1)
    done = io.read_json(layout.seed_dir(folder, 1) / layout.DONE)
    assert info["seed"] == done["seed"] == 1 and info["best_epoch"] == done["best_epoch"]
    assert info["images_this_run"] == done["epochs"] * len(
        get_dataset(r.dataset, **r.dataset_options()).indices("train"))
    for m in r.methods:
        if 1 in r.method_seeds(m):
            np.testing.assert_array_equal(np.load(layout.prediction_path(folder, m, 1)),
                                          np.load(layout.prediction_path(folders[8], m, 1)))


def test_store_reads_back_what_the_pipeline_wrote(micro):
    config, _, folders = micro
    r = rung(config, 8)
    s = load(folders[8])
    m = io.read_json(folders[8] / layout.MANIFEST)
    assert s.stage_seconds() == pytest.approx(m["stages"])
    secs = s.sweep_seconds()
    assert sorted(zip(secs["method"], secs["seed"])) == sorted(
        (meth, seed) for meth in r.methods for seed in r.method_seeds(meth))
    assert (secs["seconds"] > 0).all() and (secs["seconds"] < 60).all()
    side = io.read_json(layout.sidecar_path(layout.prediction_path(folders[8], "quant", 1)))
    assert (side["method"], side["seed"], side["unit"]) == ("quant", 1, "bits")
    assert side["seconds"] == pytest.approx(sum(side["level_seconds"]))
    assert dict(zip(secs["method"], secs["levels"]))["l1"] == len(r.sparsities)
    facts = s.level_facts("l1")
    assert len(facts) == len(r.sparsities) * len(r.method_seeds("l1"))
    assert list(facts["nominal"][:3]) == list(r.sparsities) and set(facts["unit"]) == {"sparsity"}
    np.testing.assert_allclose(facts["sparsity"][:3], r.sparsities, atol=0.02)
    images = s.test_images()
    assert images.dtype == np.uint8 and images.shape[0] == len(s.labels)
    table = s.auroc_table(["l1"])
    pred = s.predictions("l1", 0)
    for c, name in enumerate(s.classes):
        y = s.labels[:, c]
        if 0 < y.sum() < len(y):
            got = table[(table.seed == 0) & (table["class"] == name) & (table.level == 0)]["auroc"]
            assert float(got.iloc[0]) == pytest.approx(roc_auc_score(y, pred[0, :, c]))


def test_store_tables_equal_independent_computations(micro):
    """AP, history, training summary, weights and sparsity as the store reads them, against
    scikit-learn, the files themselves and torch's own model."""
    from sklearn.metrics import average_precision_score

    from prunecxr.models import build_model
    from prunecxr.prune import prunable_parameters

    config, _, folders = micro
    r = rung(config, 8)
    s = load(folders[8])
    assert s.seeds == [0, 1] and s.methods == list(r.methods)
    assert s.method_seeds("quant") == r.method_seeds("quant")
    assert "Results(" in repr(s) and "2 test images" not in repr(s)
    ap = s.ap_table(["random"])
    assert set(ap.columns) >= {"method", "seed", "sparsity", "level", "class", "ap"}
    assert len(ap) == len(r.method_seeds("random")) * len(r.sparsities) * len(s.classes)
    for c, name in enumerate(s.classes):
        y = s.labels[:, c]
        row = ap[(ap.seed == 1) & (ap["class"] == name) & (ap.level == 0.5)]["ap"]
        if y.sum():
            want = average_precision_score(y, s.predictions("random", 1)[1, :, c])
            assert float(row.iloc[0]) == pytest.approx(want)
        else:
            assert np.isnan(row.iloc[0])
    np.testing.assert_allclose(s.levels("l1"), r.sparsities, atol=0.02)
    np.testing.assert_allclose(s.achieved_sparsity("l1", 1), s.levels("l1"), atol=1e-5)
    history = s.history()
    summary = s.training_summary()
    assert list(summary["seed"]) == [0, 1] and list(history["seed"].unique()) == [0, 1]
    assert len(history) == summary["epochs"].sum() and list(history.index) == list(range(len(history)))
    assert set(history.columns) >= {"seed", "epoch", "train_loss", "val_loss", "val_map"}
    model = build_model(r.arch, len(s.classes), "none", width=r.width)
    model.load_state_dict(s.state_dict(1))
    weights = s.prunable_weights(1)
    assert weights.size == sum(getattr(m, n).numel() for m, n in prunable_parameters(model))
    np.testing.assert_array_equal(
        weights[: model.backbone.conv1.weight.numel()],
        model.backbone.conv1.weight.detach().reshape(-1).numpy())
    one = s.subset(1, ["l1"])
    assert one.seeds == [0] and one.methods == ["l1"] and one.config["population"] == 1
    assert list(one.ap_table()["seed"].unique()) == [0] and s.seeds == [0, 1]
    with pytest.raises(ValueError, match="population must be in 1..2"):
        s.subset(3)
    with pytest.raises(KeyError, match="not in this store"):
        s.subset(1, ["quant_xx"])


def test_progress_names_each_seed_and_a_worker_reports_its_epochs(tmp_path, capsys):
    """With progress on, each trained seed gets a line and each stage a bar; a worker given an
    epoch queue (what several workers report through) puts every epoch's history row on it."""
    import queue

    config = load_config("smoke", overrides=MICRO + ["population=1", "methods=l1", "widths=8"])
    pipeline.ensure_results(config, results_root=tmp_path / "a", progress=True)
    shown = capsys.readouterr()
    err = shown.out + shown.err
    done = io.read_json(layout.seed_dir(pipeline.ensure_results(
        config, results_root=tmp_path / "a", progress=False), 0) / layout.DONE)
    stop = "stopped early" if done["stopped_early"] else "hit the epoch cap"
    assert f"width 8 seed 0: {done['epochs']} epochs, best epoch {done['best_epoch']}, {stop}" in err
    assert "training population: 100%" in err and "pruning sweep: 100%" in err
    assert err.index("training population") < err.index("pruning sweep")
    assert "1/1 [" in err and "model/s]" in err                      # one seed, one sweep
    assert "\rseed 0:" in err and "\rl1 seed 0:" in err             # the seed's own bars
    epochs = queue.Queue()
    folder, _ = pipeline.prepare_results(config, tmp_path / "b")
    pipeline._init_worker(config, "train", epochs=epochs)
    try:
        info = pipeline._train_job(pipeline.Task(config, folder, 0))
    finally:
        pipeline._WORKER.clear()
    assert "seed 0" not in capsys.readouterr().err   # a worker draws no bars of its own
    rows = [epochs.get_nowait() for _ in range(epochs.qsize())]
    assert [(r["seed"], r["epoch"]) for r in rows] == [(0, e) for e in range(info["epochs"])]


def test_progress_is_shown_unless_asked_not_to(tmp_path, capsys):
    """Bars by default from each entry point; none with progress=False; run_seed's own bars."""
    tiny = MICRO + ["population=1", "methods=l1", "widths=8"]
    calls = {"results": lambda c, r: pipeline.ensure_results(c, r),
             "ladder": lambda c, r: pipeline.ensure_ladder(c, r),
             "populations": lambda c, r: pipeline.ensure_populations([c], r)}
    for i, (name, call) in enumerate(calls.items()):
        call(load_config("smoke", overrides=tiny + [f"lr={0.001 + i / 1e4}"]), tmp_path / name)
        shown = capsys.readouterr()
        assert "training population" in shown.out + shown.err, name
    quiet_calls = {"results": pipeline.ensure_results, "ladder": pipeline.ensure_ladder,
                   "populations": lambda c, r, progress: pipeline.ensure_populations([c], r, progress)}
    for i, (name, call) in enumerate(quiet_calls.items()):
        quiet = load_config("smoke", overrides=tiny + [f"lr={0.0021 + i / 1e4}"])
        call(quiet, tmp_path / f"quiet_{name}", progress=False)
        shown = capsys.readouterr()
        assert "training population" not in shown.out + shown.err and "seed 0" not in shown.err
    config = load_config("smoke", overrides=tiny)
    folder, _ = pipeline.prepare_results(config, tmp_path / "seed")
    pipeline.run_seed(config, folder, 0, progress=True)
    shown = capsys.readouterr()
    assert "\rseed 0:" in shown.err and "\rl1 seed 0:" in shown.err
    folder, _ = pipeline.prepare_results(config, tmp_path / "seed_quiet")
    pipeline.run_seed(config, folder, 0)      # a cluster task's default: no bars in its log
    assert "seed 0" not in capsys.readouterr().err


def test_each_population_gets_its_share_of_a_stages_wall_time(monkeypatch, tmp_path):
    """Two populations in one stage: the wall time is split by their jobs' own seconds, and
    each manifest counts only its jobs' images."""
    config = load_config("smoke", overrides=MICRO)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    a, b = tmp_path / "a", tmp_path / "b"
    tasks = [pipeline.Task(config, a, 0), pipeline.Task(config, b, 0), pipeline.Task(config, b, 1)]
    infos = [{"task": tasks[0], "seconds": 1.0, "images_this_run": 10},
             {"task": tasks[1], "seconds": 2.0, "images_this_run": 20},
             {"task": tasks[2], "seconds": 1.0, "images_this_run": 40}]
    clock = iter([100.0, 108.0])
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(pipeline, "_run_stage", lambda stage, t, progress: infos)
    c = tmp_path / "c"   # a population with no job in this stage: its manifest is not written
    pipeline._run_tasks("train", tasks, [(a, dataset), (b, dataset), (c, dataset)], False)
    ma, mb = (io.read_json(f / layout.MANIFEST) for f in (a, b))
    assert ma["stages"]["train"] == pytest.approx(2.0) and mb["stages"]["train"] == pytest.approx(6.0)
    assert ma["rates"]["train"]["images"] == 10 and mb["rates"]["train"]["images"] == 60
    assert not (c / layout.MANIFEST).exists()
    pipeline._run_tasks("train", [], [(c, dataset)], False)   # nothing to run: nothing written
    assert not (c / layout.MANIFEST).exists()


def test_jobs_run_widest_first_and_fine_tuning_first(monkeypatch, tmp_path):
    """The pool's order: training by width, widest first; sweeps that fine-tune first, then by
    width. (Long jobs first keep the pool's last minutes busy.)"""
    config = load_config("smoke", overrides=MICRO)
    order = {}

    def record(stage, tasks, prepared, progress):
        order[stage] = [(t.config.width, t.job) for t in tasks]

    monkeypatch.setattr(pipeline, "_run_tasks", record)
    pipeline.ensure_ladder(config, results_root=tmp_path, progress=False)
    train = order["train"]
    assert [w for w, _ in train] == sorted((w for w, _ in train), reverse=True)
    assert train[0][0] == 16 and train[-1][0] == 8
    sweep = order["sweep"]
    fine = [i for i, (_, job) in enumerate(sweep) if needs_train(job[0])]
    assert fine == list(range(len(fine))) and fine
    rest = [w for w, job in sweep if not needs_train(job[0])]
    assert rest == sorted(rest, reverse=True) and rest[0] == 16


def test_a_worker_sets_its_threads_and_loads_what_its_stage_needs():
    import torch

    config = load_config("smoke", overrides=MICRO)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        pipeline._init_worker(config, "sweep")               # no thread count: left alone
        assert torch.get_num_threads() == 2
        assert "train" not in pipeline._WORKER and pipeline._WORKER["epochs"] is None
        pipeline._WORKER.clear()
        pipeline._init_worker(config, "sweep", threads=1, fine_tunes=True)
        assert torch.get_num_threads() == 1 and "train" in pipeline._WORKER
    finally:
        pipeline._WORKER.clear()
        torch.set_num_threads(before)


def test_store_columns_control_seeds_and_stage_order(micro):
    config, _, folders = micro
    s = load(folders[8])
    facts = s.level_facts("random")
    assert set(facts["method"]) == {"random"} and sorted(set(facts["seed"])) == [0, 1]
    assert (facts["seconds"] > 0).all()
    assert set(s.auroc_table(["l1"])["method"]) == {"l1"}
    assert s.achieved_sparsity("l1", 0).dtype == np.float64
    # A control population of one: the controls' tables hold seed 0 only.
    s.config = {**s.config, "control_population": 1}
    assert s.method_seeds("random") == [0] and s.method_seeds("l1") == [0, 1]
    assert sorted(set(s.level_facts("random")["seed"])) == [0]
    secs = s.sweep_seconds()
    assert sorted(secs[secs.method == "random"]["seed"]) == [0]
    assert sorted(secs[secs.method == "l1"]["seed"]) == [0, 1]
    # Stages in pipeline order whatever the manifest's order; others after them.
    manifest = io.read_json(folders[8] / layout.MANIFEST)
    try:
        io.write_json(folders[8] / layout.MANIFEST, {
            **manifest, "stages": {"slurm": 4.0, "sweep": 3.0, "train": 2.0, "data": 1.0}})
        assert list(s.stage_seconds().items()) == [("data", 1.0), ("train", 2.0), ("sweep", 3.0),
                                                   ("slurm", 4.0)]
        (folders[8] / layout.MANIFEST).unlink()
        assert s.stage_seconds() == {}
    finally:
        io.write_json(folders[8] / layout.MANIFEST, manifest)


def test_test_images_copied_or_referenced(micro, tmp_path, monkeypatch):
    """Small test sets are copied into the folder (read as a memory map); larger ones are read
    from the dataset's image cache by index, and a vanished cache is named."""
    config, _, folders = micro
    copied = load(folders[8]).test_images()
    assert isinstance(copied, np.memmap)
    monkeypatch.setattr(pipeline, "COPY_IMAGES_LIMIT", 0)
    folder, dataset = pipeline.prepare_results(rung(config, 8), tmp_path)
    info = io.read_json(folder / layout.DATASET)
    assert info["test_images"] is None and not (folder / layout.TEST_IMAGES).exists()
    referenced = load(folder).test_images()
    assert not isinstance(referenced, np.memmap)
    np.testing.assert_array_equal(referenced, copied)
    io.write_json(folder / layout.DATASET, {**info, "images_path": str(tmp_path / "gone.npy")})
    with pytest.raises(FileNotFoundError, match="image cache .*gone.npy is gone; rerun"):
        load(folder).test_images()


def test_environment_names_a_missing_package_and_the_copy_limit_is_inclusive(micro, tmp_path,
                                                                           monkeypatch):
    config, _, folders = micro
    monkeypatch.setattr(pipeline, "PACKAGES", ("numpy", "no-such-package-xyz"))
    versions = pipeline.environment()["versions"]
    assert versions["no-such-package-xyz"] is None and versions["numpy"] == np.__version__
    size = np.load(folders[8] / layout.TEST_IMAGES).nbytes
    monkeypatch.setattr(pipeline, "COPY_IMAGES_LIMIT", size)
    folder, _ = pipeline.prepare_results(rung(config, 8), tmp_path)
    assert io.read_json(folder / layout.DATASET)["test_images"] == layout.TEST_IMAGES


def test_report_says_how_a_seed_stopped():
    class Bar:
        disable, lines, n = False, [], 0

        def write(self, text):
            self.lines.append(text)

        def update(self, k):
            self.n += k

    config = load_config("smoke", overrides=MICRO)
    bar, infos = Bar(), []
    task = pipeline.Task(config, None, 3)
    info = {"epochs": 4, "best_epoch": 2, "stopped_early": True, "seconds": 7.4}
    pipeline._report("train", task, info, bar, infos)
    pipeline._report("train", task, {**info, "stopped_early": False}, bar, infos)
    assert bar.lines == ["width 8 seed 3: 4 epochs, best epoch 2, stopped early, 7 s",
                         "width 8 seed 3: 4 epochs, best epoch 2, hit the epoch cap, 7 s"]
    assert bar.n == 2 and [i["task"] for i in infos] == [task, task]


def test_threads_and_finished_seeds(micro, tmp_path, monkeypatch):
    """A config's thread count is applied by each entry point; run_seed on a finished seed
    sweeps nothing; a control population limits which sweeps are missing."""
    config, _, folders = micro
    r = rung(config, 8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        pipeline.prepare_results(dataclasses.replace(r, threads=1), tmp_path / "a")
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        monkeypatch.setattr(pipeline, "sweep_seed", lambda *a, **k: pytest.fail("swept again"))
        pipeline.run_seed(dataclasses.replace(r, threads=1), folders[8], 0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    n_test, C = len(dataset.indices("test")), len(dataset.classes)
    controls = dataclasses.replace(r, control_population=1)
    missing = pipeline.missing_sweeps(controls, tmp_path / "empty", n_test, C)
    assert ("random", 0) in missing and ("random", 1) not in missing and ("l1", 1) in missing


def test_an_interrupted_sweep_resumes_from_its_partial_file(micro, tmp_path, monkeypatch, capsys):
    """A sweep killed after two of three levels resumes at the third, to the uninterrupted
    bits; a partial file of another grid, or an unreadable one, is swept again from the start."""
    import shutil

    from prunecxr import sweep

    config, _, folders = micro
    r = rung(config, 8)
    folder = tmp_path / "f"
    shutil.copytree(folders[8], folder)
    path = layout.prediction_path(folder, "l1", 0)
    want = np.load(path)
    want_info = io.read_json(layout.sidecar_path(path))
    dataset = get_dataset(config.dataset, **config.dataset_options())
    test = torch.from_numpy(np.ascontiguousarray(dataset.images("test")))
    C, predict, calls, kill = len(dataset.classes), sweep.predict, [], {"at": None}

    def counted(*a, **k):
        calls.append(1)
        if len(calls) == kill["at"]:
            raise KeyboardInterrupt
        return predict(*a, **k)

    monkeypatch.setattr(sweep, "predict", counted)

    def sweep_l1(at=None, fresh=False):
        kill["at"], calls[:] = at, []
        if fresh:
            path.unlink(missing_ok=True)
        return sweep.sweep_seed(r, C, test, "l1", 0, folder, torch.device("cpu"), False)

    with pytest.raises(KeyboardInterrupt):
        sweep_l1(at=3, fresh=True)
    partial = layout.partial_path(path)
    with np.load(partial) as z:
        assert int(z["done"]) == 2 and z["probs"].shape == want.shape
        saved = z["seconds"][:2].tolist()
    info = sweep_l1()
    assert len(calls) == 1                                   # the third level only
    np.testing.assert_array_equal(np.load(path), want)
    assert info["images_this_run"] == len(test) and not partial.exists()
    assert info["levels"] == want_info["levels"] and info["level_seconds"][:2] == saved
    assert info["achieved"] == want_info["achieved"] and np.load(path).dtype == np.float32
    assert sweep_l1()["sha256"] == info["sha256"] and calls == []   # finished: nothing evaluated
    # A partial file of another grid is ignored; an unreadable one is named and ignored.
    io.save_npz(partial, probs=want, levels=np.array([0.0, 0.4, 0.9]), done=np.int64(2),
                seconds=np.zeros(3), facts=np.asarray(json.dumps(want_info["achieved"][:2])))
    sweep_l1(fresh=True)
    assert len(calls) == 3
    partial.write_bytes(b"not a zip file")
    sweep_l1(fresh=True)
    assert len(calls) == 3 and "unreadable" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(path), want)


def test_store_attributes_equal_the_files(micro, tmp_path):
    """Every attribute the chapters read, against dataset.json and config.json; the fallbacks
    for folders whose files lack a key; subset's edges; tables indexed from 0."""
    import shutil

    from prunecxr.config import GRID_METHODS

    config, _, folders = micro
    r = rung(config, 8)
    s = load(folders[8])
    ds = io.read_json(folders[8] / layout.DATASET)
    assert s.train_counts.tolist() == [ds["train_counts"][c] for c in s.classes]
    assert s.test_counts.tolist() == [ds["test_counts"][c] for c in s.classes]
    assert s.image_size == r.image_size == 16
    assert s.sparsities.dtype == float and s.sparsities.tolist() == list(r.sparsities)
    assert s.levels("l1").dtype == float and s.levels("random").dtype == float
    assert s.grid_methods == [m for m in r.methods if m in GRID_METHODS] != r.methods
    for table in (s.ap_table(), s.ap_table(["random"]), s.auroc_table()):
        assert list(table.index) == list(range(len(table)))
        assert list(table.columns)[:5] == ["method", "seed", "sparsity", "level", "class"]
        assert len(table.columns) == 6 and table["sparsity"].dtype == float
    with pytest.raises(KeyError) as caught:
        s.ap_table(["l1", "nope"])
    assert caught.value.args[0] == f"methods ['nope'] not in this store; available: {s.methods}"
    whole = s.subset(2)
    assert whole.seeds == [0, 1] and whole.methods == s.methods == whole.config["methods"]
    assert whole.grid_methods == s.grid_methods
    one = s.subset(1, ["quant", "l1"])
    assert one.config["methods"] == ["quant", "l1"] and one.grid_methods == ["l1"]
    s.config = {**s.config, "control_population": 1}
    with pytest.raises(KeyError) as caught:
        s.predictions("l1", 5)
    assert caught.value.args[0].endswith("available: [0, 1]")
    # With controls on fewer seeds, the main method still reads (and checks) every seed.
    folder = tmp_path / "controls"
    shutil.copytree(folders[8], folder)
    cfg = io.read_json(folder / layout.CONFIG)
    io.write_json(folder / layout.CONFIG, {**cfg, "control_population": 1})
    controls = load(folder)
    assert sorted(controls.level_facts("l1")["seed"].unique()) == [0, 1]
    assert sorted(controls.level_facts("random")["seed"].unique()) == [0]
    assert sorted(controls.ap_table()[lambda t: t.method == "l1"]["seed"].unique()) == [0, 1]
    side = layout.sidecar_path(layout.prediction_path(folder, "l1", 1))
    info = io.read_json(side)
    io.write_json(side, {**info, "levels": [v + 0.01 for v in info["levels"]]})
    os.utime(side, (side.stat().st_atime, side.stat().st_mtime + 10))  # past the read cache
    with pytest.raises(ResultsError, match="l1: seed 1 has levels"):
        load(folder).levels("l1")
    # A lost prediction file, and a folder that is not a results folder, are named.
    layout.prediction_path(folder, "random", 0).unlink()
    with pytest.raises(ResultsError, match="missing, truncated or does not match"):
        load(folder).predictions("random", 0)
    with pytest.raises(ResultsError) as caught:
        load(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: missing dataset.json; not a finished results "
                                 "folder. Run `python -m prunecxr run` (or "
                                 "prunecxr.pipeline.ensure_results) first.")
    # Older folders: no control_population (all seeds), no image_size; another first seed.
    folder = tmp_path / "old"
    shutil.copytree(folders[8], folder)
    io.write_json(folder / layout.CONFIG, {k: v for k, v in cfg.items()
                                           if k != "control_population"} | {"control_population": 0})
    assert load(folder).method_seeds("random") == [0, 1]
    io.write_json(folder / layout.CONFIG, {k: v for k, v in cfg.items()
                                           if k != "control_population"})
    assert load(folder).method_seeds("random") == [0, 1]
    io.write_json(folder / layout.DATASET, {**ds, "image_size": 32})    # the data's own size
    assert load(folder).image_size == 32
    io.write_json(folder / layout.DATASET, {k: v for k, v in ds.items() if k != "image_size"})
    assert load(folder).image_size == cfg["image_size"] == 16
    io.write_json(folder / layout.CONFIG, {k: v for k, v in cfg.items()
                                           if k != "image_size"} | {"first_seed": 3})
    old = load(folder)
    assert old.image_size == 0 and old.seeds == [3, 4]
    # An intact file whose sidecar records another shape than the store expects is refused.
    io.write_json(folder / layout.CONFIG, cfg)
    side = layout.sidecar_path(layout.prediction_path(folder, "l1", 0))
    io.write_json(side, {**io.read_json(side), "shape": [3, 1, 1]})
    os.utime(side, (side.stat().st_atime, side.stat().st_mtime + 10))  # past the read cache
    with pytest.raises(ResultsError, match="missing, truncated or does not match"):
        load(folder).predictions("l1", 0)


def test_store_checks_levels_reads_meta_verbatim_and_names_what_is_missing(micro, tmp_path):
    import shutil

    config, _, folders = micro
    folder = tmp_path / "f"
    shutil.copytree(folders[8], folder)
    s = load(folder)
    assert s.dataset == "phantom" and list(s.train_counts.index) == s.classes
    assert list(s.test_counts.index) == s.classes
    ap = s.ap_table(["l1", "quant"])
    assert list(ap.index) == list(range(len(ap)))
    assert ap[ap.method == "quant"]["sparsity"].isna().all()          # not on the shared grid
    assert set(ap[ap.method == "l1"]["sparsity"]) == set(s.levels("l1"))
    with pytest.raises(KeyError) as caught:
        s.predictions("nope", 0)
    assert caught.value.args[0] == f"method 'nope' not in this store; available: {s.methods}"
    s.config = {**s.config, "control_population": 1}
    with pytest.raises(KeyError) as caught:
        s.predictions("random", 1)
    assert caught.value.args[0] == ("seed 1 not swept with 'random' in this store; available: "
                                    "[0]")
    # Seeds whose levels differ are refused, naming both.
    side = layout.sidecar_path(layout.prediction_path(folder, "l1", 1))
    info = io.read_json(side)
    io.write_json(side, {**info, "levels": [info["levels"][0], info["levels"][1] + 0.01,
                                            info["levels"][2]]})
    os.utime(side, (side.stat().st_atime, side.stat().st_mtime + 10))  # past the read cache
    with pytest.raises(ResultsError, match=r"l1: seed 1 has levels .*, seed 0 .*; rerun"):
        load(folder).levels("l1")
    side.unlink()
    with pytest.raises(ResultsError) as caught:
        load(folder).levels("l1")
    assert str(caught.value) == (f"{side} is missing; rerun the pipeline (python -m prunecxr run "
                                 "with the same settings) to compute it")
    # The test metadata is read as written: "NA" is a value, an empty cell is missing.
    meta = pd.read_csv(folder / layout.TEST_META, dtype=str)
    meta.iloc[0, 0], meta.iloc[1, 0] = "NA", ""
    meta.to_csv(folder / layout.TEST_META, index=False)
    read = load(folder).meta
    assert read.iloc[0, 0] == "NA" and pd.isna(read.iloc[1, 0])
