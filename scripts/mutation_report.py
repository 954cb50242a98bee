"""Summarise a finished ``mutmut run`` (``make mutation``): score per module, surviving mutants.

Reads mutmut 3's per-file results (``mutants/<path>.meta``), prints one line per mutated module
(killed, survived, timeouts, mutants no test reached, score = killed / checked) and writes the
same table plus the diff of every surviving mutant (``mutmut show``) to ``--out``.

Usage: ``python scripts/mutation_report.py [--out mutation-report.txt] [--no-diffs]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

# mutmut 3's exit-code meanings (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 37: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", -9: "segfault", -11: "segfault", None: "not checked"}


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


def table(results: dict[str, dict[str, str]]) -> str:
    head = (f"{'module':36} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} "
            f"{'no tests':>8} {'unchecked':>9} {'score':>6}")
    lines = [head, "-" * len(head)]
    total = Counter()
    for module, status in results.items():
        c = Counter(status.values())
        c["mutants"] = len(status)
        total.update(c)
        lines.append(_row(module, c))
    lines.append("-" * len(head))
    lines.append(_row("all", total))
    lines.append("score = (killed + timeout) / (killed + timeout + survived); mutants no test "
                 "reaches and unchecked ones are not in the score")
    return "\n".join(lines)


def _row(name: str, c: Counter) -> str:
    caught = c["killed"] + c["timeout"]
    checked = caught + c["survived"]
    score = f"{caught / checked:.1%}" if checked else "n/a"
    return (f"{name:36} {c['mutants']:>7} {c['killed']:>6} {c['survived']:>8} {c['timeout']:>7} "
            f"{c['no tests']:>8} {c['not checked']:>9} {score:>6}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("mutation-report.txt"))
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without diffs")
    args = parser.parse_args(argv)
    results = collect()
    if not results:
        print("no mutmut results under mutants/ (run `make mutation` first)", file=sys.stderr)
        return 1
    summary = table(results)
    print(summary)
    parts = [summary, ""]
    mutmut = Path(sys.executable).with_name("mutmut")
    for module, status in results.items():
        survivors = [n for n, s in status.items() if s in ("survived", "no tests", "suspicious")]
        if not survivors:
            continue
        parts.append(f"\n## {module}: {len(survivors)} surviving or unreached mutant(s)\n")
        for name in survivors:
            if args.no_diffs:
                parts.append(f"{name}: {status[name]}")
                continue
            shown = subprocess.run([str(mutmut), "show", name], capture_output=True, text=True)
            parts.append(shown.stdout.strip() or f"# {name}: {status[name]} (no diff: "
                                                  f"{shown.stderr.strip()[-200:]})")
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
