"""Command line for the reader study: ``python -m prunecxr study {packet,analyze,truth}``.

``add_study_commands(subparsers)`` hooks a ``study`` command into the main CLI's
subparsers; ``python -m prunecxr.study ...`` runs the same subcommands on their own. Every
handler takes the parsed ``args``, returns an exit code, and prints a one-paragraph error
(naming the file, row or option) instead of a traceback for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_study_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``study`` (with ``packet``, ``analyze``, ``truth``) to an existing CLI."""
    study = subparsers.add_parser(
        "study", help="reader study: build blinded packets, import and analyse answers",
        description="Reader study (paper Sec. 2.3): blinded packets for radiologists, then "
                    "PIE vs non-PIE statistics of their answers.")
    _add_subcommands(study.add_subparsers(dest="study_command", required=True,
                                          metavar="{packet,analyze,truth}"))
    return study


def build_parser() -> argparse.ArgumentParser:
    """The standalone parser behind ``python -m prunecxr.study``."""
    parser = argparse.ArgumentParser(prog="python -m prunecxr.study",
                                     description="Reader study: packets, analysis, ground truth.")
    _add_subcommands(parser.add_subparsers(dest="study_command", required=True,
                                           metavar="{packet,analyze,truth}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def _add_pie_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", required=True, type=Path,
                   help="finished results folder (python -m prunecxr run)")
    p.add_argument("--method", default="l1", help="pruning method defining PIEs (default l1)")
    p.add_argument("--dense", type=float, default=0.0, help="dense sparsity (default 0.0)")
    p.add_argument("--sparse", type=float, default=0.9, help="pruned sparsity (default 0.9)")
    p.add_argument("--fraction", type=float, default=0.05,
                   help="fraction of test images that are PIEs (default 0.05)")


def _add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("packet", help="write blinded per-reader forms, images and a key",
                       description="Sample disjoint, balanced image sets (half PIEs) and write "
                                   "OUT/readers/reader_NN/reader_NN.html (offline forms) and "
                                   "OUT/key/ (keep private).")
    _add_pie_options(p)
    p.add_argument("--out", required=True, type=Path, help="packet folder to create")
    p.add_argument("--readers", type=int, default=6, help="number of readers (default 6)")
    p.add_argument("--per-reader", type=int, default=40,
                   help="images per reader, half PIEs (default 40)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--image-size", type=int, default=384,
                   help="displayed image size in px (default 384)")
    p.add_argument("--force", action="store_true", help="replace an existing packet at --out")
    p.set_defaults(func=cmd_packet)

    a = sub.add_parser("analyze", help="validate answer CSVs and compare PIEs vs non-PIEs",
                       description="Validate every responses file against the key (nothing is "
                                   "written unless all are valid), then write the tidy table, "
                                   "the statistics and Figure 6.")
    a.add_argument("--key", required=True, type=Path,
                   help="the packet folder, its key/ folder, or key.json")
    a.add_argument("--responses", required=True, nargs="+", type=Path, metavar="CSV",
                   help="one answer file per reader")
    a.add_argument("--out", type=Path, help="folder for responses.csv, reader_study_stats.csv "
                                            "and figure6.png (default: print only)")
    a.set_defaults(func=cmd_analyze)

    t = sub.add_parser("truth", help="PIEs vs non-PIEs on the phantom's known truth",
                       description="The reader study's statistics on the generator's own "
                                   "label corruption, quality and difficulty (phantom only).")
    _add_pie_options(t)
    t.add_argument("--out", type=Path, help="folder for ground_truth_stats.csv")
    t.set_defaults(func=cmd_truth)


def _load_store(results_dir: Path):
    from .. import store
    return store.load(results_dir)


def _fail(exc: BaseException) -> int:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_packet(args: argparse.Namespace) -> int:
    from .packet import make_packet, read_key
    try:
        out = make_packet(_load_store(args.results_dir), args.out, readers=args.readers,
                          per_reader=args.per_reader, seed=args.seed, method=args.method,
                          dense=args.dense, sparse=args.sparse, fraction=args.fraction,
                          image_size=args.image_size, force=args.force)
    except (ValueError, OSError, KeyError) as exc:
        return _fail(exc)
    _, info, _ = read_key(out)
    print(f"wrote reader-study packet {out}: {args.readers} readers x {args.per_reader} images "
          f"({info['available']['pies']} PIEs available of {info['available']['n_test']})")
    for name, pk in info["packets"].items():
        print(f"  {name}: {out / pk['form']} (packet {pk['packet_id']})")
    print(f"  key (keep private): {out / 'key'}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .. import io
    from .responses import load_responses
    try:
        table = load_responses(args.key, args.responses)
        from ..analysis.readers import reader_study_stats
        stats = reader_study_stats(table)
        fig = None
        if args.out is not None:          # everything computed before anything is written
            from ..plots import pie_comparison_figure
            fig = pie_comparison_figure(stats)
    except (ValueError, OSError, KeyError) as exc:
        return _fail(exc)
    print(f"{len(table)} answers from {table['reader'].nunique()} reader(s) "
          f"({int(table['is_pie'].sum())} on PIEs)")
    print(stats.to_string(index=False))
    if fig is not None:
        import matplotlib.pyplot as plt
        out = Path(args.out)
        io.write_text(out / "responses.csv", table.to_csv(index=False))
        io.write_text(out / "reader_study_stats.csv", stats.to_csv(index=False))
        with io.atomic_path(out / "figure6.png") as tmp:
            fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {out / 'responses.csv'}, {out / 'reader_study_stats.csv'}, "
              f"{out / 'figure6.png'}")
    return 0


def cmd_truth(args: argparse.Namespace) -> int:
    from .. import io
    from ..analysis.pies import pie_scores, select_pies
    from .responses import ground_truth_comparison
    try:
        store = _load_store(args.results_dir)
        scores = pie_scores(store, method=args.method, dense=args.dense, sparse=args.sparse)
        stats = ground_truth_comparison(store, select_pies(scores, fraction=args.fraction))
    except (ValueError, OSError, KeyError) as exc:
        return _fail(exc)
    print(stats.to_string(index=False))
    if args.out is not None:
        io.write_text(Path(args.out) / "ground_truth_stats.csv", stats.to_csv(index=False))
    return 0
