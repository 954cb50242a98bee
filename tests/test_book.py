"""The book: data-and-methods tables, the runner's helpers, and one real build from smoke results.

Fast tests (no marker) check :mod:`prunecxr.analysis.overview`, the parameter helpers the
notebooks use and the HTML audit on hand-written pages. The ``slow`` tests build the whole book
once per session from the smoke results (``smoke_book``) and check every chapter's HTML: it
exists, its figures are there, nothing is left unresolved (glue, references, raw roles), no page
needs the network; then rerun one chapter with papermill on other parameters, and show that a
bad parameter stops a notebook in its first cells with a clear message.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunecxr import book
from prunecxr.analysis import convergence, overview

# Every page: the toc's chapters (prunecxr.book.NOTEBOOKS, from _toc.yml) between the prose.
PAGES = ["book/intro.html", *(f"chapters/{n}.html" for n in book.NOTEBOOKS), "book/references.html"]
FIGURES = {  # page -> minimum number of figures (img elements) it must show; others: 0
    "book/intro.html": 1,
    "chapters/data_methods.html": 4,
    "chapters/q1_overall.html": 1,
    "chapters/q2_forgetting.html": 2,
    "chapters/q3_cooccurrence.html": 1,
    "chapters/q4_pies.html": 3,
    "chapters/q5_compression.html": 2,
    "chapters/q6_capacity.html": 1,
}


# ------------------------------------------------------------------------------- overview

def _labels(n=400, seed=0):
    rng = np.random.default_rng(seed)
    prev = np.array([0.5, 0.3, 0.2, 0.1, 0.05, 0.0])
    return (rng.random((n, len(prev))) < prev).astype(np.uint8)


CLASSES = ["No Finding", "A", "B", "C", "D", "E"]


def test_class_table_sorted_with_shares_and_ranks():
    y = _labels()
    table = overview.class_table(CLASSES, pd.Series(y.sum(0), index=CLASSES), y[:100].sum(0),
                                 n_train=len(y))
    assert list(table["rank"]) == list(range(1, 7))
    assert table["train"].is_monotonic_decreasing
    assert table.loc[0, "class"] == "No Finding"
    np.testing.assert_allclose(table["train_share"], table["train"] / len(y))
    assert set(table.columns) == {"rank", "class", "train", "train_share", "test"}


def test_class_table_rejects_misaligned_counts():
    with pytest.raises(ValueError, match="lacks classes"):
        overview.class_table(CLASSES, pd.Series([1, 2], index=["A", "B"]))
    with pytest.raises(ValueError, match="one count per class"):
        overview.class_table(CLASSES, [1, 2, 3])


def test_iou_matrix_matches_set_definition():
    y = _labels(200, 1)
    iou = overview.iou_matrix(y, CLASSES)
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            a, b = set(np.flatnonzero(y[:, i])), set(np.flatnonzero(y[:, j]))
            expected = len(a & b) / len(a | b) if a | b else np.nan
            assert (np.isnan(expected) and np.isnan(iou.iloc[i, j])) or \
                iou.iloc[i, j] == pytest.approx(expected)
    assert np.allclose(iou.to_numpy(), iou.to_numpy().T, equal_nan=True)
    with pytest.raises(ValueError, match="shape"):
        overview.iou_matrix(y[:, :3], CLASSES)


def test_findings_per_image_excludes_no_finding_and_bins_4_plus():
    y = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0],
                  [0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0]], dtype=np.uint8)
    table = overview.findings_per_image(y, CLASSES)
    assert list(table["findings"]) == ["0", "1", "2", "3", "4+"]
    assert list(table["images"]) == [1, 1, 1, 1, 1]
    assert table["share"].sum() == pytest.approx(1.0)


def test_training_summary_picks_lowest_validation_loss():
    h = pd.DataFrame({"seed": [0, 0, 0, 1, 1], "epoch": [0, 1, 2, 0, 1],
                      "train_loss": [1, 0.8, 0.7, 1, 0.9], "val_loss": [0.5, 0.4, 0.45, 0.6, 0.7],
                      "val_map": [0.1, 0.2, 0.25, 0.3, 0.35]})
    s = convergence.training_summary(h).set_index("seed")
    assert s.loc[0, "best_epoch"] == 1 and s.loc[0, "epochs"] == 3
    assert s.loc[0, "val_map_at_best"] == pytest.approx(0.2)
    assert s.loc[1, "best_epoch"] == 0 and s.loc[1, "epochs"] == 2
    assert convergence.training_summary(h.iloc[:0]).empty


def test_figures_are_figures():
    """Each figure draws the data it is given: bar lengths, heatmap cells, one line per seed and
    the medians, and the axis labels and class names that go with them."""
    from matplotlib.figure import Figure

    y = _labels()
    table = overview.class_table(CLASSES, y.sum(0), y[:100].sum(0))
    fig = overview.class_counts_figure(table)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    n = len(table)
    widths = [b.get_width() for b in ax.patches]
    assert len(widths) == 2 * n                      # a train and a test bar per class
    np.testing.assert_allclose(widths[:n], table["train"].clip(lower=0.8))
    np.testing.assert_allclose(widths[n:], table["test"].clip(lower=0.8))
    centres = [b.get_y() + b.get_height() / 2 for b in ax.patches[:n]]
    assert np.all(np.diff(centres) > 0)              # one row per class, in the table's order
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table["class"])
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "positive images (log scale)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]

    iou = overview.iou_matrix(y, CLASSES)
    fig = overview.cooccurrence_figure(iou)
    ax = fig.axes[0]
    (image,) = ax.get_images()
    shown = np.ma.getdata(image.get_array()).astype(float)
    masked = np.ma.getmaskarray(image.get_array())
    expected = iou.to_numpy(dtype=float) ** 0.25
    np.fill_diagonal(expected, np.nan)
    assert shown.shape == (len(CLASSES), len(CLASSES))
    np.testing.assert_array_equal(masked, np.isnan(expected))  # diagonal and 0/0 left blank
    np.testing.assert_allclose(shown[~masked], expected[~masked])
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert fig.axes[1].get_ylabel().startswith("IoU")           # the colour bar
    assert image.get_clim() == (0.0, pytest.approx(np.nanmax(expected)))

    h = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "epoch": [0, 1, 2, 0, 1, 2],
                      "train_loss": [1.0, 0.5, 0.4, 0.9, 0.6, 0.3],
                      "val_loss": [1.1, 0.7, 0.8, 1.0, 0.65, 0.9],
                      "val_map": [0.1, 0.2, 0.25, 0.12, 0.3, 0.28]})
    fig = convergence.training_curves_figure(h)
    ax_loss, ax_map = fig.axes[:2]

    def drawn(ax, x, values):
        return sum(np.array_equal(np.asarray(line.get_xdata(), float), np.asarray(x, float))
                   and np.allclose(np.asarray(line.get_ydata(), float), values)
                   for line in ax.get_lines())

    for _, g in h.groupby("seed"):
        assert drawn(ax_loss, g["epoch"], g["val_loss"]) == 1
        assert drawn(ax_map, g["epoch"], g["val_map"]) == 1
    med = h.groupby("epoch")["train_loss"].median()
    assert drawn(ax_loss, med.index, med) == 1
    assert (ax_loss.get_xlabel(), ax_loss.get_ylabel()) == ("epoch", "binary cross-entropy")
    assert (ax_map.get_xlabel(), ax_map.get_ylabel()) == ("epoch", "validation mAP")
    empty = convergence.training_curves_figure(h.iloc[:0])
    assert all(not a.get_lines() and [t.get_text() for t in a.texts] == ["no training history"]
               for a in empty.axes)


def test_sparsity_table_checks_alignment():
    t = overview.sparsity_table([0, 0.5], {"l1": np.array([0.0, 0.5])})
    assert list(t.columns) == ["k", "l1"]
    with pytest.raises(ValueError, match="shape"):
        overview.sparsity_table([0, 0.5], {"l1": np.array([0.0])})


# ------------------------------------------------------------------- notebook parameter helpers

@pytest.mark.parametrize("given, expected", [
    (None, []), ("", []), ([], []), (["population=2", " max_epochs=1 "], ["population=2", "max_epochs=1"]),
    ("population=2;max_epochs=1", ["population=2", "max_epochs=1"]),
    ({"population": 2}, ["population=2"]),
])
def test_normalize_overrides(given, expected):
    assert book.normalize_overrides(given) == expected


def test_normalize_overrides_rejects_garbage():
    with pytest.raises(ValueError, match="field=value"):
        book.normalize_overrides(["population"])
    with pytest.raises(ValueError, match="strings"):
        book.normalize_overrides([3])


def test_configure_names_bad_parameters():
    with pytest.raises(ValueError, match="profile must be one of"):
        book.configure("fast")
    with pytest.raises(ValueError, match="dataset must be one of"):
        book.configure("smoke", dataset="nih")
    with pytest.raises(ValueError, match="data_dir is required"):
        book.configure("smoke", dataset="nih-cxr-lt")
    with pytest.raises(ValueError, match="unknown parameter 'populaton'"):
        book.configure("smoke", overrides=["populaton=2"])
    assert book.configure("smoke", overrides="population=2").population == 2


def test_check_helpers():
    book.check_choice("method", "l1", ["l1", "random"])
    with pytest.raises(ValueError, match=r"parameter method must be one of \['l1'\]"):
        book.check_choice("method", "lasso", ["l1"])
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
        book.check_range("alpha", 1.0, 0, 1, inclusive=False)
    with pytest.raises(ValueError, match="must be a number"):
        book.check_range("n", "3", 0, 10)
    assert book.nearest_level("sparse", 0.9000000001, [0.0, 0.9]) == 0.9
    with pytest.raises(ValueError, match="not a sparsity level"):
        book.nearest_level("sparse", 0.85, [0.0, 0.9])
    assert book.plain(np.float64(0.5)) == 0.5 and type(book.plain(np.int64(3))) is int


# --------------------------------------------------------------------------------- HTML audit

PAGE = """<html><head>{head}</head><body><main>{body}</main></body></html>"""


def _page(tmp_path, name, head="", body="", files=()):
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PAGE.format(head=head, body=body))
    return path


def test_audit_flags_external_missing_and_unresolved(tmp_path):
    _page(tmp_path, "ok.html", head='<script src="_static/a.js"></script>',
          body='<img src="_images/f.png"><a href="https://example.org">a link is fine</a>',
          files=["_static/a.js", "_images/f.png"])
    _page(tmp_path, "cdn.html", head='<script src="https://cdn.example/mathjax.js"></script>'
                                     '<link rel="stylesheet" href="//fonts.example/x.css">')
    _page(tmp_path, "missing.html", body='<img src="_images/gone.png">')
    _page(tmp_path, "glue.html", body="<p>No key 'x' found in glue data for this document.</p>")
    _page(tmp_path, "ref.html", body="<p>see <span>??</span></p>")
    _page(tmp_path, "role.html", body="<p>{numref}<code>fig-x</code></p>")
    _page(tmp_path, "_static/template.html", head='<script src="{{ pathto(x) }}"></script>')
    (tmp_path / "_static" / "fonts.css").write_text(
        "/* see https://example.org */ @import url('https://fonts.example/css?family=x');\n"
        "svg { background: url(data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'/>) }")
    problems = book.audit_html(tmp_path)
    by_page = {}
    for p in problems:
        by_page.setdefault(p.split(":")[0], []).append(p)
    assert "ok.html" not in by_page and "_static/template.html" not in by_page
    assert len(by_page["cdn.html"]) == 2
    assert "missing file" in by_page["missing.html"][0]
    assert "glue" in by_page["glue.html"][0]
    assert "??" in by_page["ref.html"][0]
    assert "{numref}" in by_page["role.html"][0]
    assert len(by_page["_static/fonts.css"]) == 1 and "fonts.example" in by_page["_static/fonts.css"][0]


def test_fetch_mathjax_uses_a_folder_given_by_environment(tmp_path, monkeypatch):
    (tmp_path / "tex-mml-svg.js").write_text("// mathjax")
    monkeypatch.setenv("PRUNECXR_MATHJAX", str(tmp_path))
    assert book.fetch_mathjax() == tmp_path
    monkeypatch.setenv("PRUNECXR_MATHJAX", str(tmp_path / "nope"))
    with pytest.raises(book.BookError, match="no tex-mml-svg.js"):
        book.fetch_mathjax()


def test_fetch_mathjax_rejects_a_wrong_checksum(tmp_path):
    wheel = tmp_path / "x.whl"
    wheel.write_bytes(b"not mathjax")
    with pytest.raises(book.BookError, match="does not match the pinned"):
        book._checked(wheel, "0" * 64)


def test_sources_are_consistent():
    """Every chapter in the toc has a notebook, every notebook is in the toc, notebooks are
    committed without outputs and have exactly one literal-only parameters cell."""
    import ast

    import nbformat

    root = book.repo_root()
    toc = (root / "_toc.yml").read_text()
    for name in book.NOTEBOOKS:
        assert f"chapters/{name}" in toc
        nb = nbformat.read(root / "notebooks" / f"{name}.ipynb", as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, name
        for node in ast.parse(params[0].source).body:
            assert isinstance(node, ast.Assign), (name, ast.dump(node))
            ast.literal_eval(node.value)  # literals only
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, name
        assert any("# NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code")
    listed = set(re.findall(r"chapters/(\w+)", toc))
    assert listed == set(book.NOTEBOOKS)


# ------------------------------------------------------------------------- the built book

def build_once(base: Path, results_dir: Path) -> book.BookBuild:
    """Build the smoke book under ``base`` once per session (a later call reuses it)."""
    out = base / "smoke-book"
    marker = out / "build.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        return book.BookBuild(html=Path(info["html"]), source=Path(info["source"]),
                              results_dir=Path(info["results_dir"]), timings=info["timings"])
    built = book.build_book(profile="smoke", out=out, progress=False)
    assert built.results_dir == results_dir
    marker.write_text(json.dumps({"html": str(built.html), "source": str(built.source),
                                  "results_dir": str(built.results_dir),
                                  "timings": built.timings}))
    return built


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory, smoke_results) -> book.BookBuild:
    return build_once(tmp_path_factory.getbasetemp(), smoke_results)


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.src = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.src.append(dict(attrs).get("src", ""))


@pytest.mark.slow
def test_book_builds_warning_free_and_offline(smoke_book):
    html = smoke_book.html
    assert (html / "index.html").is_file()
    assert book.audit_html(html) == []
    assert (html / "_static" / "mathjax" / "tex-mml-svg.js").is_file()
    intro = (html / "book" / "intro.html").read_text()
    assert 'src="../_static/mathjax/tex-mml-svg.js' in intro
    assert "mathjax@" not in intro and "cdn.jsdelivr" not in intro
    # The build log holds no warning (the build runs with warnings as errors anyway).
    log = (html.parent / "jupyter-book.log").read_text()
    assert "WARNING" not in log


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_chapter_html_shows_its_figures(smoke_book, page):
    assert set(FIGURES) <= set(PAGES), f"pages not in the book: {set(FIGURES) - set(PAGES)}"
    path = smoke_book.html / page
    assert path.is_file(), f"{page} was not built"
    text = path.read_text()
    parser = _Images()
    parser.feed(text)
    figures = [s for s in parser.src if "_images/" in s]
    assert len(figures) >= FIGURES.get(page, 0), f"{page}: {len(figures)} figures"
    for src in figures:
        target = (path.parent / src).resolve()
        assert target.is_file() and target.stat().st_size > 1000, src
    assert book.audit_html(smoke_book.html, [page]) == []
    if page.startswith("chapters/q"):
        assert 'class="caption"' in text or "<figcaption" in text


@pytest.mark.slow
def test_glued_numbers_match_the_store(smoke_book, smoke_store):
    intro = (smoke_book.html / "book" / "intro.html").read_text()
    text = re.sub(r"<[^>]+>", "", intro)
    assert f"{len(smoke_store.labels):,} test images" in text
    assert f"{len(smoke_store.seeds)}\nresnet18" in text or f"{len(smoke_store.seeds)} resnet18" in text
    assert "smoke" in text and smoke_store.dataset in text
    q4 = re.sub(r"<[^>]+>", "", (smoke_book.html / "chapters/q4_pies.html").read_text())
    assert "No human responses are included in this build." in q4
    assert "ground truth of a synthetic dataset" in q4


@pytest.mark.slow
def test_timings_recorded(smoke_book):
    t = smoke_book.timings
    assert set(t["notebooks"]) == set(book.NOTEBOOKS)
    assert t["jupyter_book"] > 0


# --------------------------------------------------------------------------- papermill reruns

def _papermill(name, out, parameters, cwd):
    import papermill as pm

    return pm.execute_notebook(str(book.repo_root() / "notebooks" / f"{name}.ipynb"), str(out),
                               parameters=parameters, kernel_name="python3", progress_bar=False,
                               cwd=str(cwd))


def _outputs(nb_path) -> str:
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    return "\n".join("".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))


@pytest.mark.slow
def test_rerun_a_chapter_with_other_parameters(tmp_path, prunecxr_home):
    """papermill, as the intro documents it: a chapter on a different configuration computes
    its own results (here a tiny population) and reports them."""
    overrides = ["population=2", "max_epochs=1", "methods=l1", "sparsities=0,0.5,0.9",
                 "data.n_images=300"]
    out = tmp_path / "q1_small.ipynb"
    _papermill("q1_overall", out, {"profile": "smoke", "overrides": overrides}, tmp_path)
    text = _outputs(out)
    assert "2 models, methods l1" in text
    assert "dense median mAP:" in text


@pytest.mark.slow
@pytest.mark.parametrize("name, parameters, message", [
    ("q1_overall", {"profile": "fastest"}, "profile must be one of"),
    ("q2_forgetting", {"profile": "smoke", "method": "lasso"}, "parameter method must be one of"),
    ("q4_pies", {"profile": "smoke", "sparse": 0.93}, "is not a sparsity level"),
])
def test_bad_parameter_fails_early_with_a_clear_message(tmp_path, name, parameters, message):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as err:
        _papermill(name, tmp_path / "bad.ipynb", parameters, tmp_path)
    assert message in str(err.value)
    # It fails in the cell right after the parameters, before any analysis ran.
    assert err.value.exec_count <= 4


@pytest.mark.slow
def test_q4_analyses_reader_responses_when_given(tmp_path, smoke_store):
    """The reader-study branch of Q4: a packet drawn from the smoke results, one answer file per
    reader, and the chapter rerun with ``study_key`` and ``responses`` reports their analysis."""
    import csv

    from prunecxr.study import RESPONSE_COLUMNS, make_packet, read_key

    packet = make_packet(smoke_store, tmp_path / "packet", readers=2, per_reader=4, seed=1,
                         image_size=32)
    key = read_key(packet)[0]
    paths = []
    for name, grp in key.groupby("reader"):
        path = tmp_path / f"{name}.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(RESPONSE_COLUMNS)
            for r in grp.sort_values("position").itertuples():
                w.writerow([name, r.packet_id, r.item, "no" if r.is_pie else "yes",
                            2 if r.is_pie else 4, 4 if r.is_pie else 2])
        paths.append(str(path))
    out = tmp_path / "q4_readers.ipynb"
    _papermill("q4_pies", out, {"profile": "smoke", "study_key": str(packet),
                                "responses": paths}, tmp_path)
    import nbformat

    nb = nbformat.read(out, as_version=4)
    shown = json.dumps([o for c in nb.cells if c.cell_type == "code" for o in c.outputs])
    assert "The analysis below uses 8 answers from 2 reader(s), 4 of them about PIEs." in shown
    assert "No human responses are included" not in shown
    (figure_cell,) = [c for c in nb.cells if c.metadata.get("mystnb", {}).get("figure", {})
                      .get("name") == "fig-q4-readers"]
    assert any("image/png" in o.get("data", {}) for o in figure_cell.outputs)


# ------------------------------------------------- issue 13: what a reader meets, and its parts

def test_machine_paths_flags_absolute_paths_of_the_build_machine(tmp_path):
    _page(tmp_path, "clean.html", body="<p>results smoke-phantom-1a2b: profile smoke</p>")
    _page(tmp_path, "home.html", body="<pre>Results('/home/ada/.cache/prunecxr/results/x')</pre>")
    _page(tmp_path, "given.html", body="<p>/srv/checkout/prunecxr/x.py:3: UserWarning</p>")
    problems = book.machine_paths(tmp_path, ["/srv/checkout"])
    pages = sorted(p.split(":")[0] for p in problems)
    assert pages == ["given.html", "home.html"]


def test_paper_values_have_sources_and_no_chapter_types_them():
    """Every external number has a source; no chapter's prose (notebook markdown, book pages)
    types one of them: they are glued from prunecxr.paper."""
    import nbformat

    from prunecxr.paper import paper_table

    table = paper_table()
    assert table["key"].is_unique and table["source"].str.len().gt(0).all()
    numbers = set()
    for text in table["text"]:
        numbers |= set(re.findall(r"(?<![\w.])-?\d+(?:[.,]\d+)+(?![\w.])", text))
    numbers -= {"0.95", "0.05", "0.01"}  # the sparsity grid's ends and the weight threshold
    root = book.repo_root()
    sources = {p.name: p.read_text() for p in (root / "book").glob("*.md")}
    for name in book.NOTEBOOKS:
        nb = nbformat.read(root / "notebooks" / f"{name}.ipynb", as_version=4)
        sources[name] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    typed = {(name, n) for name, text in sources.items() for n in numbers
             if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w.])", text)}
    assert not typed, f"paper numbers typed into chapters: {sorted(typed)}"


def test_rerun_commands_come_from_the_notebooks_parameters():
    text = book.rerun_commands("q2_forgetting")
    for dataset in ("nih-cxr-lt", "mimic-cxr-lt", "csv"):
        assert f"-p dataset {dataset}" in text
    assert "notebooks/q2_forgetting.ipynb" in text
    assert "n_curves 6" in text and "profile" not in text.split("defaults:")[1]


def test_figures_are_saved_as_png_svg_and_pdf_and_linked(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    paths = book.save_figure("fig_x", fig, folder=tmp_path / "figures")
    assert sorted(paths) == ["pdf", "png", "svg"]
    for fmt in paths:
        assert (tmp_path / "figures" / f"fig_x.{fmt}").stat().st_size > 500
    assert 'href="' in book.chapter.figure_links({"svg": "figures/fig_x.svg"})


def test_nbstripout_filter_keeps_outputs_out_of_git(tmp_path):
    """The set-up's git filter: an executed notebook staged with ``git add`` has no outputs in
    ``git diff --cached`` (the filter is what `make setup` registers)."""
    import shutil
    import subprocess
    import sys

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from ci import require_module, require_program

    require_module("nbstripout", "make setup installs it into .venv")
    require_program("git", "install git")
    root = book.repo_root()
    repo = tmp_path / "clone"
    (repo / "notebooks").mkdir(parents=True)
    run = lambda *a: subprocess.run(a, cwd=repo, check=True, capture_output=True, text=True)
    run("git", "init", "-q")
    shutil.copy(root / ".gitattributes", repo / ".gitattributes")
    run("sh", str(root / "scripts" / "git_filters.sh"), sys.executable)
    cell = new_code_cell("print(42)", execution_count=3)
    cell.outputs = [new_output("stream", name="stdout", text="OUTPUT-THAT-MUST-NOT-BE-COMMITTED\n")]
    nbformat.write(new_notebook(cells=[cell]), repo / "notebooks" / "q9.ipynb")
    run("git", "add", "notebooks/q9.ipynb")
    staged = run("git", "diff", "--cached").stdout
    assert "print(42)" in staged
    assert "OUTPUT-THAT-MUST-NOT-BE-COMMITTED" not in staged and '"execution_count": 3' not in staged


@pytest.mark.slow
def test_no_page_shows_a_path_of_the_build_machine(smoke_book):
    root = book.repo_root()
    assert book.machine_paths(smoke_book.html, [root, smoke_book.results_dir,
                                                smoke_book.html.parent]) == []


@pytest.mark.slow
def test_landing_page_shows_the_study_at_a_glance(smoke_book):
    text = (smoke_book.html / "book" / "intro.html").read_text()
    assert 'class="dataframe verdict-table"' in text
    assert "verdict-holds" in text or "verdict-fails" in text
    plain = re.sub(r"<[^>]+>", "", text)  # code blocks are syntax-highlighted
    assert "make book" in plain and "make test" in plain and "make lab" in plain
    assert "@inproceedings{holste2023pruning" in plain
    for fmt in ("png", "svg", "pdf"):
        assert f'href="../chapters/figures/fig_q2_curves.{fmt}"' in text
        assert (smoke_book.html / "chapters" / "figures" / f"fig_q2_curves.{fmt}").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", book.NOTEBOOKS)
def test_chapter_leads_with_its_answer_and_ends_with_the_rerun_commands(smoke_book, name):
    page = smoke_book.html / "chapters" / f"{name}.html"
    text = page.read_text()
    main = text[text.find("<article"):]  # the page body (not the print-only header)
    h1 = main.find("<h1")
    box = main.find("answer-box")
    code = re.search(r'class="cell[\s"]', main).start()
    assert 0 < h1 < box < code, f"{name}: the answer box must come before any code"
    assert "In this build" in main[box:box + 400]
    plain = re.sub(r"<[^>]+>", "", main)  # the shell block is syntax-highlighted
    assert "Rerun this chapter" in plain and f"notebooks/{name}.ipynb" in plain
    assert "-p dataset mimic-cxr-lt" in plain and "-p dataset csv" in plain
    for href in re.findall(r'href="(figures/[^"]+)"', main):
        assert (page.parent / href).is_file(), href
    # machinery folded: the parameters cells are behind a toggle
    assert "tag_parameters" in main and "tag_injected-parameters" in main
    assert re.search(r'tag_parameters[^"]*tag_hide-input|tag_hide-input[^"]*tag_parameters', main)
