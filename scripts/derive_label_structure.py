"""Derive the compact NIH ChestX-ray14 label-structure table the phantom dataset samples from.

Reads the public NIH metadata table (``Data_Entry_2017_v2020.csv.gz``: one row per image,
``Finding Labels`` joined by ``|``, ``Patient ID``) and writes
``prunecxr/data/nih_label_structure.json`` holding only aggregates:

- ``combinations``: every distinct label set (labels in reference class order, joined by ``|``)
  with its number of images;
- ``images_per_patient``: how many patients have k images, for each k;
- ``provenance``: source file name, its sha256, row/patient counts, date and this script.

No image name, patient id or per-row record is kept. NIH spells ``Pleural_Thickening`` with an
underscore; it is mapped to the NIH-CXR-LT name ``Pleural Thickening``.

Usage: ``python scripts/derive_label_structure.py [--source PATH] [--out PATH]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd

from prunecxr import io
from prunecxr.data.classes import NIH_CXR_LT_CLASSES

REPO = Path(__file__).resolve().parents[1]
# The shared folder beside the clone (../shared/data/), or wherever PRUNECXR_NIH_METADATA says.
DEFAULT_SOURCE = Path(os.environ.get("PRUNECXR_NIH_METADATA")
                      or REPO.parent / "shared" / "data" / "Data_Entry_2017_v2020.csv.gz")
DEFAULT_OUT = REPO / "prunecxr" / "data" / "nih_label_structure.json"
NAME_MAP = {"Pleural_Thickening": "Pleural Thickening"}


def derive(source: Path) -> dict:
    """The aggregate table (see module docstring) of one NIH metadata file."""
    df = pd.read_csv(source, usecols=["Image Index", "Finding Labels", "Patient ID"])
    order = {name: i for i, name in enumerate(NIH_CXR_LT_CLASSES)}

    def canonical(field: str) -> str:
        names = [NAME_MAP.get(n.strip(), n.strip()) for n in field.split("|")]
        unknown = [n for n in names if n not in order]
        if unknown:
            raise ValueError(f"{source}: unknown finding label(s) {unknown}")
        return "|".join(sorted(set(names), key=order.__getitem__))

    combos = df["Finding Labels"].map(canonical).value_counts()
    combos = sorted(combos.items(), key=lambda kv: (-kv[1], kv[0]))
    per_patient = df.groupby("Patient ID").size().value_counts().sort_index()
    present = sorted({n for c, _ in combos for n in c.split("|")}, key=order.__getitem__)
    return {
        "provenance": {
            "source": source.name,
            "sha256": io.sha256_file(source),
            "rows": int(len(df)),
            "patients": int(df["Patient ID"].nunique()),
            "distinct_combinations": len(combos),
            "derived_on": dt.date.today().isoformat(),
            "script": "scripts/derive_label_structure.py",
            "name_map": NAME_MAP,
        },
        "classes": present,
        "combinations": [[c, int(n)] for c, n in combos],
        "images_per_patient": [[int(k), int(n)] for k, n in per_patient.items()],
    }


def to_json(table: dict) -> str:
    """JSON with one combination / histogram bin per line, so diffs of the table stay readable."""
    def rows(pairs: list) -> str:
        return "[\n" + ",\n".join(f"    {json.dumps(p)}" for p in pairs) + "\n  ]"

    head = {k: v for k, v in table.items() if k not in ("combinations", "images_per_patient")}
    body = json.dumps(head, indent=2, sort_keys=True)[:-2]
    return (f"{body},\n  \"combinations\": {rows(table['combinations'])},\n"
            f"  \"images_per_patient\": {rows(table['images_per_patient'])}\n}}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    table = derive(args.source)
    io.write_text(args.out, to_json(table))
    prov = table["provenance"]
    print(f"{args.out}: {prov['rows']} images, {prov['patients']} patients, "
          f"{prov['distinct_combinations']} label combinations, {len(table['classes'])} classes")


if __name__ == "__main__":
    main()
