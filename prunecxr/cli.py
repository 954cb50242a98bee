"""Command line: ``python -m prunecxr run|status|book|study``.

``run`` computes data, population and sweep for a profile, on this machine (``--executor
local``, ``--workers N`` processes) or as one SLURM array task per seed (``--executor slurm``),
and prints a one-screen summary; ``--dry-run`` prints what it would do and about how long it
would take. ``status`` shows where each seed of a results folder stands.

Every error a user can fix is one line, ``error: ...``, naming the option, file, row, column or
field and the fix, with exit code 2 (usage and data errors) or 1 (a failed step, e.g. a chapter);
``--debug`` shows the traceback instead. Heavy modules (torch, pandas) are imported by the
commands, never by ``--help`` or ``--version``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from . import __version__, layout
from .config import PROFILES
from .data.registry import DATASETS, REGISTRY
from .errors import DataError, UsageError, check_writable_folder, did_you_mean, one_line

DESCRIPTION = """\
Train a population of chest X-ray classifiers, prune each at every sparsity, and build
the book that shows which diseases and which images pruning hurts."""
KINDS = {None: "none: generated", "folder": "a folder", "file": "a CSV file"}
EPILOG = """examples:
  python -m prunecxr run --profile smoke                # a tiny run, for a first try
  python -m prunecxr run --dry-run                       # what the default run would do
  python -m prunecxr run --ladder --set widths=8,16,24,32,64 --set ladder_population=8
                                                         # the capacity ladder (Q6), e.g. on a GPU
  python -m prunecxr run --dataset csv --data-dir labels.csv
  python -m prunecxr book --profile default              # the main job and the book
datasets (--dataset) and what --data-dir is for each:
""" + "\n".join(f"  {n:<13} {KINDS[e.data_dir]}"
                for n, e in REGISTRY.items())


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: <what>[ (did you mean ...)]; see ... --help``)
    and no abbreviated options (``--profil`` is an error, not ``--profile``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        hint = ""
        unknown = re.search(r"unrecognized arguments: (\S+)", message)
        if unknown:
            hint = did_you_mean(unknown.group(1), sorted(_option_strings(self)))
        self.exit(2, f"error: {message}{hint}; see {self.prog} --help\n")


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of its subcommands."""
    out = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= _option_strings(sub)
    return out


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)} (default: default)")
    p.add_argument("--dataset", default=None, help=f"one of {', '.join(DATASETS)} (default: the profile's)")
    p.add_argument("--data-dir", default=None,
                   help="the data: a folder (nih-cxr-lt, mimic-cxr-lt) or the CSV file (csv)")
    p.add_argument("--results-dir", default=None,
                   help="root folder for results (default: $PRUNECXR_HOME/results)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a configuration field, e.g. --set population=5 or "
                        "--set data.n_images=2000 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_debug(p)


def _add_debug(p: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    p.add_argument("--debug", action="store_true", default=default,
                   help="show the traceback of an error")


def summary(folder) -> str:
    """One screen: where results are, the population, and mAP across the sparsity grid."""
    from .store import load

    store = load(folder)
    lines = [f"results: {folder}", repr(store)]
    train = store.training_summary()
    if len(train):
        lines.append(f"training: {len(train)} models, epochs {train['epochs'].min()}-{train['epochs'].max()}, "
                     f"{train['seconds'].sum():.0f} s in total")
    ap = store.ap_table()
    per_model = ap.groupby(["method", "seed", "level"])["ap"].mean()  # NaN skipped
    medians = per_model.groupby(["method", "level"]).median()
    if store.grid_methods:
        table = medians.loc[store.grid_methods].unstack("method").rename_axis("sparsity")
        shown = table.loc[[k for k in table.index if round(k * 100) % 10 == 0 or k == table.index.max()]]
        lines.append("median mAP over seeds by sparsity:")
        lines.append(shown.round(3).to_string())
    for method in [m for m in store.methods if m not in store.grid_methods]:
        facts = store.level_facts(method).drop_duplicates("nominal")
        points = ", ".join(f"{n:g} -> {medians[(method, lv)]:.3f}"
                           for n, lv in zip(facts["nominal"], store.levels(method)))
        lines.append(f"{method}, median mAP by {facts['unit'].iloc[0]}: {points}")
    stages = store.stage_seconds()
    if stages:
        rates = store.manifest.get("rates", {})
        lines.append("wall time: " + ", ".join(
            f"{k} {v:.0f} s" + (f" ({rates[k]['images_per_s']:,.0f} img/s)" if k in rates else "")
            for k, v in stages.items()))
    return "\n".join(lines)


def _slurm_opts(pairs: list[str]) -> dict:
    opts = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--slurm-opt must be key=value (an sbatch option), got {pair!r}")
        opts[key.strip().lstrip("-").replace("-", "_")] = value.strip()
    return opts


def results_root(results_dir: str | None) -> Path:
    """The results root a command writes to, checked: a folder (or creatable) and writable.

    Names where it came from (``--results-dir``, ``$PRUNECXR_HOME`` or the default) in the
    :class:`UsageError` when it is a file or cannot be written.
    """
    from .paths import home

    if results_dir:
        return check_writable_folder(results_dir, f"--results-dir {results_dir}")
    env = os.environ.get("PRUNECXR_HOME")
    base = home()
    what = f"PRUNECXR_HOME={env}" if env else f"the default results folder under {base}"
    if env and base.exists() and not base.is_dir():
        raise UsageError(f"{what}: not a folder; set PRUNECXR_HOME to a folder "
                         f"(or pass --results-dir)")
    return check_writable_folder(base / "results", what)


def _configure(args: argparse.Namespace):
    """The checked configuration of ``run``/``book``: options, data and results folder."""
    from .config import load_config
    from .data.registry import check_data

    overrides = list(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides.append(f"workers={args.workers}")
    config = load_config(args.profile, dataset=args.dataset, data_dir=args.data_dir,
                         overrides=overrides)
    check_data(config, profile_default=not args.dataset)
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from .config import ladder

    config = _configure(args)
    root = results_root(args.results_dir)
    rungs = [config] + [r for r in ladder(config) if r is not config] if args.ladder else [config]
    if args.ladder and len(rungs) == 1:
        raise UsageError("--ladder: this configuration has no other rung; give the widths, "
                         "e.g. --set widths=8,16,24, with weights=none (pretrained weights "
                         "exist for width 64 alone)")
    if args.dry_run:
        from .estimate import describe

        for rung in rungs:
            print(describe(rung, root, _device(rung), rung.workers))
        return 0
    t0 = time.perf_counter()
    if args.executor == "slurm":
        from .cluster import format_states, run_on_slurm

        def slurm(rung, wait):
            return run_on_slurm(
                rung, root, partition=args.partition, gpus_per_task=args.gpus_per_task,
                time_min=args.time, max_parallel=args.max_parallel,
                slurm_opts=_slurm_opts(args.slurm_opt), wait=wait, progress=not args.quiet,
                poll=args.poll)

        for rung in rungs[1:]:  # every rung queued before waiting on any
            slurm(rung, wait=False)
        ran = [slurm(rung, wait=not args.no_wait) for rung in rungs]
        for folder, states in ran:
            print(f"results: {folder}")
            print(format_states(states))
        folder = ran[0][0]
        if args.no_wait:
            where = folder if len(ran) == 1 else root
            print(f"submitted; follow with: python -m prunecxr status --results-dir {where}")
            return 0
        if any(s.state != "done" for _, states in ran for s in states):
            print("some seeds did not finish; rerun the same command to retry only those",
                  file=sys.stderr)
            return 1
    else:
        from .pipeline import ensure_populations, ensure_results

        folder = ensure_results(config, results_root=root, progress=not args.quiet)
        for rung, path in zip(rungs[1:], ensure_populations(rungs[1:], root, not args.quiet)):
            print(f"rung width {rung.width}: {path}")
    print(summary(folder))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


def _device(config) -> str:
    if config.device != "auto":
        return config.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_status(args: argparse.Namespace) -> int:
    from .cluster import config_of, format_states, seed_states

    root = Path(args.results_dir)
    folders = [root] if (root / layout.CONFIG).exists() else sorted(
        p.parent for p in root.glob(f"*/{layout.CONFIG}"))
    if not folders:
        raise UsageError(f"--results-dir {root}: no results folder (with {layout.CONFIG}) at or "
                         f"under it; pass the folder printed by `python -m prunecxr run`")
    for folder in folders:
        print(f"results: {folder}")
        print(format_states(seed_states(folder, config_of(folder))))
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book import build_book

    _configure(args)
    root = results_root(args.results_dir)
    build = build_book(profile=args.profile, results_root=root, out=args.out,
                       overrides=args.overrides, dataset=args.dataset, data_dir=args.data_dir,
                       progress=not args.quiet)
    print(summary(build.results_dir))
    print(f"book: {build.index} (" + ", ".join(
        f"{k} {v:.0f} s" for k, v in build.timings.items() if isinstance(v, (int, float))) + ")")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m prunecxr", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"prunecxr {__version__}")
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,status,book,study}")
    run = sub.add_parser("run", help="train the population and run the pruning sweep",
                         description="Train the population and run the pruning sweep "
                                     "(computes only what is missing), then print a summary.")
    _add_common(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the resolved configuration, the results folder, the models and "
                          "levels and an estimated time; run nothing")
    run.add_argument("--ladder", action="store_true",
                     help="also the other rungs of the capacity ladder (Q6): the same data and "
                          "recipe at each width of --set widths=..., l1 and random on "
                          "ladder_population seeds each")
    run.add_argument("--executor", choices=("local", "slurm"), default="local",
                     help="local: this machine (default); slurm: one array task per seed")
    run.add_argument("--workers", type=int, default=None,
                     help="local: seeds side by side in N processes (one per GPU on CUDA)")
    run.add_argument("--partition", default=None, help="slurm: partition (default: the cluster's)")
    run.add_argument("--gpus-per-task", type=int, default=0, help="slurm: GPUs per seed (default 0)")
    run.add_argument("--time", type=int, default=240, help="slurm: minutes per task before "
                     "SLURM warns and the task requeues from its last epoch (default 240)")
    run.add_argument("--max-parallel", type=int, default=30, help="slurm: tasks running at once")
    run.add_argument("--slurm-opt", action="append", default=[], metavar="KEY=VALUE",
                     help="slurm: any other sbatch option, e.g. --slurm-opt account=lab (repeatable)")
    run.add_argument("--poll", type=float, default=10.0,
                     help="slurm: seconds between checks of squeue/sacct (default 10)")
    run.add_argument("--no-wait", action="store_true",
                     help="slurm: return once submitted; see `python -m prunecxr status`")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="which seeds are done, running, queued or failed")
    status.add_argument("--results-dir", required=True,
                        help="a results folder, or a root holding several")
    _add_debug(status)
    status.set_defaults(func=cmd_status)
    book = sub.add_parser("book", help="run the pipeline, execute the notebooks, build the book")
    _add_common(book)
    book.add_argument("--out", default="_build", help="build folder (default: _build)")
    book.set_defaults(func=cmd_book)
    # The reader study is part of the CLI: a broken import is an error, never a silently
    # missing command.
    from .study.cli import add_study_commands

    add_study_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    saved = os.environ.get("PRUNECXR_PROGRESS")
    if getattr(args, "quiet", False):
        from .progress import set_enabled
        set_enabled(False)  # through the environment: worker processes inherit it
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes one line (--debug: traceback)
        if debug:
            raise
        code, text = _error(exc)
        print(f"error: {text}", file=sys.stderr)
        return code
    finally:  # main() called in-process (tests) leaves the environment as it found it
        if saved is None:
            os.environ.pop("PRUNECXR_PROGRESS", None)
        else:
            os.environ["PRUNECXR_PROGRESS"] = saved


def _error(exc: Exception) -> tuple[int, str]:
    """Exit code and one line for an error: 2 for usage and data errors, 1 otherwise."""
    if isinstance(exc, (UsageError, DataError, ValueError)):
        return 2, one_line(exc)
    if isinstance(exc, OSError):  # a path that is missing, a file, or not writable
        return 2, one_line(exc)
    if isinstance(exc, RuntimeError):  # e.g. prunecxr.book.BookError: a chapter failed
        return 1, one_line(exc)
    return 1, (f"{type(exc).__name__}: {one_line(exc)} (an internal error; rerun with --debug "
               "for the traceback and report it)")
