"""``make mutation``'s report (scripts/mutation_report.py): mutmut's exit codes counted per
module, the score, and each surviving mutant either matched by an accepted entry of
tests/mutation_accepted.toml (with its kind and reason) or counted as unexplained; and the
accepted list itself is well formed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutation_report",
                                              REPO / "scripts" / "mutation_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def write_meta(root: Path, module: str, codes: dict) -> None:
    path = root / (module + ".meta")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes}))


def test_counts_score_and_accepted_survivors(tmp_path, monkeypatch):
    write_meta(tmp_path / "mutants", "prunecxr/a.py", {
        "prunecxr.a.x_f__mutmut_1": 1, "prunecxr.a.x_f__mutmut_2": 0,
        "prunecxr.a.x_plot__mutmut_1": 0, "prunecxr.a.x_g__mutmut_1": 33,
        "prunecxr.a.x_g__mutmut_2": 36, "prunecxr.a.x_g__mutmut_3": None})
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "mutation_accepted.toml").write_text(
        '[[accepted]]\nmutants = ["prunecxr.a.x_plot__mutmut_*"]\nkind = "presentation"\n'
        'reason = "styling"\n')
    monkeypatch.chdir(tmp_path)
    results = report.collect()
    assert results == {"prunecxr/a.py": {
        "prunecxr.a.x_f__mutmut_1": "killed", "prunecxr.a.x_f__mutmut_2": "survived",
        "prunecxr.a.x_plot__mutmut_1": "survived", "prunecxr.a.x_g__mutmut_1": "no tests",
        "prunecxr.a.x_g__mutmut_2": "timeout", "prunecxr.a.x_g__mutmut_3": "not checked"}}
    entries = report.load_accepted(Path("tests/mutation_accepted.toml"))
    assert report.explain("prunecxr.a.x_plot__mutmut_7", "survived", entries)["kind"] == \
        "presentation"
    assert report.explain("prunecxr.a.x_plotting__mutmut_7", "survived", entries) is None
    unreached = [{"mutants": ["prunecxr.a.*"], "status": ["no tests"], "kind": "unreached",
                  "reason": "r"}]
    assert report.explain("prunecxr.a.x_g__mutmut_1", "no tests", unreached)
    assert report.explain("prunecxr.a.x_g__mutmut_1", "survived", unreached) is None
    row = report.table(results, entries).splitlines()[2].split()
    # mutants killed survived timeout no-tests unchecked score accepted unexplained
    assert row == ["prunecxr/a.py", "6", "1", "2", "1", "1", "1", "33.3%", "1", "2"]
    assert report.to_rerun(results, entries, ["a"]) == [
        "prunecxr.a.x_f__mutmut_2", "prunecxr.a.x_g__mutmut_1", "prunecxr.a.x_g__mutmut_2",
        "prunecxr.a.x_g__mutmut_3"]
    assert report.to_rerun(results, entries, ["b"]) == []
    md = report.markdown(results, entries).splitlines()
    assert md[2] == "| `a` | 6 | 5 | 1 | 2 | 1 | 33.3% | 1 | 1 | 2 |"
    assert md[3] == "| all | 6 | 5 | 1 | 2 | 1 | 33.3% | 1 | 1 | 2 |"
    assert report.main(["--no-diffs", "--out", "r.txt"]) == 0
    text = Path("r.txt").read_text()
    assert "accepted (presentation): styling" in text and "x_plot__mutmut_1" in text
    assert "prunecxr.a.x_f__mutmut_2: survived" in text
    assert "prunecxr.a.x_g__mutmut_1: no tests" in text


def test_an_entry_without_a_reason_or_with_an_unknown_kind_is_refused(tmp_path):
    bad = tmp_path / "accepted.toml"
    bad.write_text('[[accepted]]\nmutants = ["x*"]\nkind = "boring"\nreason = "r"\n')
    with pytest.raises(ValueError, match="entry 1 needs"):
        report.load_accepted(bad)
    bad.write_text('[[accepted]]\nmutants = ["x*"]\nkind = "equivalent"\nreason = " "\n')
    with pytest.raises(ValueError, match="entry 1 needs"):
        report.load_accepted(bad)
    bad.write_text('[[accepted]]\nmutants = ["x*"]\nkind = "equivalent"\nreason = "r"\n'
                   'status = ["killed"]\n')
    with pytest.raises(ValueError, match="entry 1 needs"):
        report.load_accepted(bad)


def test_the_committed_accepted_list_is_well_formed():
    entries = report.load_accepted(REPO / "tests" / "mutation_accepted.toml")
    assert entries, "tests/mutation_accepted.toml lists no accepted survivor"
    for e in entries:
        assert all(p.startswith("prunecxr.") for p in e["mutants"]), e


def test_per_module_selection_names_existing_files_and_covers_every_mutated_module():
    import tomllib

    from conftest import mutation_test_files

    pyproject = REPO / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]
    selected = {Path(p).name for p in data["mutmut"]["pytest_add_cli_args_test_selection"]}
    for module, files in data["prunecxr"]["mutation_tests"].items():
        assert set(files) <= selected, (module, set(files) - selected)
    for path in data["mutmut"]["only_mutate"]:
        for source in REPO.glob(path):
            dotted = ".".join(source.relative_to(REPO).with_suffix("").parts)
            assert mutation_test_files(f"{dotted}.x_f__mutmut_1", pyproject), source
    assert mutation_test_files("prunecxr.analysis.pies.x_f__mutmut_3", pyproject) == [
        "test_analysis_pies.py", "test_q4_sound.py", "test_analysis_figures.py",
        "test_figure_data.py"]
    assert "test_claims.py" in mutation_test_files("prunecxr.claims.q4.x_f__mutmut_1", pyproject)
    assert mutation_test_files("prunecxr.store.xǁResultsǁsubset__mutmut_2", pyproject) == [
        "test_store_cache.py", "test_pipeline_micro.py"]
    assert mutation_test_files("prunecxr.store.x_f", pyproject) is None   # not a mutant
    assert mutation_test_files("", pyproject) is None


def test_a_mutants_tests_run_file_by_file_in_the_listed_order(monkeypatch):
    """tests/conftest.py under a mutant: other modules' tests are deselected, and the rest run
    grouped by file in the module's listed order, each file in source order, whatever order
    mutmut passed them in (returning to a file would build its module fixture again)."""
    import types

    from conftest import pytest_collection_modifyitems

    def item(name, line):
        return types.SimpleNamespace(fspath=f"/r/tests/{name}", location=(name, line, ""),
                                     id=(name, line))

    passed = [item("test_pipeline_micro.py", 90), item("test_train.py", 30),
              item("test_metrics.py", 5), item("test_pipeline_micro.py", 50),
              item("test_batches.py", 12), item("test_train.py", 10)]
    deselected = []
    hook = types.SimpleNamespace(pytest_deselected=lambda items: deselected.extend(items))
    config = types.SimpleNamespace(rootpath=REPO, hook=hook)
    items = list(passed)
    monkeypatch.setenv("MUTANT_UNDER_TEST", "")
    pytest_collection_modifyitems(config, items)             # an ordinary run: untouched
    assert items == passed and not deselected
    monkeypatch.setenv("MUTANT_UNDER_TEST", "prunecxr.train.x_augment__mutmut_3")
    pytest_collection_modifyitems(config, items)
    assert [i.id for i in items] == [("test_train.py", 10), ("test_train.py", 30),
                                     ("test_batches.py", 12), ("test_pipeline_micro.py", 50),
                                     ("test_pipeline_micro.py", 90)]
    assert [i.id for i in deselected] == [("test_metrics.py", 5)]


def test_mutmut_stats_credit_each_test_of_a_shared_fixture_file(monkeypatch):
    """tests/conftest.py under mutmut's stats run: a function reached by one test of a
    ``mutation_whole_files`` file is credited to the whole file; other files are left alone.
    (A stand-in for mutmut's state: mutmut is installed only by ``make mutation``.)"""
    import sys
    import types

    from conftest import pytest_sessionfinish

    ladder = ["tests/test_pipeline_micro.py::a", "tests/test_pipeline_micro.py::b"]
    metrics = ["tests/test_metrics.py::c", "tests/test_metrics.py::d"]
    fake = types.SimpleNamespace(
        duration_by_test=dict.fromkeys(ladder + metrics, 1.0),
        tests_by_mangled_function_name={"f": {ladder[0]}, "g": {metrics[0]}})
    package, module = types.ModuleType("mutmut"), types.ModuleType("mutmut.state")
    module.state = lambda: fake
    monkeypatch.setitem(sys.modules, "mutmut", package)
    monkeypatch.setitem(sys.modules, "mutmut.state", module)
    session = types.SimpleNamespace(config=types.SimpleNamespace(rootpath=REPO))
    monkeypatch.setenv("MUTANT_UNDER_TEST", "")
    pytest_sessionfinish(session)                     # not the stats run: nothing changes
    assert fake.tests_by_mangled_function_name == {"f": {ladder[0]}, "g": {metrics[0]}}
    monkeypatch.setenv("MUTANT_UNDER_TEST", "stats")
    pytest_sessionfinish(session)
    assert fake.tests_by_mangled_function_name == {"f": set(ladder), "g": {metrics[0]}}


def _original_and_mutant(root, signature: str, old: str, new: str) -> None:
    """pkg/m.py under ``root`` as mutmut writes it: ``x_f__mutmut_orig`` with body ``old`` and
    its mutant ``x_f__mutmut_1`` with body ``new``."""
    code = f"def x_f__mutmut_orig({signature}):\n    {{}}\n"
    (root / "pkg").mkdir()
    (root / "pkg" / "m.py").write_text(
        code.format(old) + code.format(new).replace("__mutmut_orig", "__mutmut_1"))


@pytest.mark.parametrize("old, new, expected", [
    ('return f"met at {w}"', 'return f"XXmet at {w}XX"', True),
    ('verb = "met" if ok else "not met"', 'verb = "MET" if ok else "not met"', True),
    ('return ("Resampling the " +\n            "rest")', 'return ("XXResampling the XX" +\n            "rest")', True),
    ('verb = "met" if ok else "not met"', 'verb = "met" if not ok else "not met"', False),
    ('ax.plot(x, y, color="k")', 'ax.plot(x, color="k")', False),
    ('d = {"seed": s}', 'd = {"seed": None}', False),
    ('return "text"', 'return None', False),
    ('n = 1', 'n = 1', True),   # no change at all: the same function
])
def test_strings_only_tells_a_literals_text_from_code(tmp_path, old, new, expected):
    _original_and_mutant(tmp_path, "x, y, w, ok, s, ax", old, new)
    assert report.strings_only("pkg.m.x_f__mutmut_1", "pkg/m.py", root=tmp_path) is expected
    assert not report.strings_only("pkg.m.x_g__mutmut_1", "pkg/m.py", root=tmp_path)


def test_styling_only_allows_style_keywords_and_drawn_text_alone(tmp_path):
    """A mutant of a figure function is styling only when nothing but a style keyword or the
    text of a text-drawing call changed; a data column, a plotted array or a condition counts."""
    original = """
def x_f__mutmut_orig(df, ax):
    ax.plot(df["epoch"], df["loss"], color="red", lw=1.0)
    ax.set_xlabel("epoch")
    return ax
"""
    mutants = {
        1: ('color="XXredXX", lw=1.0', True), 2: ('lw=2.0', True), 3: ('color=None, lw=1.0', True),
        4: ('color="red", lw=1.0, alpha=None', True),
    }
    body = original
    for i, (kwargs, _) in mutants.items():
        body += original.replace("__mutmut_orig", f"__mutmut_{i}").replace(
            'color="red", lw=1.0', kwargs)
    changed = {5: ('ax.set_xlabel("epoch")', "ax.set_xlabel(None)", True),
               6: ('df["epoch"], df["loss"]', 'df["loss"]', False),
               7: ('df["loss"]', 'df["XXlossXX"]', False),
               8: ("return ax", "return None", False)}
    for i, (old, new, _) in changed.items():
        body += original.replace("__mutmut_orig", f"__mutmut_{i}").replace(old, new)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(body)
    expect = {i: ok for i, (_, ok) in mutants.items()} | {i: ok for i, (*_, ok) in changed.items()}
    got = {i: report.styling_only(f"pkg.m.x_f__mutmut_{i}", "pkg/m.py", root=tmp_path)
           for i in expect}
    assert got == expect
    assert not report.styling_only("pkg.m.x_g__mutmut_1", "pkg/m.py", root=tmp_path)


@pytest.mark.parametrize("old, new, expected", [
    ('float("nan")', 'float("NAN")', True),
    ('float("inf")', 'float("INF")', True),
    ('float("nan")', 'float("XXnanXX")', False),         # not a float any more
    ('float("nan")', 'str("NAN")', False),
    ('s.lower() == "nan"', 's.lower() == "NAN"', False),  # a comparison, not float's parsing
])
def test_float_case_only_accepts_only_the_case_of_floats_text(tmp_path, old, new, expected):
    _original_and_mutant(tmp_path, "s", f"return {old}", f"return {new}")
    assert report.float_case_only("pkg.m.x_f__mutmut_1", "pkg/m.py", root=tmp_path) is expected


@pytest.mark.parametrize("old, new, expected", [
    ("x.astype(float)", "x.astype(None)", True),
    ("x.astype(float).mean()", "x.astype(None).mean()", True),
    ("x.astype(int)", "x.astype(None)", False),              # int -> float64 changes values
    ("np.asarray(x, dtype=float)", "np.asarray(x, dtype=None)", False),   # keeps x's dtype
    ("x.astype(float)", "x.astype(float, copy=None)", False),
])
def test_astype_none_only_accepts_only_a_float_astype(tmp_path, old, new, expected):
    _original_and_mutant(tmp_path, "x", f"return {old}", f"return {new}")
    assert report.astype_none_only("pkg.m.x_f__mutmut_1", "pkg/m.py", root=tmp_path) is expected
