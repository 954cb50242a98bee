"""A newcomer's bad inputs, typed at the command line: each is one line naming the option, file,
row, column or field with the fix, exit code 2, no traceback (unless ``--debug``), and nothing
left half-written. Also ``--version``, ``--help``, ``run --dry-run``, ``--quiet``, the dataset
registry, the CSV uncertain-label policy and progress bars in a notebook.

Every command runs in a subprocess from a scratch folder with this checkout first on
``PYTHONPATH`` (:mod:`checkout`) and ``PRUNECXR_HOME`` in the test's own folder.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from checkout import checkout_env
from prunecxr.data import DataError, get_dataset
from prunecxr.data.registry import REGISTRY, check_data_dir, dataset_options, rerun_targets
from prunecxr.data.tables import load_csv

REPO = Path(__file__).resolve().parents[1]


def user(*args: str, home: Path, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m prunecxr ARGS`` as a user types it, with ``PRUNECXR_HOME=home``."""
    environment = checkout_env(REPO, PRUNECXR_HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "prunecxr", *args], cwd=cwd or home.parent,
                          env=environment, capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2, stderr is one ``error:`` line holding every needle, no traceback."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def tiny_csv(folder: Path, header: str, rows: list[str], n_images: int = 0) -> Path:
    """``labels.csv`` with ``header`` and ``rows``; ``img{i}.png`` for i < n_images."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        Image.fromarray(np.full((12, 12), 20 * i, dtype=np.uint8)).save(folder / f"img{i}.png")
    path = folder / "labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


# ----------------------------------------------------------------- missing or wrong --data-dir


@pytest.mark.parametrize("dataset, kind", [("csv", "the CSV file"), ("nih-cxr-lt", "folder"),
                                           ("mimic-cxr-lt", "folder")])
def test_missing_data_dir_is_one_line(home, dataset, kind):
    r = user("run", "--profile", "smoke", "--dataset", dataset, home=home)
    one_line_error(r, "--data-dir is required", repr(dataset), kind,
                   f"--data-dir {REGISTRY[dataset].example}")
    assert files_under(home) == []


def test_paper_profile_names_its_dataset_when_data_dir_is_missing(home):
    r = user("run", "--profile", "paper", home=home)
    one_line_error(r, "--data-dir is required", "'nih-cxr-lt'", "paper profile")


def test_a_folder_where_the_csv_belongs(home, tmp_path):
    folder = tmp_path / "mydata"
    tiny_csv(folder, "path,A", ["img0.png,1"])
    r = user("run", "--profile", "smoke", "--dataset", "csv", "--data-dir", str(folder), home=home)
    one_line_error(r, f"--data-dir {folder} is a folder", "the CSV file itself",
                   f"--data-dir {folder / 'labels.csv'}", "CSV files there: labels.csv")
    assert "did you mean" not in r.stderr
    with pytest.raises(DataError, match="is a folder; pass the label CSV file itself"):
        load_csv(folder)  # the loader says so too, called directly


def test_a_file_where_a_folder_belongs(home, tmp_path):
    path = tiny_csv(tmp_path / "nih", "id,A", ["x.png,1"])
    r = user("run", "--profile", "smoke", "--dataset", "nih-cxr-lt", "--data-dir", str(path),
             home=home)
    one_line_error(r, "is a file, but dataset 'nih-cxr-lt' takes the folder",
                   f"--data-dir {path.parent}")


def test_data_dir_with_the_phantom_is_an_error_not_ignored(home, tmp_path):
    r = user("run", "--profile", "smoke", "--data-dir", str(tmp_path), home=home)
    one_line_error(r, f"--data-dir {tmp_path} is given", "'phantom'", "reads no files",
                   "drop --data-dir", "--dataset (nih-cxr-lt, mimic-cxr-lt, csv)")
    assert files_under(home) == []


# ----------------------------------------------------------------------- results folder


def test_results_dir_that_is_a_file(home, tmp_path):
    plain = tmp_path / "results.txt"
    plain.write_text("not a folder")
    r = user("run", "--profile", "smoke", "--results-dir", str(plain), home=home)
    one_line_error(r, f"--results-dir {plain}: not a folder")
    r = user("run", "--profile", "smoke", "--results-dir", str(plain / "sub"), home=home)
    one_line_error(r, f"({plain} is a file)")
    assert plain.read_text() == "not a folder"


def test_prunecxr_home_that_is_a_file(tmp_path):
    plain = tmp_path / "home"
    plain.write_text("")
    r = user("run", "--profile", "smoke", home=plain)
    one_line_error(r, f"PRUNECXR_HOME={plain}: not a folder", "set PRUNECXR_HOME to a folder")


def test_results_folder_that_cannot_be_written(home, tmp_path):
    if os.geteuid() == 0:  # root writes through permissions; sysfs refuses everyone
        target = Path("/sys/prunecxr-results")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target = locked / "results"
    r = user("run", "--profile", "smoke", "--results-dir", str(target), home=home)
    one_line_error(r, f"--results-dir {target}: cannot write there",
                   "pass a folder you can write to")
    assert not target.exists()


# -------------------------------------------------------------------- options and overrides


@pytest.mark.parametrize("override, needles", [
    ("data.n_imgs=100", ("unknown option data.n_imgs for dataset 'phantom'",
                         "did you mean 'data.n_images'", "data.label_noise")),
    ("sparsities=abc", ("--set sparsities=abc", "a comma-separated list of numbers",
                        "e.g. sparsities=0,0.05,0.1")),
    ("quant_bits=8,x", ("a comma-separated list of integers",)),
    ("population=three", ("--set population=three: expected an integer",)),
    ("lr=fast", ("expected a number",)),
    ("augment=maybe", ("expected true or false",)),
    ("populaton=3", ("unknown parameter 'populaton'", "did you mean 'population'")),
    ("data.n_images=abc", ("phantom: n_images must be an integer", "got 'abc'")),
    ("data.label_noise=2", ("phantom: label_noise must be a fraction",)),
])
def test_bad_overrides_are_one_line(home, override, needles):
    r = user("run", "--profile", "smoke", "--set", override, home=home)
    one_line_error(r, *needles)
    assert files_under(home) == []


def test_debug_shows_the_traceback(home):
    r = user("run", "--profile", "smoke", "--set", "sparsities=abc", "--debug", home=home)
    assert r.returncode != 0 and "Traceback" in r.stderr and "UsageError" in r.stderr


# ---------------------------------------------------------------------------- CSV tables


def test_csv_image_column_hint_names_the_option(home, tmp_path):
    path = tiny_csv(tmp_path / "d", "file_name,A,B", ["img0.png,1,0"])
    r = user("run", "--profile", "smoke", "--dataset", "csv", "--data-dir", str(path), home=home)
    one_line_error(r, f"{path}: missing column(s) 'path'", "--set data.image_col=<column>")
    assert files_under(home) == []


def test_csv_class_columns_hint_names_the_cli_option(home, tmp_path):
    path = tiny_csv(tmp_path / "d", "path,A,age", ["img0.png,1,63"])
    r = user("run", "--profile", "smoke", "--dataset", "csv", "--data-dir", str(path), home=home)
    one_line_error(r, "labels.csv, line 2: column 'age' has value '63'",
                   "--set data.class_cols=A,B,C")
    assert "class_cols=[" not in r.stderr
    assert files_under(home) == []


def test_csv_uncertain_label_says_how_to_map_it(home, tmp_path):
    path = tiny_csv(tmp_path / "d", "path,A", ["img0.png,1", "img1.png,-1"])
    r = user("run", "--profile", "smoke", "--dataset", "csv", "--data-dir", str(path), home=home)
    one_line_error(r, "labels.csv, line 3: column 'A' has value '-1'",
                   "--set data.uncertain=zero", "--set data.uncertain=one")
    r = user("run", "--profile", "smoke", "--dataset", "csv", "--data-dir", str(path),
             "--set", "data.uncertain=ignore", home=home)
    one_line_error(r, "data.uncertain must be one of error, zero, one", "not supported")
    assert files_under(home) == []


def _uncertain_table(folder: Path) -> Path:
    rows = [f"img{i},p{i},{a},{b}" for i, (a, b) in
            enumerate([(1, 0), (-1, 1), (0, -1.0), (1, 1), (0, 0), (-1, 0), (1, 0), (0, 1),
                       (1, 1), (0, 0)])]
    rows = [r.replace(f"img{i},", f"img{i}.png,", 1) for i, r in enumerate(rows)]
    return tiny_csv(folder, "path,patient,A,B", rows, n_images=10)


def test_uncertain_policy_maps_minus_one_to_zero_or_one(tmp_path):
    path = _uncertain_table(tmp_path / "d")
    with pytest.raises(DataError, match="line 3: column 'A' has value '-1'.*data.uncertain"):
        load_csv(path, image_size=8, cache_dir=tmp_path / "cache")
    zero = load_csv(path, image_size=8, cache_dir=tmp_path / "cache", uncertain="zero")
    one = load_csv(path, image_size=8, cache_dir=tmp_path / "cache", uncertain="one")
    order = [int(Path(p).stem[3:]) for p in zero.meta["path"]]
    a_zero = dict(zip(order, zero.labels[:, 0]))
    a_one = dict(zip(order, one.labels[:, 0]))
    b_zero = dict(zip(order, zero.labels[:, 1]))
    b_one = dict(zip(order, one.labels[:, 1]))
    assert (a_zero[1], a_one[1], a_zero[5], a_one[5]) == (0, 1, 0, 1)   # the -1 of column A
    assert (b_zero[2], b_one[2]) == (0, 1)                              # -1.0 in column B
    assert a_zero[0] == a_one[0] == 1 and a_zero[4] == a_one[4] == 0     # certain ones unchanged
    assert zero.identity != one.identity  # a changed policy never reuses the other's cache
    with pytest.raises(DataError, match="must be one of error, zero, one"):
        load_csv(path, uncertain="ignore")


def test_class_cols_as_the_cli_passes_them(tmp_path):
    path = _uncertain_table(tmp_path / "d")
    ds = load_csv(path, image_size=8, cache_dir=tmp_path / "cache", class_cols="B",
                  uncertain="zero")
    assert ds.classes == ["B"]


# ----------------------------------------------------------------- version, help, dry run


def test_version_and_help(home):
    from prunecxr import __version__

    r = user("--version", home=home)
    assert r.returncode == 0 and r.stdout.strip() == f"prunecxr {__version__}"
    r = user("--help", home=home)
    assert r.returncode == 0 and "``" not in r.stdout and "--dry-run" in r.stdout
    for name, entry in REGISTRY.items():
        assert f"  {name} " in r.stdout
    r = user("run", "--help", home=home)
    assert "--dry-run" in r.stdout and "--quiet" in r.stdout and "--debug" in r.stdout


def test_help_imports_no_torch():
    """``--help`` and ``--version`` stay fast: building the parser imports no torch (nor
    torchvision, the loaders or the pipeline)."""
    code = ("import sys; from prunecxr.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'torchvision', 'prunecxr.data.tables', "
            "'prunecxr.pipeline') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], env=checkout_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_dry_run_prints_the_plan_and_writes_nothing(home):
    r = user("run", "--profile", "smoke", "--set", "population=2", "--set", "methods=l1,quant",
             "--dry-run", home=home)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "configuration (profile smoke, key " in out and "  population" in out
    assert f"results folder: {home / 'results'}/smoke-phantom-" in out
    assert "models: 2 trained" in out
    assert "l1: 2 seed(s) x 20 levels" in out and "quant: 2 seed(s) x 4 levels" in out
    assert "images: train 420, val 60, test 120" in out
    assert "estimated time on cpu: at most" in out and "img/s" in out
    assert files_under(home) == []


def test_dry_run_estimate_uses_a_previous_manifest(tmp_path):
    import json

    from prunecxr.config import load_config
    from prunecxr.estimate import plan

    config = load_config("smoke", overrides=["population=2", "methods=l1"])
    root = tmp_path / "results"
    (root / "old").mkdir(parents=True)
    fields = {k: getattr(config, k) for k in
              ("arch", "width", "image_size", "batch_size", "precision", "channels_last")}
    (root / "old" / "manifest.json").write_text(json.dumps({
        "config": {**fields, "device": "auto"}, "machine": {"cuda": None},
        "rates": {"train": {"images_per_s": 100.0}, "sweep": {"images_per_s": 1000.0}},
        "updated": "2026-01-01"}))
    p = plan(config, root, "cpu")
    assert p.train_rate == 100.0 and p.sweep_rate == 1000.0 and "old" in p.rate_source
    expected_train = 2 * config.max_epochs * 420 / 100.0 + 2 * config.max_epochs * 60 / 1000.0
    assert p.train_s == pytest.approx(expected_train)
    assert p.sweep_s == pytest.approx(2 * 20 * 120 / 1000.0)


# ------------------------------------------------------------------------- the registry


def test_every_dataset_is_one_registry_entry():
    for name, e in REGISTRY.items():
        params = inspect.signature(e.load_function()).parameters
        assert "image_size" in params and "cache_dir" in params, name
        assert (e.data_dir is None) == (e.data_dir_option is None), name
        if e.data_dir_option:
            assert e.data_dir_option in params and e.data_dir_option not in e.user_options()
            assert e.data_dir in ("folder", "file") and e.example and e.holds
        assert e.description
    assert [t.name for t in rerun_targets()] == ["nih-cxr-lt", "mimic-cxr-lt", "csv"]


def test_registry_routes_data_dir_to_the_loader_keyword():
    from prunecxr.config import load_config

    csv = load_config("smoke", dataset="csv", data_dir="/d/x.csv")
    assert dataset_options(csv)["csv"] == "/d/x.csv" and "data_dir" not in dataset_options(csv)
    nih = load_config("smoke", dataset="nih-cxr-lt", data_dir="/d/nih")
    assert dataset_options(nih)["data_dir"] == "/d/nih"
    assert "data_dir" not in dataset_options(load_config("smoke"))
    with pytest.raises(ValueError, match="required for dataset 'csv'"):
        get_dataset("csv", image_size=8)
    with pytest.raises(ValueError, match="did you mean 'csv'"):
        check_data_dir("cvs", "/x")


def test_chapters_get_the_same_checks_in_their_own_terms():
    from prunecxr import book

    with pytest.raises(ValueError, match=r"parameter data_dir is required for dataset 'csv'.*"
                                         r"-p data_dir /data/my_labels.csv"):
        book.configure("smoke", dataset="csv")
    with pytest.raises(ValueError, match="parameter data_dir /x is given"):
        book.configure("smoke", data_dir="/x")
    with pytest.raises(ValueError, match="override 'sparsities=abc': expected a comma-separated"):
        book.configure("smoke", overrides=["sparsities=abc"])


# ------------------------------------------------------------------------ progress bars


def test_quiet_turns_off_the_decoding_bar(tmp_path, capfd, monkeypatch):
    from prunecxr.data.images import decode_into

    monkeypatch.delenv("PRUNECXR_PROGRESS", raising=False)
    paths = [tiny_csv(tmp_path, "path,A", [], n_images=3).parent / f"img{i}.png" for i in range(3)]
    out = np.zeros((3, 8, 8), dtype=np.uint8)
    decode_into(out, paths, workers=1)
    assert "decoding images" in capfd.readouterr().err
    monkeypatch.setenv("PRUNECXR_PROGRESS", "0")  # what --quiet sets, for workers too
    decode_into(out, paths, workers=1)
    assert capfd.readouterr().err == ""


def test_progress_in_a_notebook_is_one_line_updated_in_place(tmp_path):
    """Executed as papermill does (nbclient), a 500-step bar leaves one output holding its
    final state, with no carriage-return fragments; a nested bar leaves none."""
    import nbformat
    from nbclient import NotebookClient

    env = checkout_env()
    env.pop("PRUNECXR_PROGRESS", None)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from prunecxr.progress import tqdm\n"
        "for _ in tqdm(range(500), desc='steps', mininterval=0): pass\n"
        "bar = tqdm(range(3), desc='gone', leave=False)\n"
        "for _ in bar: pass")]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute(env=env)
    outputs = nb.cells[0].outputs
    texts = [o.get("data", {}).get("text/plain", o.get("text", "")) for o in outputs]
    assert len(texts) == 1, texts  # the nested (leave=False) bar leaves nothing
    assert "\r" not in texts[0] and "steps: 100%" in texts[0] and "500/500" in texts[0], texts


def test_split_sizes_are_read_without_decoding(tmp_path):
    """The dry run's image counts: label rows (one file per split, or a CSV split 70/10/20)."""
    from prunecxr.config import load_config
    from prunecxr.data.registry import split_sizes

    for split, n in (("train", 7), ("val", 2), ("test", 3)):
        tiny_csv(tmp_path / "nih", "id,A", [f"x{i}.png,1" for i in range(n)])
        (tmp_path / "nih" / "labels.csv").rename(
            tmp_path / "nih" / f"miccai2023_nih-cxr-lt_labels_{split}.csv")
    nih = load_config("smoke", dataset="nih-cxr-lt", data_dir=str(tmp_path / "nih"))
    assert split_sizes(nih) == {"train": 7, "val": 2, "test": 3}
    path = tiny_csv(tmp_path / "csv", "path,A", [f"x{i}.png,1" for i in range(10)] + [""])
    csv = load_config("smoke", dataset="csv", data_dir=str(path))
    assert split_sizes(csv) == {"train": 7, "val": 1, "test": 2}
    assert split_sizes(load_config("smoke")) == {"train": 420, "val": 60, "test": 120}
    gone = load_config("smoke", dataset="csv", data_dir=str(tmp_path / "gone.csv"))
    assert split_sizes(gone) == {"train": None, "val": None, "test": None}


def test_a_failed_chapter_is_one_line_with_its_cause():
    """A chapter's traceback (papermill's message, with ANSI colours) becomes its first line
    (which chapter, where the executed copy is) and its last (the exception)."""
    from prunecxr.book.errors import BookError
    from prunecxr.errors import one_line

    message = ("notebook q1_overall.ipynb failed (executed copy: /b/q1_overall.ipynb):\n"
               "-----------\nException encountered at \"In [3]\":\n"
               "\x1b[0;31m---> 3\x1b[0m book.configure(profile)\n"
               "\x1b[0;31mValueError\x1b[0m: parameter data_dir is required\n")
    line = one_line(BookError(message))
    assert line.startswith("notebook q1_overall.ipynb failed (executed copy: /b/q1_overall.ipynb):")
    assert "ValueError: parameter data_dir is required" in line and "\x1b" not in line
    assert "\n" not in line and "3 line(s) between" in line
    assert one_line(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "/x: No such file or directory")


@pytest.mark.parametrize("args, needles", [
    (("run", "--profil", "smoke"), ("unrecognized arguments: --profil smoke",
                                    "did you mean '--profile'", "--help")),
    (("run", "--workers", "two"), ("argument --workers: invalid int value: 'two'",)),
    (("status",), ("the following arguments are required: --results-dir",)),
    (("nope",), ("invalid choice: 'nope'",)),
])
def test_argument_errors_are_one_line_and_never_abbreviated(home, args, needles):
    """argparse's own errors are one line too, and an abbreviated option is an error, not a
    run (``--profil`` would otherwise mean ``--profile``)."""
    r = user(*args, home=home)
    one_line_error(r, *needles)
    assert files_under(home) == []


def test_quiet_in_process_leaves_the_environment_as_it_was(monkeypatch, capsys):
    from prunecxr import cli

    monkeypatch.delenv("PRUNECXR_PROGRESS", raising=False)
    assert cli.main(["run", "--profile", "smoke", "--quiet", "--set", "sparsities=abc"]) == 2
    assert "PRUNECXR_PROGRESS" not in os.environ
    assert "comma-separated" in capsys.readouterr().err
