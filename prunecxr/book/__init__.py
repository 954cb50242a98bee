"""The book: chapter helpers, the build runner, MathJax, the HTML audit, nbval references.

- :mod:`.chapter` what notebooks call (``configure``, ``results``, ``check_*``, ``glue_*``,
  figures saved as PNG/SVG/PDF, the "In this build" box, the "Rerun this chapter" commands);
- :mod:`.build` results -> papermill -> Jupyter Book (``python -m prunecxr book``);
- :mod:`.assets` MathJax fetched, checked and cached for offline math;
- :mod:`.audit` problems a reader would see in the built HTML;
- :mod:`.refs` the nbval reference notebooks (``python -m prunecxr.book refs``);
- :mod:`.toc` the chapter list, read from ``_toc.yml`` alone;
- :mod:`.cli` ``python -m prunecxr.book [build|refs|mathjax]``.
"""

from .assets import MATHJAX_VERSION, _checked, fetch_mathjax, mathjax_cache
from .audit import audit_html, machine_paths
from .build import (CHAPTERS, NOTEBOOKS, BookBuild, build_book, execute_notebook, render_html,
                    repo_root, stage_sources)
from .chapter import (check_choice, check_range, configure, describe, glue_claims, glue_figure,
                      glue_paper, ladder_results, save_table,
                      glue_values, grid_methods, level_pair, nearest_level, normalize_overrides, open_results, plain,
                      rerun_commands, results, save_figure, setup, show_figure,
                      show_rerun)
from .cli import main
from .errors import BookError
from .refs import REF_DIR, regenerate_nbval_refs
