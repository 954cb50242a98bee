"""The packaging files agree: licence, Python version, version number, citation fields, and
``make lab`` (constraints, the MyST extension, the kernel the notebooks name)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

import prunecxr

REPO = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return out


def test_license_python_and_version_agree():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert project["license"] == {"text": "MIT"} and cff["license"] == "MIT"
    assert project["version"] == cff["version"] == prunecxr.__version__
    assert project["requires-python"] == ">=3.11"  # the pinned numpy, pandas, scipy need it
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))


def test_make_lab_uses_the_constraints_the_myst_extension_and_the_notebooks_kernel():
    make = (REPO / "Makefile").read_text()
    lab = make[make.index("\nlab:"):].split("\n\n")[0]
    assert "-c constraints.txt" in lab and "jupyterlab-myst" in lab
    assert {"jupyterlab", "jupyterlab-myst"} <= set(pins())
    kernel = re.search(r"ipykernel install --sys-prefix --name (\S+)", lab).group(1)
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        spec = json.loads(path.read_text())["metadata"]["kernelspec"]
        assert spec["name"] == kernel, path.name
