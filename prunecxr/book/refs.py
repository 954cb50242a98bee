"""nbval reference notebooks: the chapters executed on the smoke profile, images dropped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .build import NOTEBOOKS, execute_notebook, repo_root

# ------------------------------------------------------------------------ nbval references

REF_DIR = Path("tests") / "notebooks"


def regenerate_nbval_refs(dest: str | os.PathLike | None = None, profile: str = "smoke",
                          notebooks: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Execute the chapters on the smoke profile into ``tests/notebooks/`` (nbval references).

    Results come from ``$PRUNECXR_HOME`` (computed if missing). Images are dropped from the
    saved outputs (nbval never compares them), text outputs are kept, and the machine's paths
    in them are what ``tests/nbval_sanitize.cfg`` masks.
    """
    import nbformat

    from ..config import load_config
    from ..pipeline import ensure_results

    root = repo_root()
    dest = Path(dest) if dest else root / REF_DIR
    ensure_results(load_config(profile), progress=progress)
    written = []
    for name in notebooks or NOTEBOOKS:
        if progress:
            print(f"[nbval-refs] executing {name}.ipynb", flush=True)
        params = {"profile": profile, "results_dir": "", "overrides": []}
        if name == "reproducibility":
            params["timings_file"] = ""
        execute_notebook(name, dest, params, root)
        path = dest / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                data = output.get("data")
                if data:
                    for mime in [m for m in data if m.endswith(("image/png", "image/svg+xml",
                                                                "image/jpeg"))]:
                        del data[mime]
        nb.metadata.get("papermill", {}).pop("input_path", None)
        nb.metadata.get("papermill", {}).pop("output_path", None)
        nbformat.write(nb, path)
        written.append(path)
    return written

