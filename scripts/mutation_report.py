"""Summarise a ``mutmut run`` (``make mutation``): score per module, and every surviving mutant
either accepted (listed in ``tests/mutation_accepted.toml`` with the reason) or unexplained.

Reads mutmut 3's per-file results (``mutants/<path>.meta``), prints one line per mutated module
(killed, survived, timeouts, mutants no test reached, unchecked, score = killed / (killed +
survived), and how many survivors are accepted or unexplained) and writes the same table, the
accepted survivors by reason, and the diff of every unexplained one to ``--out``.

An accepted entry names mutants by pattern (``fnmatch`` on mutmut's names, e.g.
``prunecxr.train.x_describe__mutmut_*``), optionally the statuses it accepts and a check on the
code (``strings_only``, ``styling_only``, ``float_case_only``, ``astype_none_only``), a
``kind`` (``equivalent``: the program behaves the same; ``presentation``: only a figure's
styling or a text's wording changes, which the fast tests do not pin and the chapters' nbval
references do; ``unreached``: run only where mutmut cannot follow, a subprocess, a GPU or a
chapter) and the ``reason``. A survivor no entry
matches is unexplained: a test to write, or an entry to add after reading its diff.

Usage: ``python scripts/mutation_report.py [--out mutation-report.txt] [--no-diffs]``;
``--markdown`` prints README's table, ``--rerun [MODULE ...]`` the mutants worth rerunning.
"""

from __future__ import annotations

import argparse
import ast
import copy
import fnmatch
import json
import sys
import tomllib
from collections import Counter
from functools import lru_cache
from pathlib import Path

# mutmut 3's exit-code meanings (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 37: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", -9: "segfault", -11: "segfault", None: "not checked"}
OPEN = ("survived", "no tests", "suspicious")   # what a test or an accepted entry must explain
KINDS = ("equivalent", "presentation", "unreached")
ACCEPTED = Path("tests/mutation_accepted.toml")
# Keyword arguments of plotting calls that change how a figure looks, not what it shows.
STYLE_KEYWORDS = frozenset({
    "alpha", "bbox_inches", "c", "capsize", "cmap", "color", "colors", "dpi", "edgecolor",
    "edgecolors", "elinewidth", "facecolor", "figsize", "fontsize", "fontweight", "frameon", "ha",
    "label", "labelsize", "linestyle", "linestyles", "linewidth", "linewidths", "loc", "ls", "lw",
    "marker", "markeredgecolor", "markerfacecolor", "markersize", "mec", "mfc", "ms", "pad",
    "rotation", "textcoords", "title", "va", "xlabel", "xytext", "ylabel", "zorder"})
# Calls whose positional arguments are text drawn on a figure.
TEXT_CALLS = frozenset({"annotate", "legend", "set_title", "set_xlabel", "set_xticklabels",
                        "set_ylabel", "set_yticklabels", "suptitle", "text"})


def collect(root: Path = Path("mutants")) -> dict[str, dict[str, str]]:
    """{module path: {mutant name: status}} for every mutated file."""
    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        if codes:
            module = meta.relative_to(root).as_posix()[: -len(".meta")]
            out[module] = {name: STATUS.get(code, "suspicious") for name, code in codes.items()}
    return out


def load_accepted(path: Path = ACCEPTED) -> list[dict]:
    """The accepted entries, each checked: ``mutants`` (patterns), ``kind``, ``reason``."""
    entries = tomllib.loads(path.read_text()).get("accepted", []) if path.exists() else []
    for i, e in enumerate(entries, 1):
        missing = {"mutants", "kind", "reason"} - set(e)
        if (missing or e["kind"] not in KINDS or not e["reason"].strip()
                or not set(e.get("status", OPEN)) <= set(OPEN)):
            raise ValueError(f"{path}: entry {i} needs mutants, a kind in {KINDS}, a reason "
                             f"and statuses (if any) in {OPEN} (has {sorted(e)}, kind "
                             f"{e.get('kind')!r})")
    return entries


def explain(name: str, status: str, entries: list[dict], module: str = "") -> dict | None:
    """The first accepted entry whose patterns match the mutant ``name`` (and whose optional
    ``status`` list holds its status: an entry for unreached mutants does not hide survivors
    once a test reaches them; with ``strings_only`` or ``styling_only``, only mutants that
    pass that check), or None."""
    return next((e for e in entries if status in e.get("status", OPEN)
                 and any(fnmatch.fnmatchcase(name, p) for p in e["mutants"])
                 and (not e.get("strings_only") or strings_only(name, module))
                 and (not e.get("styling_only") or styling_only(name, module))
                 and (not e.get("float_case_only") or float_case_only(name, module))
                 and (not e.get("astype_none_only") or astype_none_only(name, module))), None)


def strings_only(name: str, module: str, root: Path = Path("mutants")) -> bool:
    """Whether mutant ``name`` differs from its original function (both in mutmut's copy of
    ``module``) only in the text of string literals (f-strings' text included)."""
    return _same(name, module, root, _blank)


def styling_only(name: str, module: str, root: Path = Path("mutants")) -> bool:
    """Whether mutant ``name`` differs from its original function only in :data:`STYLE_KEYWORDS`
    arguments (a changed, dropped or added colour, width, label or font size) and in the strings
    a :data:`TEXT_CALLS` call draws; a string anywhere else (a column, a method's name) counts."""
    return _same(name, module, root, _Unstyle().visit)


def float_case_only(name: str, module: str, root: Path = Path("mutants")) -> bool:
    """Whether mutant ``name`` differs from its original only in the case of a string that
    ``float`` parses (``float("NAN")`` is ``float("nan")``)."""
    return _same(name, module, root, _FloatLower().visit)


def astype_none_only(name: str, module: str, root: Path = Path("mutants")) -> bool:
    """Whether mutant ``name`` differs from its original only where ``astype(float)`` became
    ``astype(None)``: numpy and pandas both read a None dtype as float64."""
    return _same(name, module, root, _AstypeFloat().visit)


def _same(name: str, module: str, root: Path, normalise) -> bool:
    """Whether the mutant and its original are one function once ``normalise`` has rewritten
    both (their names aside)."""
    functions = _functions(root / module)
    short = name.rsplit(".", 1)[-1]
    original = functions.get(short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
    mutant = functions.get(short)
    if original is None or mutant is None:
        return False

    def shape(function: ast.FunctionDef) -> str:
        function = copy.deepcopy(function)
        function.name = ""
        return ast.dump(normalise(function))

    return shape(original) == shape(mutant)


@lru_cache(maxsize=None)
def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text()) if path.exists() else ast.Module(body=[], type_ignores=[])
    return {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}


class _Unstyle(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        node.keywords = [k for k in node.keywords if k.arg not in STYLE_KEYWORDS]
        if isinstance(node.func, ast.Attribute) and node.func.attr in TEXT_CALLS:
            node.args = [_blank(a, none=True) for a in node.args]
        return node


class _AstypeFloat(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if (isinstance(node.func, ast.Attribute) and node.func.attr == "astype"
                and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                and node.args[0].value is None):
            node.args = [ast.Name(id="float", ctx=ast.Load())]
        return node


class _FloatLower(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "float":
            for a in node.args:
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    a.value = a.value.lower()
        return node


def _blank(node: ast.AST, none: bool = False) -> ast.AST:
    """Every string in ``node`` made '' (and None too, with ``none``: no text drawn)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and (isinstance(sub.value, str)
                                              or (none and sub.value is None)):
            sub.value = ""
        elif isinstance(sub, ast.JoinedStr):  # an f-string: its text parts, however split
            sub.values = [v for v in sub.values if not isinstance(v, ast.Constant)]
    return node


def diff(name: str, module: str) -> str:
    """The mutant's unified diff against the original function (what ``mutmut show`` prints,
    computed in this process: one subprocess per survivor took minutes)."""
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        return get_diff_for_mutant(name, path=module)
    except Exception as e:  # a stale mutants/ folder: say so, keep the rest of the report
        return f"(no diff: {type(e).__name__}: {e})"


def counts(results: dict[str, dict[str, str]], entries: list[dict]) -> dict[str, Counter]:
    """Per module (and "all"): mutants, each status, and the open ones accepted or unexplained."""
    out, total = {}, Counter()
    for module, status in results.items():
        c = Counter(status.values())
        c["mutants"] = len(status)
        for name, s in status.items():
            if s in OPEN:
                c["accepted" if explain(name, s, entries, module) else "unexplained"] += 1
        out[module] = c
        total.update(c)
    out["all"] = total
    return out


def _score(c: Counter) -> str:
    checked = c["killed"] + c["survived"]
    return f"{c['killed'] / checked:.1%}" if checked else "n/a"


def table(results: dict[str, dict[str, str]], entries: list[dict]) -> str:
    head = (f"{'module':34} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} "
            f"{'no tests':>8} {'unchecked':>9} {'score':>6} {'accepted':>8} {'unexplained':>11}")
    lines = [head, "-" * len(head)]
    for name, c in counts(results, entries).items():
        if name == "all":
            lines.append("-" * len(head))
        lines.append(f"{name:34} {c['mutants']:>7} {c['killed']:>6} {c['survived']:>8} "
                     f"{c['timeout']:>7} {c['no tests']:>8} {c['not checked']:>9} "
                     f"{_score(c):>6} {c['accepted']:>8} {c['unexplained']:>11}")
    lines.append("score = killed / (killed + survived); timeouts (a mutant whose tests ran past "
                 "their limit: a loop, or a slow machine), mutants no test reaches and unchecked "
                 "ones are not in it; accepted and unexplained count the survivors and unreached "
                 "mutants (tests/mutation_accepted.toml)")
    return "\n".join(lines)


def to_rerun(results: dict[str, dict[str, str]], entries: list[dict],
             modules: list[str] | None = None) -> list[str]:
    """Mutants without a verdict worth keeping: unchecked, timed out, or open and unexplained
    (what a new test may now kill), in ``modules`` (e.g. ``store`` or ``analysis/pies``)."""
    wanted = {f"prunecxr/{m.removeprefix('prunecxr/').removesuffix('.py')}.py"
              for m in modules or []}
    return [name for module, status in results.items() if not wanted or module in wanted
            for name, s in status.items()
            if s in ("not checked", "timeout")
            or (s in OPEN and not explain(name, s, entries, module))]


def markdown(results: dict[str, dict[str, str]], entries: list[dict]) -> str:
    """README's table: one row per module (``prunecxr/`` and ``.py`` dropped) and the total."""
    lines = ["| module | mutants | done | killed | survived | timeout | score | no test reaches "
             "| accepted | unexplained |", "|---|" + "---:|" * 9]
    for name, c in counts(results, entries).items():
        short = name if name == "all" else f"`{name.removeprefix('prunecxr/')[:-3]}`"
        lines.append(f"| {short} | {c['mutants']} | {c['mutants'] - c['not checked']} | "
                     f"{c['killed']} | {c['survived']} | {c['timeout']} | {_score(c)} | "
                     f"{c['no tests']} | {c['accepted']} | {c['unexplained']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("mutation-report.txt"))
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without diffs")
    parser.add_argument("--markdown", action="store_true",
                        help="print README's table (markdown) instead of writing the report")
    parser.add_argument("--rerun", nargs="*", metavar="MODULE",
                        help="print the names of the mutants a rerun should test (unchecked, "
                             "timed out, or open and unexplained) in these modules (default: "
                             "all), for `make mutation MUTANTS=...`")
    args = parser.parse_args(argv)
    results = collect()
    if not results:
        print("no mutmut results under mutants/ (run `make mutation` first)", file=sys.stderr)
        return 1
    entries = load_accepted()
    if args.markdown:
        print(markdown(results, entries))
        return 0
    if args.rerun is not None:
        print(" ".join(to_rerun(results, entries, args.rerun)))
        return 0
    summary = table(results, entries)
    print(summary)
    parts = [summary, ""]
    for module, status in results.items():
        open_ = [n for n, s in status.items() if s in OPEN]
        if not open_:
            continue
        by_entry: dict[int, list[str]] = {}
        unexplained = []
        for name in open_:
            e = explain(name, status[name], entries, module)
            (by_entry.setdefault(entries.index(e), []) if e else unexplained).append(name)
        parts.append(f"\n## {module}: {len(unexplained)} unexplained, "
                     f"{len(open_) - len(unexplained)} accepted\n")
        for i, names in by_entry.items():
            parts.append(f"### accepted ({entries[i]['kind']}): {entries[i]['reason']}")
            parts.append("    " + " ".join(sorted(n.rsplit(".", 1)[-1] for n in names)))
        for name in unexplained:
            if args.no_diffs:
                parts.append(f"{name}: {status[name]}")
                continue
            parts.append(f"# {name}: {status[name]}\n{diff(name, module)}")
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
