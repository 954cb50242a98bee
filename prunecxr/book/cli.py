"""The book's command line: ``python -m prunecxr.book [build|refs|mathjax] ...``.

Kept apart from :mod:`.build` so that the build and the nbval references (:mod:`.refs`, which
executes chapters through the build) do not import each other.
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from .assets import fetch_mathjax
from .build import build_book
from .errors import BookError
from .refs import regenerate_nbval_refs
from .toc import NOTEBOOKS


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prunecxr.book [build|refs|mathjax] ...`` (the CLI's book is ``build``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m prunecxr.book", description="Build the book, its nbval references or fetch MathJax.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compute results, execute the notebooks, build the HTML")
    b.add_argument("--profile", default="default")
    b.add_argument("--dataset", default=None)
    b.add_argument("--data-dir", default=None)
    b.add_argument("--results-dir", default=None)
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    b.add_argument("--out", default="_build")
    r = sub.add_parser("refs", aliases=["nbval-refs"],
                       help="re-execute the nbval reference notebooks (smoke profile)")
    r.add_argument("names", nargs="*", help=f"some of {', '.join(NOTEBOOKS)} (default: all)")
    m = sub.add_parser("mathjax", help="fetch MathJax into the cache and print its folder")
    m.add_argument("--route", default="auto", choices=["auto", "pypi", "npm"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            built = build_book(args.profile, args.results_dir, args.out, args.overrides,
                               dataset=args.dataset, data_dir=args.data_dir)
            print(json.dumps({k: v for k, v in built.timings.items()}, indent=1, default=str))
        elif args.command in ("refs", "nbval-refs"):
            for path in regenerate_nbval_refs(notebooks=args.names or None):
                print(path)
        else:
            print(fetch_mathjax(route=args.route))
    except (ValueError, BookError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
