"""Reader-study packets and response import, on a small fake results store (no training)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prunecxr.study import StudyError, load_responses, make_packet, read_key, truth_table
from prunecxr.study import cli as study_cli
from prunecxr.study import packet as packet_mod

DATA_URI = re.compile(rb"data:image/png;base64,[A-Za-z0-9+/=]+")


@dataclass
class FakeStore:
    """The results-store contract's attributes, from random data with known 'hard' images."""

    classes: list[str]
    labels: np.ndarray
    meta: pd.DataFrame
    images: np.ndarray
    preds: dict = field(repr=False)
    sparsities: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.5, 0.9]))
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    methods: list[str] = field(default_factory=lambda: ["l1"])
    dataset: str = "fake"
    results_dir: Path = Path("/nonexistent/fake-results")
    config: dict = field(default_factory=lambda: {"dataset": "fake", "population": 2})
    manifest: dict = field(default_factory=dict)

    def test_images(self) -> np.ndarray:
        return self.images

    def method_seeds(self, method: str) -> list[int]:
        return list(self.seeds)

    def predictions(self, method: str, seed: int) -> np.ndarray:
        return self.preds[(method, seed)]


def fake_store(n: int = 200, n_classes: int = 6, hard: int = 20, size: int = 24,
               seed: int = 0, truth: bool = True) -> FakeStore:
    """``hard`` images (rows 0..hard-1 after a shuffle) flip their ranking at sparsity 0.9."""
    rng = np.random.default_rng(seed)
    classes = [f"Finding {chr(65 + c)}" for c in range(n_classes)]
    labels = (rng.random((n, n_classes)) < 0.3).astype(np.uint8)
    is_hard = np.zeros(n, bool)
    is_hard[rng.permutation(n)[:hard]] = True
    meta = pd.DataFrame({"image_id": [f"img{i:05d}" for i in range(n)],
                         "patient": [f"pt{i // 2:04d}" for i in range(n)], "split": "test"})
    if truth:
        meta["quality"] = np.where(is_hard, 0.3, 0.8) + 0.05 * rng.standard_normal(n)
        meta["difficulty"] = np.where(is_hard, 2.0, 1.0) + 0.1 * rng.standard_normal(n)
        meta["label_corrupted"] = is_hard & (rng.random(n) < 0.7)
    preds = {}
    for s in (0, 1):
        dense = rng.random((n, n_classes)).astype(np.float32)
        pruned = dense + 0.01 * rng.standard_normal((n, n_classes)).astype(np.float32)
        pruned[is_hard] = 1.0 - dense[is_hard]
        preds[("l1", s)] = np.stack([dense, (dense + pruned) / 2, pruned])
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    store = FakeStore(classes, labels, meta, images, preds)
    store.is_hard = is_hard
    return store


@pytest.fixture(scope="module")
def store() -> FakeStore:
    return fake_store()


def small_packet(store, out, seed=0, **kw):
    kw = {"readers": 3, "per_reader": 8, "image_size": 48, **kw}
    return make_packet(store, out, seed=seed, pies=store.is_hard, **kw)


@pytest.fixture(scope="module")
def packet(store, tmp_path_factory) -> Path:
    return small_packet(store, tmp_path_factory.mktemp("study") / "packet")


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- packet


def test_packet_sizes_balance_and_disjointness(packet, store):
    key, info, _ = read_key(packet)
    assert len(key) == 24 and info["design"]["readers"] == 3
    for name, grp in key.groupby("reader"):
        assert len(grp) == 8 and grp["is_pie"].sum() == 4, name
        assert sorted(grp["position"]) == list(range(1, 9))
        folder = packet / "readers" / name
        assert (folder / f"{name}.html").is_file()
        assert sorted(p.stem for p in (folder / "images").glob("*.png")) == sorted(grp["item"])
    assert key["test_row"].is_unique and key["item"].is_unique     # disjoint across readers
    assert key["packet_id"].nunique() == 3
    assert (key["is_pie"] == store.is_hard[key["test_row"]]).all()
    assert (key["image_id"] == store.meta["image_id"].to_numpy()[key["test_row"]]).all()
    with Image.open(next((packet / "readers" / "reader_01" / "images").glob("*.png"))) as img:
        assert img.size == (48, 48) and img.mode == "L"
    assert not (packet / "readers" / "key").exists() and (packet / "key" / "key.json").is_file()


def test_same_seed_same_bytes_other_seed_other_sample(store, packet, tmp_path):
    again = small_packet(store, tmp_path / "again")
    assert files_of(again) == files_of(packet)
    other = small_packet(store, tmp_path / "other", seed=1)
    k0, k1 = read_key(packet)[0], read_key(other)[0]
    assert set(k0["test_row"]) != set(k1["test_row"])
    assert set(k0["packet_id"]).isdisjoint(k1["packet_id"])
    assert set(k0["item"]).isdisjoint(k1["item"])


def test_readers_cannot_see_which_images_are_pies(packet, store):
    key = read_key(packet)[0]
    secrets = [s.encode() for s in store.meta["image_id"]] + [b"is_pie", b"pie_score"]
    pie_items = set(key.loc[key["is_pie"], "item"])
    for path in (packet / "readers").rglob("*"):
        assert "pie" not in path.name.lower(), path
        if not path.is_file():
            continue
        data = path.read_bytes()
        leaked = [s for s in secrets if s in data]
        assert not leaked, (path, leaked[:3])
        if path.suffix == ".html":
            text = DATA_URI.sub(b"", data).decode()     # base64 can spell anything by chance
            assert "pie" not in text.lower(), path
            assert not re.search(r"https?://", text), path
            assert text.count('"item":') == 8
        else:
            assert path.suffix == ".png"
            assert png_chunks(data) <= {b"IHDR", b"IDAT", b"IEND"}, path   # no text metadata
    # The order within a reader is shuffled: PIEs are not always the first (or last) half.
    first_half = [set(g.sort_values("position")["item"][:4]) for _, g in key.groupby("reader")]
    assert not all(s <= pie_items for s in first_half)
    assert not all(s.isdisjoint(pie_items) for s in first_half)


def png_chunks(data: bytes) -> set[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = set(), 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunks.add(data[pos + 4:pos + 8])
        pos += 12 + length
    return chunks


def test_too_few_pies_or_non_pies_names_the_numbers(store, tmp_path):
    with pytest.raises(StudyError, match=r"not enough PIEs: the design needs 32 \(4 readers x 8\)"
                                         r" but only 20 of 200"):
        small_packet(store, tmp_path / "p", readers=4, per_reader=16)
    few_others = np.ones(200, bool)
    few_others[:5] = False
    with pytest.raises(StudyError, match=r"not enough non-PIEs: .* needs 12 .* only 5 of 200"):
        make_packet(store, tmp_path / "p", readers=3, per_reader=8, pies=few_others)
    with pytest.raises(StudyError, match="per_reader must be an even number"):
        small_packet(store, tmp_path / "p", per_reader=7)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_and_never_leaves_half_a_packet(store, tmp_path, monkeypatch):
    out = small_packet(store, tmp_path / "p")
    before = files_of(out)
    with pytest.raises(StudyError, match="already holds files; pass --force"):
        small_packet(store, out, seed=3)
    small_packet(store, out, seed=3, force=True)
    assert read_key(out)[1]["seed"] == 3 and files_of(out) != before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("precious")
    with pytest.raises(StudyError, match="not a reader-study packet"):
        small_packet(store, tmp_path / "notes", force=True)

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(packet_mod, "png_bytes", boom)
    after = files_of(out)
    with pytest.raises(RuntimeError):
        small_packet(store, out, seed=4, force=True)
    with pytest.raises(RuntimeError):
        small_packet(store, tmp_path / "new")
    assert files_of(out) == after and not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "p"]   # no temp leftovers


def test_packet_from_pie_scores_and_cli(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(study_cli, "_load_store", lambda path: store)
    rc = study_cli.main(["packet", "--results-dir", "x", "--out", str(tmp_path / "p"),
                         "--readers", "2", "--per-reader", "6", "--fraction", "0.1",
                         "--image-size", "32", "--seed", "5"])
    assert rc == 0, capsys.readouterr().err
    key, info, _ = read_key(tmp_path / "p")
    assert info["available"]["pies"] == 20 and info["seed"] == 5
    assert key.loc[key["is_pie"], "test_row"].map(lambda r: store.is_hard[r]).all()
    assert np.isfinite(key["pie_score"]).all()
    rc = study_cli.main(["packet", "--results-dir", "x", "--out", str(tmp_path / "q"),
                         "--readers", "6", "--per-reader", "40"])
    err = capsys.readouterr().err
    assert rc == 2 and "not enough PIEs" in err and "needs 120" in err and "only 10" in err
    assert not (tmp_path / "q").exists()


# ---------------------------------------------------------------- responses


def answer(packet: Path, folder: Path) -> list[Path]:
    """One complete, valid answer file per reader (answers vary, deterministic)."""
    key = read_key(packet)[0]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, grp in key.groupby("reader"):
        rows = [[name, r.packet_id, r.item, "yes" if r.position % 3 else "no",
                 1 + r.position % 5, 1 + (r.position * 2) % 5]
                for r in grp.sort_values("position").itertuples()]
        path = folder / f"{name}_responses.csv"
        write_csv(path, [list(packet_mod.RESPONSE_COLUMNS)] + rows)
        paths.append(path)
    return paths


def write_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_good_responses_round_trip(packet, tmp_path):
    paths = answer(packet, tmp_path)
    table = load_responses(packet / "key", paths)
    key = read_key(packet)[0].set_index("item")
    assert list(table.columns[:6]) == ["reader", "image", "is_pie", "agrees_with_label",
                                       "quality", "difficulty"]
    assert len(table) == 24 and table["is_pie"].sum() == 12
    assert (table["is_pie"].to_numpy() == key.loc[table["item"], "is_pie"].to_numpy()).all()
    assert (table["image"].to_numpy() == key.loc[table["item"], "image_id"].to_numpy()).all()
    assert table["agrees_with_label"].dtype == bool
    assert table["quality"].between(1, 5).all() and table["difficulty"].between(1, 5).all()
    # the packet folder itself, key.json, and 1/0 answers are accepted too
    rows = read_rows(paths[0])
    write_csv(paths[0], [rows[0]] + [r[:3] + [{"yes": "1", "no": "0"}[r[3]]] + r[4:]
                                     for r in rows[1:]])
    rows = read_rows(paths[1])                     # a spreadsheet's ';' CSV with a BOM, 3.0
    with open(paths[1], "w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh, delimiter=";").writerows([rows[0]] + [r[:4] + [f"{r[4]}.0"] + r[5:]
                                                             for r in rows[1:]])
    again = load_responses(packet, paths)
    pd.testing.assert_frame_equal(again, load_responses(packet / "key" / "key.json", paths))
    assert (again["agrees_with_label"] == table["agrees_with_label"]).all()


def _mutations():
    """(name, function(rows, key) -> rows, expected message regex with {file})."""
    def other_item(rows, key):
        rows[2][2] = key.loc[key["reader"] == "reader_02", "item"].iloc[0]
        return rows
    return [
        ("unknown item", lambda r, k: _set(r, 2, 2, "0123abcdef"),
         r"{file}: line 3: unknown item '0123abcdef' for reader_01's packet"),
        ("item of another reader", other_item, r"{file}: line 3: .* \(it belongs to reader_02\)"),
        ("missing answer", lambda r, k: _set(r, 3, 4, ""), r"{file}: line 4: quality is missing"),
        ("out of range", lambda r, k: _set(r, 4, 5, "7"),
         r"{file}: line 5: difficulty must be an integer 1-5, got '7'"),
        ("not yes/no", lambda r, k: _set(r, 1, 3, "maybe"),
         r"{file}: line 2: agrees_with_label must be yes/no \(or 1/0\), got 'maybe'"),
        ("duplicate", lambda r, k: r + [list(r[1])],
         r"{file}: line 10: duplicate answer for item \w+ \(already answered at {file}: line 2\)"),
        ("another reader's packet", lambda r, k: [r[0]] + [["reader_02"] + x[1:] for x in r[1:]],
         r"{file}: line 2: packet_id \w+ belongs to reader_01, but the reader column says "
         r"'reader_02' \(whose packet is \w+\)"),
        ("unknown packet", lambda r, k: _set(r, 1, 1, "ffffffffffff"),
         r"{file}: line 2: unknown packet_id 'ffffffffffff'"),
        ("wrong columns", lambda r, k: [r[0][:4] + ["qual"] + r[0][5:]] + r[1:],
         r"{file}: line 1: wrong columns: missing column\(s\) quality; "
         r"unexpected column\(s\) qual"),
        ("incomplete", lambda r, k: r[:-1],
         r"reader_01 \(packet \w+\): 1 of 8 images have no answer"),
        ("empty", lambda r, k: [], r"{file}: empty file"),
    ]


def _set(rows, i, j, value):
    rows[i][j] = value
    return rows


@pytest.mark.parametrize("name,mutate,expected", _mutations(), ids=[m[0] for m in _mutations()])
def test_broken_responses_are_rejected_naming_file_and_row(packet, tmp_path, name, mutate,
                                                           expected, capsys):
    paths = answer(packet, tmp_path / "answers")
    key = read_key(packet)[0]
    write_csv(paths[0], mutate(read_rows(paths[0]), key))
    pattern = expected.format(file=re.escape(str(paths[0])))
    with pytest.raises(StudyError, match=pattern) as err:
        load_responses(packet / "key", paths)
    assert "nothing was imported" in str(err.value)
    # the CLI writes nothing either (validation of every file comes before any output)
    out = tmp_path / "analysis"
    rc = study_cli.main(["analyze", "--key", str(packet), "--responses", *map(str, paths),
                         "--out", str(out)])
    assert rc == 2 and re.search(pattern, capsys.readouterr().err)
    assert not out.exists()


def test_every_problem_is_listed_at_once(packet, tmp_path):
    paths = answer(packet, tmp_path)
    rows = read_rows(paths[1])
    rows[1][4], rows[2][5] = "0", "x"
    write_csv(paths[1], rows)
    write_csv(paths[2], [list(packet_mod.RESPONSE_COLUMNS)])
    with pytest.raises(StudyError) as err:
        load_responses(packet, paths + [tmp_path / "missing.csv"])
    msg = str(err.value)
    assert msg.startswith("4 problem(s)")
    assert f"{paths[1]}: line 2: quality" in msg and f"{paths[1]}: line 3: difficulty" in msg
    assert f"{paths[2]}: no answers after the header" in msg
    assert f"{tmp_path / 'missing.csv'}: file not found" in msg


def test_ids_survive_spreadsheets(packet):
    key = read_key(packet)[0]
    assert not packet_mod.spreadsheet_safe("0123456789")
    assert not packet_mod.spreadsheet_safe("12e4567")
    assert packet_mod.spreadsheet_safe("12e45a7") and packet_mod.spreadsheet_safe("a1")
    assert all(map(packet_mod.spreadsheet_safe, key["item"]))
    assert all(map(packet_mod.spreadsheet_safe, key["packet_id"]))


def test_bad_key_location(tmp_path):
    with pytest.raises(StudyError, match="no reader-study key at"):
        load_responses(tmp_path, [])


def expected_reader_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Kruskal-Wallis per question by scipy, straight from the tidy answers (PIEs vs not)."""
    from scipy import stats as st

    rows = []
    for q in ("agrees_with_label", "quality", "difficulty"):
        a = table.loc[table["is_pie"].astype(bool), q].astype(float)
        b = table.loc[~table["is_pie"].astype(bool), q].astype(float)
        rows.append({"variable": q, "n_a": len(a), "mean_a": a.mean(), "n_b": len(b),
                     "mean_b": b.mean(), "p_kruskal": st.kruskal(a, b).pvalue,
                     "p_welch": st.ttest_ind(a, b, equal_var=False).pvalue})
    return pd.DataFrame(rows)


def test_analyze_writes_table_stats_and_figure(packet, tmp_path, capsys):
    from prunecxr.analysis.readers import reader_study_stats

    paths = answer(packet, tmp_path / "answers")
    out = tmp_path / "analysis"
    rc = study_cli.main(["analyze", "--key", str(packet / "key"), "--responses",
                         *map(str, paths), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    direct = load_responses(packet / "key", paths)
    table = pd.read_csv(out / "responses.csv")
    assert len(table) == 24 and table["is_pie"].sum() == 12
    pd.testing.assert_frame_equal(table, direct.reset_index(drop=True), check_dtype=False)
    written = pd.read_csv(out / "reader_study_stats.csv")
    pd.testing.assert_frame_equal(written, reader_study_stats(direct), check_dtype=False)
    mine = expected_reader_stats(direct).set_index("variable")
    got = written.set_index("variable")
    for col in mine.columns:
        np.testing.assert_allclose(got.loc[mine.index, col], mine[col], rtol=1e-9, err_msg=col)
    with Image.open(out / "figure6.png") as img:
        assert img.format == "PNG" and img.size[0] > 200


# ---------------------------------------------------------------- ground truth


def test_truth_table_and_missing_truth_columns(store):
    table = truth_table(store, store.is_hard)
    assert list(table.columns) == ["reader", "image", "is_pie", "agrees_with_label", "quality",
                                   "difficulty"]
    assert table["is_pie"].sum() == 20
    assert (table["agrees_with_label"] == ~store.meta["label_corrupted"]).all()
    bare = fake_store(truth=False)
    with pytest.raises(StudyError, match="'fake' has no ground-truth column.*label_corrupted"):
        truth_table(bare, bare.is_hard)
    with pytest.raises(StudyError, match="boolean mask over the 200 test images"):
        truth_table(store, store.is_hard[:10])


def test_ground_truth_comparison_sees_the_planted_difference(store):
    from prunecxr.study import ground_truth_comparison
    stats = ground_truth_comparison(store, store.is_hard).set_index("variable")
    assert (stats["source"] == "ground truth").all()
    assert list(stats.index) == ["agrees_with_label", "quality", "difficulty"]
    assert (stats["n_a"] == 20).all() and (stats["n_b"] == 180).all()
    assert stats.loc["agrees_with_label", "mean_b"] == 1.0       # only hard images corrupted
    assert stats.loc["quality", "mean_a"] < stats.loc["quality", "mean_b"]
    assert stats.loc["difficulty", "mean_a"] > stats.loc["difficulty", "mean_b"]
    assert (stats["p_kruskal"] < 1e-6).all()


def test_truth_cli(store, tmp_path, monkeypatch, capsys):
    from scipy import stats as st

    from prunecxr.analysis.pies import pie_scores, select_pies
    from prunecxr.analysis.readers import phantom_truth_stats

    monkeypatch.setattr(study_cli, "_load_store", lambda path: store)
    rc = study_cli.main(["truth", "--results-dir", "x", "--fraction", "0.1",
                         "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    stats = pd.read_csv(tmp_path / "ground_truth_stats.csv").set_index("variable")
    assert list(stats.index) == ["agrees_with_label", "quality", "difficulty"]
    pies = select_pies(pie_scores(store), fraction=0.1)
    assert pies.sum() == 20 and (pies == store.is_hard).all()   # the planted hard images
    truth = phantom_truth_stats(store.meta, pies).set_index("variable")
    for col in ("n_a", "n_b", "p_kruskal", "p_welch", "p_mannwhitney"):
        np.testing.assert_allclose(stats.loc[["quality", "difficulty"], col],
                                   truth.loc[["quality", "difficulty"], col], rtol=1e-9)
        # agreement with the label is "not corrupted": the same test on the complement
        assert stats.loc["agrees_with_label", col] == pytest.approx(
            truth.loc["label_corrupted", col], rel=1e-9)
    for col in ("mean_a", "mean_b"):
        np.testing.assert_allclose(stats.loc[["quality", "difficulty"], col],
                                   truth.loc[["quality", "difficulty"], col], rtol=1e-9)
        assert stats.loc["agrees_with_label", col] == pytest.approx(
            1 - truth.loc["label_corrupted", col])
    q = store.meta["quality"].to_numpy()
    assert stats.loc["quality", "p_kruskal"] == pytest.approx(
        st.kruskal(q[pies], q[~pies]).pvalue, rel=1e-9)
    assert stats.loc["quality", "mean_a"] == pytest.approx(q[pies].mean())
    bare = fake_store(truth=False)
    monkeypatch.setattr(study_cli, "_load_store", lambda path: bare)
    assert study_cli.main(["truth", "--results-dir", "x"]) == 2
    assert "has no ground-truth column" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_on_the_smoke_results(smoke_store, tmp_path):
    """Real store: PIEs from its predictions, images from its cache, truth from the phantom."""
    from prunecxr.analysis.pies import pie_scores, select_pies
    from prunecxr.analysis.readers import reader_study_stats
    from prunecxr.study import ground_truth_comparison

    out = make_packet(smoke_store, tmp_path / "p", readers=2, per_reader=8, fraction=0.1,
                      image_size=64, seed=2)
    key, info, _ = read_key(out)
    pies = select_pies(pie_scores(smoke_store), fraction=0.1)
    assert info["available"]["pies"] == int(pies.sum()) and key["is_pie"].sum() == 8
    assert pies[key.loc[key["is_pie"], "test_row"]].all()
    assert info["store"]["results_dir"] == str(smoke_store.results_dir)
    stats = reader_study_stats(load_responses(out, answer(out, tmp_path / "answers")))
    assert list(stats["variable"]) == ["agrees_with_label", "quality", "difficulty"]
    truth = ground_truth_comparison(smoke_store, pies)
    assert (truth["n_a"] == pies.sum()).all() and (truth["n_b"] == (~pies).sum()).all()
