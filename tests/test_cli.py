"""The command line as a user types it: ``python -m prunecxr run|book|study`` and ``make
nbval-refs``, each checked by what it prints or writes, not only by its exit code.

The ``book`` and ``nbval-refs`` tests run on a copy of the checkout (library, notebooks, book
sources), so a planted failing chapter or regenerated references never touch the real tree.
Every subprocess runs with the checkout under test (or that copy) first on ``PYTHONPATH``
(``tests/checkout.py``), never another installed ``prunecxr``. They go through the command
line only, not the book's internals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from checkout import checkout_env
from prunecxr.config import load_config

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None,
        timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m prunecxr ARGS`` in ``cwd``, importing the checkout (or the copy of it that
    ``cwd`` is) whatever the virtual environment has installed (:mod:`checkout`)."""
    root = cwd if cwd is not None and (Path(cwd) / "prunecxr").is_dir() else REPO
    return subprocess.run([sys.executable, "-m", "prunecxr", *args], cwd=cwd or REPO,
                          env=checkout_env(root, env), capture_output=True, text=True,
                          timeout=timeout)


def checkout_copy(dest: Path, extra: tuple[str, ...] = ()) -> Path:
    """The parts of the checkout that the book and the references are built from."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "_generated")
    for name in ("prunecxr", "notebooks", "book"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("_config.yml", "_toc.yml", *extra):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)
    return dest


def test_subprocesses_import_the_checkout_under_test(tmp_path):
    """From a folder outside the checkout, with a decoy ``prunecxr`` already on PYTHONPATH
    (like another installed copy), a subprocess still imports this checkout's package."""
    decoy = tmp_path / "decoy" / "prunecxr"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    code = "import prunecxr, sys; print(prunecxr.__file__)"
    env = checkout_env(env={**os.environ, "PYTHONPATH": str(decoy.parent)})
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve() == (REPO / "prunecxr" / "__init__.py").resolve()
    copy = checkout_copy(tmp_path / "copy")  # a copy of the checkout imports the copy
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=checkout_env(copy),
                       capture_output=True, text=True, timeout=120)
    assert Path(r.stdout.strip()).resolve() == (copy / "prunecxr" / "__init__.py").resolve()
    r = cli("--help", cwd=tmp_path)
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stderr


# ------------------------------------------------------------------------------- study


def test_study_is_part_of_the_cli_and_a_broken_import_is_an_error(monkeypatch):
    from prunecxr import cli as main_cli
    from prunecxr.study import cli as study_cli

    args = main_cli.build_parser().parse_args(
        ["study", "analyze", "--key", "k", "--responses", "a.csv"])
    assert args.func is study_cli.cmd_analyze and args.out is None
    monkeypatch.setitem(sys.modules, "prunecxr.study.cli", None)   # the import now fails
    with pytest.raises(ImportError):
        main_cli.build_parser()


def test_study_analyze_through_the_main_cli_without_out(tmp_path):
    """``python -m prunecxr study analyze`` without ``--out`` prints the statistics and
    writes nothing."""
    from prunecxr.analysis.readers import reader_study_stats
    from prunecxr.study import load_responses
    from test_study import answer, fake_store, small_packet

    packet = small_packet(fake_store(), tmp_path / "packet")
    paths = answer(packet, tmp_path / "answers")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = sorted(p for p in tmp_path.rglob("*"))
    r = cli("study", "analyze", "--key", str(packet), "--responses", *map(str, paths), cwd=cwd)
    assert r.returncode == 0, r.stderr
    table = load_responses(packet, paths)
    stats = reader_study_stats(table)
    lines = r.stdout.splitlines()
    assert lines[0] == (f"{len(table)} answers from {table['reader'].nunique()} reader(s) "
                        f"({int(table['is_pie'].sum())} on PIEs)") == "24 answers from 3 reader(s) (12 on PIEs)"
    assert "\n".join(lines[1:]) == stats.to_string(index=False)
    assert "wrote" not in r.stdout
    assert sorted(p for p in tmp_path.rglob("*")) == before      # nothing written anywhere
    # a broken answer file: exit 2 and the file named, through the main CLI too
    bad = tmp_path / "answers" / "broken.csv"
    bad.write_text("reader,packet_id\n")
    r = cli("study", "analyze", "--key", str(packet), "--responses", str(bad), cwd=cwd)
    assert r.returncode == 2 and str(bad) in r.stderr and r.stderr.startswith("error: ")


@pytest.mark.slow
def test_study_truth_through_the_main_cli(smoke_results, smoke_store, tmp_path):
    from prunecxr.analysis.pies import pie_scores, select_pies
    from prunecxr.study import ground_truth_comparison

    r = cli("study", "truth", "--results-dir", str(smoke_results), "--fraction", "0.1",
            "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    written = pd.read_csv(tmp_path / "ground_truth_stats.csv")
    expected = ground_truth_comparison(smoke_store,
                                       select_pies(pie_scores(smoke_store), fraction=0.1))
    pd.testing.assert_frame_equal(written, expected.reset_index(drop=True), check_dtype=False)
    assert expected.to_string(index=False) in r.stdout


# --------------------------------------------------------------------------------- run


def _summary_rows(stdout: str) -> tuple[list[str], dict[float, list[float]]]:
    """The method names and the rows (sparsity -> medians) of run's mAP table."""
    lines = stdout.splitlines()
    start = lines.index("median mAP over seeds by sparsity:")
    methods = lines[start + 1].split()[1:]          # "method  l1  random"
    rows = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if not parts or not re.fullmatch(r"\d+(\.\d+)?", parts[0]):
            break
        rows[float(parts[0])] = [float(x) for x in parts[1:]]
    return methods, rows


@pytest.mark.slow
def test_run_prints_the_summary(smoke_results, smoke_store):
    """``python -m prunecxr run`` on cached results: recomputes nothing, prints where the
    results are, the population, and median mAP by sparsity (checked with scikit-learn)."""
    from sklearn.metrics import average_precision_score

    before = {p: p.stat().st_mtime_ns for p in smoke_results.rglob("*.npy")}
    r = cli("run", "--profile", "smoke", "--quiet")
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in smoke_results.rglob("*.npy")} == before
    out = r.stdout
    assert out.splitlines()[0] == f"results: {smoke_results}", (
        "run used another results folder than the session's smoke run (did the smoke profile "
        "or the library change while the tests ran?)")
    train = smoke_store.training_summary()
    assert (f"training: {len(smoke_store.seeds)} models, epochs {train['epochs'].min()}-"
            f"{train['epochs'].max()}") in out
    assert re.search(r"^wall time: data \d+ s, train \d+ s \([\d,]+ img/s\), "
                     r"sweep \d+ s \([\d,]+ img/s\)", out, re.M)
    assert re.search(r"^done in \d+ s$", out, re.M)
    methods, rows = _summary_rows(out)
    assert methods == list(smoke_store.grid_methods)
    ks = list(np.round(smoke_store.sparsities, 10))
    shown = [k for k in ks if round(k * 100) % 10 == 0 or k == max(ks)]
    assert sorted(rows) == pytest.approx(shown)
    y = smoke_store.labels
    has_pos = [c for c in range(y.shape[1]) if y[:, c].sum() > 0]
    for k, medians in rows.items():
        i = ks.index(min(ks, key=lambda x: abs(x - k)))
        for method, printed in zip(methods, medians):
            per_seed = [np.mean([average_precision_score(y[:, c], p[:, c]) for c in has_pos])
                        for p in (smoke_store.predictions(method, s)[i] for s in smoke_store.seeds)]
            assert printed == pytest.approx(np.median(per_seed), abs=5.1e-4), (method, k)
    # a method with its own grid: one line, "<unit> -> median mAP" per level
    line = re.search(r"^quant, median mAP by bits: (.*)$", out, re.M).group(1)
    points = [p.split(" -> ") for p in line.split(", ")]
    assert [float(b) for b, _ in points] == [32, 8, 4, 2]
    for i, (_, printed) in enumerate(points):
        per_seed = [np.mean([average_precision_score(y[:, c], p[:, c]) for c in has_pos])
                    for p in (smoke_store.predictions("quant", s)[i] for s in smoke_store.seeds)]
        assert float(printed) == pytest.approx(np.median(per_seed), abs=5.1e-4)


@pytest.mark.slow
def test_set_weights_path_starts_from_that_file(tmp_path):
    """``--set weights=PATH``: the models start from the file's weights (kept to 1e-6 by a
    learning rate of 1e-12), the path is part of the configuration, a missing file is a clear
    error."""
    import torchvision

    from prunecxr.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        ref = torchvision.models.resnet18().state_dict()
    path = tmp_path / "my_resnet18.pth"
    torch.save(ref, path)
    sets = ["population=1", "methods=l1", "max_epochs=1", "lr=1e-12", "sparsities=0,0.5",
            "data.n_images=300"]
    if hasattr(load_config("smoke"), "width"):
        sets.append("width=64")          # files of torchvision's resnet18 have width 64

    def run(weights):
        args = [a for s in [*sets, f"weights={weights}"] for a in ("--set", s)]
        return cli("run", "--profile", "smoke", "--quiet", "--results-dir",
                   str(tmp_path / "results"), *args)

    r = run(path)
    assert r.returncode == 0, r.stderr
    folder = Path(re.search(r"^results: (.+)$", r.stdout, re.M).group(1))
    assert json.loads((folder / "config.json").read_text())["weights"] == str(path)
    best = torch.load(folder / "models" / "seed_000" / "best.pt", weights_only=True)
    for name in ("conv1.weight", "layer1.0.conv1.weight", "layer3.1.conv2.weight",
                 "layer4.0.downsample.0.weight"):
        torch.testing.assert_close(best[f"backbone.{name}"], ref[name], atol=1e-6, rtol=0)
    scratch = build_model("resnet18", 20, "none", seed=0).state_dict()
    assert not torch.allclose(scratch["backbone.conv1.weight"], ref["conv1.weight"], atol=1e-3)
    assert best["backbone.fc.weight"].shape[0] == 20     # the head is new: one output per class

    missing = tmp_path / "nope.pth"
    r = run(missing)
    assert r.returncode == 2 and f"weights file {missing} does not exist" in r.stderr


# -------------------------------------------------------------------------------- book


def _plant_failure(notebook: Path, message: str) -> None:
    """Insert a failing cell right after the parameters cell (or first)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    at = next((i + 1 for i, c in enumerate(nb.cells)
               if "parameters" in c.metadata.get("tags", [])), 0)
    nb.cells.insert(at, nbformat.v4.new_code_cell(f"raise RuntimeError({message!r})"))
    nbformat.write(nb, notebook)


@pytest.mark.slow
def test_book_exits_1_naming_the_chapter_that_failed(smoke_results, tmp_path):
    copy = checkout_copy(tmp_path / "checkout")
    for notebook in (copy / "notebooks").glob("*.ipynb"):    # whichever chapter runs first
        _plant_failure(notebook, f"planted failure in {notebook.stem}")
    mathjax = tmp_path / "mathjax"                           # no network needed
    mathjax.mkdir()
    (mathjax / "tex-mml-svg.js").write_text("/* stand-in */\n")
    out = tmp_path / "_build"
    env = dict(os.environ, PRUNECXR_MATHJAX=str(mathjax))
    r = cli("book", "--profile", "smoke", "--out", str(out), cwd=copy, env=env)
    assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-3000:])
    failed = re.search(r"planted failure in (\w+)", r.stderr)
    assert failed, r.stderr[-3000:]
    assert re.search(rf"^error: .*{failed.group(1)}\.ipynb", r.stderr, re.M), r.stderr[-3000:]
    assert not (out / "html" / "index.html").exists()
    assert "book: " not in r.stdout                           # no success line


@pytest.mark.slow
def test_make_nbval_refs_regenerates_the_references(tmp_path):
    if shutil.which("make") is None:
        pytest.fail("make is not installed (README: a fresh machine needs Python 3.11 and make)")
    copy = checkout_copy(tmp_path / "checkout",
                         extra=("Makefile", "pyproject.toml", "tests/nbval_sanitize.cfg"))
    # the frozen smoke results the references are made from (no training)
    shutil.copytree(REPO / "tests" / "fixtures", copy / "tests" / "fixtures")
    names = sorted(p.stem for p in (copy / "notebooks").glob("*.ipynb"))
    chapter = "q1_overall" if "q1_overall" in names else names[0]
    venv = Path(sys.prefix)
    r = subprocess.run(
        ["make", "-C", str(copy), "nbval-refs", f"CHAPTERS={chapter}", f"VENV={venv}",
         f"PY={sys.executable}", "-o", str(venv / ".installed-stamp")],   # never reinstall
        capture_output=True, text=True, timeout=900, env=checkout_env(copy))
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    written = copy / "tests" / "notebooks" / f"{chapter}.ipynb"
    assert str(written) in r.stdout
    assert sorted(p.name for p in written.parent.iterdir()) == [written.name]

    import nbformat

    ref = nbformat.read(written, as_version=4)
    src = nbformat.read(copy / "notebooks" / f"{chapter}.ipynb", as_version=4)

    def code(nb):
        return [c.source for c in nb.cells if c.cell_type == "code"
                and "injected-parameters" not in c.metadata.get("tags", [])]

    assert code(ref) == code(src)                    # nbval re-executes exactly this code
    (injected,) = [c for c in ref.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert re.search(r"""profile = ['"]smoke['"]""", injected.source)
    executed = [c for c in ref.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in executed)
    outputs = [o for c in executed for o in c.outputs]
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert not any(m.startswith("image/") for o in outputs for m in o.get("data", {}))
    checked = [c for c in executed if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked and all(c.outputs for c in checked)
    papermill = ref.metadata.get("papermill", {})
    assert "input_path" not in papermill and "output_path" not in papermill
    # written into the copy, never into the real tree
    assert str(REPO / "tests" / "notebooks") not in r.stdout


def test_cluster_arguments_are_checked_before_anything_runs(tmp_path, capsys):
    """A malformed --slurm-opt and a status on a folder without results name what is wrong."""
    from prunecxr import cli

    code = cli.main(["run", "--profile", "smoke", "--executor", "slurm", "--slurm-opt", "account",
                     "--results-dir", str(tmp_path)])
    assert code == 2 and "--slurm-opt must be key=value" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing computed, nothing submitted
    code = cli.main(["status", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and f"--results-dir {tmp_path}: no results folder (with config.json)" in err


@pytest.mark.slow
def test_status_of_a_finished_local_run_says_done(smoke_results, capsys):
    """status reads seeds from the files: every seed of the smoke run is done."""
    from prunecxr import cli

    assert cli.main(["status", "--results-dir", str(smoke_results)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[2:] if line.split()[0].isdigit()]
    assert [r[1:] for r in rows] == [["done"]] * 3  # a local run: no empty SLURM columns
    assert "run locally: no SLURM jobs" in out


def test_status_of_a_fresh_local_folder_says_not_submitted(tmp_path, capsys):
    """A results folder with its data stage only: no seed is done, none was submitted."""
    from prunecxr import cli
    from prunecxr.pipeline import prepare_results

    folder, _ = prepare_results(load_config("smoke", overrides=["population=2"]), tmp_path)
    assert cli.main(["status", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out and out.count("not submitted") == 2
    assert not any(line.split()[1:2] == ["done"] for line in out.splitlines())


def test_slurm_executor_without_slurm_says_so(tmp_path, capsys, monkeypatch):
    """No sbatch on PATH: exit 2 with the reason; the results folder has no job record."""
    from prunecxr import cli

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = cli.main(["run", "--profile", "smoke", "--executor", "slurm", "--quiet",
                     "--results-dir", str(tmp_path), "--set", "population=1", "--set", "methods=l1"])
    assert code == 2 and "--executor slurm needs SLURM's sbatch on PATH" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/slurm/jobs.json"))
