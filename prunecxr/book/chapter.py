"""What chapters call: parameters -> config -> results, parameter checks, glue, figures.

A notebook opened in Jupyter and "Run All" computes missing results itself through
:func:`results`, exactly as the build does.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Sequence

def normalize_overrides(overrides: Any) -> list[str]:
    """Notebook/CLI overrides as a list of ``field=value`` strings.

    Accepts a list (``["population=2", "max_epochs=1"]``, what ``papermill -y`` passes), a
    string with overrides separated by ``;`` or newlines (what ``papermill -p`` can pass:
    ``-p overrides "population=2;max_epochs=1"``), a dict, or ``None``/``""``.
    """
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={v}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        items = re.split(r"[;\n]", overrides)
    elif isinstance(overrides, Iterable):
        items = list(overrides)
    else:
        raise ValueError(f"overrides must be a list of 'field=value' strings, got {overrides!r}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"overrides must be 'field=value' strings, got {item!r}")
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like field=value (e.g. population=5)")
        out.append(item)
    return out


def configure(profile: str = "default", dataset: str = "", data_dir: str = "",
              overrides: Any = None):
    """A notebook's parameters -> a validated :class:`prunecxr.config.Config` (nothing computed).

    Raises ``ValueError`` (:class:`prunecxr.errors.UsageError`) naming the bad parameter
    (profile, dataset, data_dir, an override) and the values allowed, with the messages of the
    CLI in the chapters' terms, so a notebook fails in its first cells, before any expensive
    step.
    """
    from ..config import load_config
    from ..data.registry import check_data
    from ..errors import UsageError, notebook_names

    for name, value in (("profile", profile), ("dataset", dataset), ("data_dir", data_dir)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise UsageError(f"parameter {name} must be a string, got {value!r}")
    with notebook_names():
        config = load_config(profile, dataset=dataset or None, data_dir=data_dir or None,
                             overrides=normalize_overrides(overrides))
        check_data(config, profile_default=not dataset)
    return config


def results(config, results_dir: str | os.PathLike = "", progress: bool = True):
    """The results store for ``config``, computing whatever is missing (with progress bars).

    ``results_dir`` is the root that holds one folder per configuration key ("" means
    ``$PRUNECXR_HOME/results``), the same root ``python -m prunecxr run --results-dir`` takes.
    """
    import warnings

    with warnings.catch_warnings():  # tqdm.auto without ipywidgets: text bars are fine
        warnings.filterwarnings("ignore", message="IProgress not found")
        from ..pipeline import ensure_results
    from ..store import load

    if results_dir is not None and not isinstance(results_dir, (str, os.PathLike)):
        raise ValueError(f"parameter results_dir must be a string, got {results_dir!r}")
    if results_dir:  # the CLI's check, in the chapters' terms
        from ..errors import check_writable_folder, notebook_names

        with notebook_names():
            check_writable_folder(results_dir, f"parameter results_dir {results_dir}")
    return load(ensure_results(config, results_root=results_dir or None, progress=progress))


def ladder_results(config, results_dir: str | os.PathLike = "", progress: bool = True) -> dict:
    """The stores of ``config``'s capacity ladder by width (:func:`prunecxr.config.ladder`),
    computing whatever rung is missing, as :func:`results` does for one population."""
    from ..pipeline import ensure_ladder
    from ..store import load

    folders = ensure_ladder(config, results_root=results_dir or None, progress=progress)
    return {width: load(folder) for width, folder in folders.items()}


def open_results(profile: str = "default", dataset: str = "", data_dir: str = "",
                 results_dir: str = "", overrides: Any = None, progress: bool = True):
    """``configure`` then ``results``: returns ``(config, store)``."""
    config = configure(profile, dataset, data_dir, overrides)
    return config, results(config, results_dir, progress)


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise ``ValueError("<name> must be one of [...], got ...")`` unless value is allowed."""
    if value not in allowed:
        raise ValueError(f"parameter {name} must be one of {list(allowed)}, got {value!r}")


def grid_methods(config) -> list[str]:
    """The configured methods on the shared sparsity grid (what Q1-Q4 can analyse)."""
    from ..config import GRID_METHODS

    return [m for m in config.methods if m in GRID_METHODS]


def level_pair(dense: float, sparse: float, levels: Sequence[float]) -> tuple[float, float]:
    """The ``dense`` and ``sparse`` parameters as grid levels (:func:`nearest_level`), with
    ``sparse > dense`` checked."""
    dense, sparse = nearest_level("dense", dense, levels), nearest_level("sparse", sparse, levels)
    if not sparse > dense:
        raise ValueError(f"parameter sparse ({sparse}) must be larger than dense ({dense})")
    return dense, sparse


def check_range(name: str, value: Any, low: float, high: float, *, inclusive: bool = True) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (or strict when not inclusive)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = low <= value <= high if inclusive else low < value < high
    if not ok:
        bounds = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
        raise ValueError(f"parameter {name} must be a number in {bounds}, got {value!r}")


def nearest_level(name: str, value: float, levels: Sequence[float], tol: float = 1e-6) -> float:
    """The grid level equal to ``value``; ``ValueError`` listing the grid when there is none."""
    for level in levels:
        if abs(float(level) - float(value)) <= tol:
            return float(level)
    raise ValueError(f"parameter {name}={value!r} is not a sparsity level of these results; "
                     f"available: {[round(float(x), 4) for x in levels]}")


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (glue's text/plain must be a literal like ``0.65``)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def glue_values(**values: Any) -> None:
    """``myst_nb.glue(name, value, display=False)`` for each keyword, numpy scalars unwrapped."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, plain(value), display=False)


# ------------------------------------------------------------------- what a reader is shown

FIGURE_DIR = "figures"        # beside each chapter page; the links under figures point here
FIGURES_ENV = "PRUNECXR_FIGURES"  # set by the build: the folder that receives the files
FIGURE_FORMATS = ("png", "svg", "pdf")


def setup() -> None:
    """The book's one figure style (:data:`prunecxr.plots.STYLE`) and table display."""
    import pandas as pd

    from ..plots import use_style

    use_style()
    pd.set_option("display.float_format", lambda x: f"{x:.4g}")
    pd.set_option("display.max_columns", 30)


def describe(store) -> None:
    """Print what a chapter works on, by results key and profile (never a machine path)."""
    cfg = store.config
    print(f"results {cfg.get('key', store.results_dir.name)}: profile {cfg.get('profile', '?')}, "
          f"dataset {store.dataset}, {len(store.classes)} classes, {len(store.labels)} test "
          f"images, {len(store.seeds)} models, methods {', '.join(store.methods)}")


def save_figure(name: str, fig: Any, folder: str | os.PathLike = FIGURE_DIR) -> dict:
    """Write ``fig`` as ``<folder>/<name>.png|svg|pdf``; return ``{format: relative path}``."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in FIGURE_FORMATS:
        fig.savefig(out / f"{name}.{fmt}", format=fmt, bbox_inches="tight")
        paths[fmt] = f"{Path(folder).as_posix()}/{name}.{fmt}"
    return paths


def figure_links(paths: dict) -> str:
    """The HTML line under a figure: links to its PNG, SVG and PDF files."""
    links = " · ".join(f'<a href="{p}" download>{fmt.upper()}</a>' for fmt, p in paths.items())
    return f'<p class="figure-files">Download this figure: {links}</p>'


def glue_figure(name: str, fig: Any) -> None:
    """Glue a figure for ``{glue:figure}``, and ``<name>_files``: links to its PNG/SVG/PDF
    files, written (:func:`save_figure`) when ``$PRUNECXR_FIGURES`` names a folder, as in the
    book build (empty otherwise, e.g. in JupyterLab or nbval). Closes the figure."""
    from IPython.display import HTML
    from myst_nb import glue

    folder = os.environ.get(FIGURES_ENV)
    links = ""
    if folder:
        save_figure(name, fig, folder)
        links = figure_links({fmt: f"{FIGURE_DIR}/{name}.{fmt}" for fmt in FIGURE_FORMATS})
    glue(f"{name}_files", HTML(links), display=False)
    glue(name, fig, display=False)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # a Figure not managed by pyplot: nothing to close
        pass


def glue_paper() -> None:
    """Glue every paper value (:mod:`prunecxr.paper`) as ``paper_<key>`` (its text) and
    ``paper_<key>_source``."""
    from ..paper import paper_table

    for row in paper_table().itertuples():
        glue_values(**{f"paper_{row.key}": row.text, f"paper_{row.key}_source": row.source})


def glue_claims(results: dict) -> None:
    """Glue each evaluated claim (:func:`prunecxr.claims.evaluate`) as ``claim_<key>`` (the
    paper's statistic on this build), ``claim_<key>_sound`` (the sound statistic),
    ``claim_<key>_verdict`` (decided on the sound one), ``claim_<key>_paper_verdict``,
    ``claim_<key>_sentence`` and ``claim_<key>_why`` (why the two disagree; "" if they agree)."""
    for key, r in results.items():
        glue_values(**{f"claim_{key}": r.build, f"claim_{key}_sound": r.sound,
                       f"claim_{key}_verdict": r.verdict,
                       f"claim_{key}_paper_verdict": r.paper_verdict,
                       f"claim_{key}_sentence": r.sentence, f"claim_{key}_why": r.why})


def save_table(name: str, frame: Any) -> str:
    """Write ``frame`` as ``<name>.csv`` beside the figures when the build collects files
    (``$PRUNECXR_FIGURES``); glue ``<name>_link``, a download link (empty otherwise)."""
    from pathlib import Path

    from IPython.display import HTML
    from myst_nb import glue

    folder = os.environ.get(FIGURES_ENV)
    link = ""
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        frame.to_csv(Path(folder) / f"{name}.csv", index=False)
        link = f'<a href="{FIGURE_DIR}/{name}.csv" download>{name}.csv</a>'
    glue(f"{name}_link", HTML(link), display=False)
    return link


COMMON_PARAMETERS = ("profile", "dataset", "data_dir", "results_dir", "overrides")


def rerun_commands(name: str, notebook: str | os.PathLike | None = None) -> str:
    """The papermill commands that rerun chapter ``name`` on each dataset that reads files
    (the dataset registry's rerun examples: NIH-CXR-LT, MIMIC-CXR-LT, a CSV), with this
    chapter's own further parameters and their defaults, read from the notebook's parameters
    cell (so the text cannot drift from the notebook)."""
    import papermill as pm

    from ..data.registry import rerun_targets
    from .toc import repo_root

    source = notebook or repo_root() / "notebooks" / f"{name}.ipynb"
    params = pm.inspect_notebook(str(source))
    missing = [p for p in ("profile", "dataset", "data_dir") if p not in params]
    if missing:
        raise ValueError(f"{name}.ipynb has no parameter {missing}")
    lines = []
    for target in rerun_targets():
        lines += [f"# {target.name}: data_dir is {target.holds}",
                  f".venv/bin/papermill notebooks/{name}.ipynb {name}_{target.name.split('-')[0]}"
                  f".ipynb -p profile {target.rerun_profile} -p dataset {target.name} "
                  f"-p data_dir {target.example}"]
    extra = [(k, v) for k, v in params.items() if k not in COMMON_PARAMETERS]
    if extra:
        lines.append("# this chapter's other parameters (add -p NAME VALUE), with their defaults:")
        width = max(len(f"{k} {v['default']}") for k, v in extra)
        lines += [f"#   {(k + ' ' + str(v['default'])).ljust(width)}  {v.get('help') or ''}".rstrip()
                  for k, v in extra]
    return "\n".join(lines)


def show_rerun(name: str) -> None:
    """Display :func:`rerun_commands` as a shell block (the chapter's last section)."""
    from IPython.display import Markdown, display

    display(Markdown("```bash\n" + rerun_commands(name) + "\n```"))


def show_figure(name: str, fig: Any | None) -> None:
    """Display a figure in its cell (for cells whose metadata names and captions it) and glue
    ``<name>_files``, the links to its PNG/SVG/PDF files, for a ``{glue}`` directive below the
    cell (empty when ``fig`` is None, i.e. the figure is not drawn in this build)."""
    from IPython.display import HTML, display
    from myst_nb import glue

    folder = os.environ.get(FIGURES_ENV)
    links = ""
    if fig is not None:
        display(fig)
        if folder:
            save_figure(name, fig, folder)
            links = figure_links({fmt: f"{FIGURE_DIR}/{name}.{fmt}" for fmt in FIGURE_FORMATS})
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # a Figure not managed by pyplot: nothing to close
            pass
    glue(f"{name}_files", HTML(links), display=False)
