"""Import readers' answer files against a packet key, and the phantom's ground-truth twin.

``load_responses`` checks every file completely before returning anything: wrong columns,
unknown packets or items, a file whose reader does not own its packet, missing or
out-of-range answers, duplicates within or across files, and packets left incomplete. All
problems are reported together in one :class:`StudyError`, each as ``file: line N: what``
(line 1 is the header, as a spreadsheet numbers it), so one pass fixes them all and nothing
is ever half imported.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .packet import RESPONSE_COLUMNS, StudyError, read_key

TIDY_COLUMNS = ("reader", "image", "is_pie", "agrees_with_label", "quality", "difficulty")
YES = {"yes", "y", "1", "true"}
NO = {"no", "n", "0", "false"}
TRUTH_COLUMNS = ("label_corrupted", "quality", "difficulty")
MAX_LISTED = 50


def load_responses(key_dir: str | os.PathLike, csv_paths: Iterable[str | os.PathLike]
                   ) -> pd.DataFrame:
    """Validate answer CSVs against a packet key and join them into the tidy table.

    Returns one row per answered image with columns ``reader, image, is_pie,
    agrees_with_label (bool), quality, difficulty (1-5 ints)`` plus ``item`` and
    ``packet_id``; ``image`` is the dataset image id (from the key, never seen by readers).
    Raises :class:`StudyError` listing every problem found in every file.
    """
    key, _, key_folder = read_key(key_dir)
    paths = [Path(p) for p in csv_paths]
    if not paths:
        raise StudyError("no response files given")
    by_packet = {pid: grp for pid, grp in key.groupby("packet_id", sort=False)}
    owner_of_item = dict(zip(key["item"], key["reader"]))
    packet_of_reader = dict(zip(key["reader"], key["packet_id"]))

    errors: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    records: list[dict] = []
    for path in paths:
        records += _read_one(path, by_packet, owner_of_item, packet_of_reader, seen, errors)
    answered: dict[str, set[str]] = {}   # rows naming a known item, valid answers or not
    for pid, item in seen:
        answered.setdefault(pid, set()).add(item)
    for pid, items in answered.items():
        grp = by_packet[pid]
        left = grp.loc[~grp["item"].isin(items)].sort_values("position")
        if len(left):
            errors.append(
                f"{grp['reader'].iloc[0]} (packet {pid}): {len(left)} of {len(grp)} images have "
                f"no answer in the files given (items {', '.join(left['item'][:10])}"
                f"{', ...' if len(left) > 10 else ''})"
            )
    if errors:
        shown = errors[:MAX_LISTED]
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise StudyError(f"{len(errors)} problem(s) in the reader-study responses (key "
                         f"{key_folder}); nothing was imported:\n  " + "\n  ".join(shown) + more)

    table = pd.DataFrame(records)
    info = key.set_index("item")
    table["image"] = info.loc[table["item"], "image_id"].to_numpy()
    table["is_pie"] = info.loc[table["item"], "is_pie"].to_numpy().astype(bool)
    table["position"] = info.loc[table["item"], "position"].to_numpy()
    table = table.sort_values(["reader", "position"], kind="stable").reset_index(drop=True)
    table["quality"] = table["quality"].astype(int)
    table["difficulty"] = table["difficulty"].astype(int)
    table["agrees_with_label"] = table["agrees_with_label"].astype(bool)
    return table[list(TIDY_COLUMNS) + ["item", "packet_id"]]


def _read_one(path: Path, by_packet: dict, owner_of_item: dict, packet_of_reader: dict,
              seen: dict, errors: list[str]) -> list[dict]:
    """Parse and check one answer file; append problems to ``errors``, return good rows."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
            fh.seek(0)
            # a spreadsheet in a decimal-comma locale saves ';'-separated "CSV"
            delimiter = ";" if ";" in first and "," not in first else ","
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        errors.append(f"{path}: file not found")
        return []
    except (UnicodeDecodeError, csv.Error) as exc:
        errors.append(f"{path}: not a readable UTF-8 CSV file ({exc})")
        return []
    if header is None:
        errors.append(f"{path}: empty file (expected the header "
                      f"{','.join(RESPONSE_COLUMNS)})")
        return []
    cols = [c.strip().lower() for c in header]
    missing = [c for c in RESPONSE_COLUMNS if c not in cols]
    extra = [c for c in cols if c not in RESPONSE_COLUMNS]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if missing or extra or dupes:
        what = "; ".join(s for s in (
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"unexpected column(s) {', '.join(extra)}" if extra else "",
            f"repeated column(s) {', '.join(dupes)}" if dupes else "") if s)
        errors.append(f"{path}: line 1: wrong columns: {what} (expected exactly "
                      f"{','.join(RESPONSE_COLUMNS)})")
        return []
    if not rows:
        errors.append(f"{path}: no answers after the header")
        return []

    out: list[dict] = []
    file_packets: set[str] = set()
    for line, raw in rows:
        where = f"{path}: line {line}"
        if len(raw) != len(cols):
            errors.append(f"{where}: {len(raw)} fields, expected {len(cols)}")
            continue
        row = {c: v.strip() for c, v in zip(cols, raw)}
        pid, reader, item = row["packet_id"], row["reader"], row["item"]
        if pid not in by_packet:
            errors.append(f"{where}: unknown packet_id {pid!r} (not in this key)")
            continue
        owner = by_packet[pid]["reader"].iloc[0]
        if reader != owner:
            mine = packet_of_reader.get(reader)
            errors.append(
                f"{where}: packet_id {pid} belongs to {owner}, but the reader column says "
                f"{reader!r}" + (f" (whose packet is {mine})" if mine else " (not in this key)"))
            continue
        file_packets.add(pid)
        if owner_of_item.get(item) != owner:
            other = owner_of_item.get(item)
            errors.append(f"{where}: unknown item {item!r} for {owner}'s packet {pid}"
                          + (f" (it belongs to {other})" if other else ""))
            continue
        rec, ok = {"reader": owner, "packet_id": pid, "item": item}, True
        agree = row["agrees_with_label"].lower()
        if agree in YES or agree in NO:
            rec["agrees_with_label"] = agree in YES
        else:
            ok = False
            errors.append(f"{where}: agrees_with_label " + (
                "is missing" if not agree else f"must be yes/no (or 1/0), got {agree!r}"))
        for q in ("quality", "difficulty"):
            value = _likert(row[q])
            if value is None:
                ok = False
                errors.append(f"{where}: {q} " + (
                    "is missing" if not row[q] else f"must be an integer 1-5, got {row[q]!r}"))
            rec[q] = value
        first = seen.get((pid, item))
        if first is not None:
            errors.append(f"{where}: duplicate answer for item {item} (already answered at "
                          f"{first})")
            continue
        seen[(pid, item)] = where
        if ok:
            out.append(rec)
    if len(file_packets) > 1:
        errors.append(f"{path}: mixes answers for several packets "
                      f"({', '.join(sorted(file_packets))}); use one file per reader")
    return out


def _likert(text: str) -> int | None:
    """An integer 1-5 from a cell ('3', '3.0'); None when missing or invalid."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not value.is_integer() or not 1 <= value <= 5:
        return None
    return int(value)


def truth_table(store: Any, pies: np.ndarray) -> pd.DataFrame:
    """The phantom's known per-image truth in the reader study's tidy shape.

    ``agrees_with_label`` is ``not label_corrupted``; ``quality`` and ``difficulty`` are the
    generator's own continuous values (higher quality = better, higher difficulty = harder),
    so they are compared on their native scales, not squeezed into 1-5.
    """
    meta = store.meta
    missing = [c for c in TRUTH_COLUMNS if c not in meta.columns]
    if missing:
        raise StudyError(
            f"dataset {getattr(store, 'dataset', '?')!r} has no ground-truth column(s) "
            f"{', '.join(missing)} in its test metadata; a ground-truth comparison needs the "
            f"phantom (or any dataset that records {', '.join(TRUTH_COLUMNS)})")
    pies = np.asarray(pies, dtype=bool)
    if pies.shape != (len(meta),):
        raise StudyError(f"pies must be a boolean mask over the {len(meta)} test images, got "
                         f"shape {pies.shape}")
    corrupted = meta["label_corrupted"].astype(str).str.lower().isin(["true", "1", "1.0"])
    return pd.DataFrame({
        "reader": "truth",
        "image": meta["image_id"].astype(str).to_numpy(),
        "is_pie": pies,
        "agrees_with_label": ~corrupted.to_numpy(),
        "quality": meta["quality"].astype(float).to_numpy(),
        "difficulty": meta["difficulty"].astype(float).to_numpy(),
    })


def ground_truth_comparison(store: Any, pies: np.ndarray) -> pd.DataFrame:
    """PIEs vs non-PIEs on the phantom's known truth, with the reader study's statistics.

    Builds :func:`truth_table` over all test images and compares PIEs with non-PIEs per
    question by :func:`prunecxr.stats.compare_groups`, the function behind
    ``reader_study_stats`` (which itself insists on 1-5 answers, so it cannot take the
    continuous truth). Columns as ``reader_study_stats`` plus ``source = "ground truth"``; the
    rows line up question by question (label agreement = not corrupted, quality, difficulty).
    """
    table = truth_table(store, pies)
    from ..stats import compare_groups
    stats = compare_groups(table, "is_pie", list(TIDY_COLUMNS[3:]), groups=(True, False))
    stats.insert(0, "source", "ground truth")
    return stats


def responses_status(answers: pd.DataFrame | None) -> tuple[str, str]:
    """(a Markdown paragraph on the reader responses analysed, a one-sentence summary)."""
    if answers is None:
        return ("**No human responses are included in this build.** The radiologists' answers "
                "of the paper are private, and no reader has answered a packet of this build's "
                "images, so this section has no results. Rerun the chapter with the `responses` "
                "and `study_key` parameters to analyse answers.",
                "No human reader responses are included in this build.")
    n, readers = len(answers), answers["reader"].nunique()
    return (f"The analysis below uses {n} answers from {readers} reader(s), "
            f"{int(answers['is_pie'].sum())} of them about PIEs.",
            f"Reader responses: {n} answers from {readers} reader(s) were analysed above.")


def responses_parameter(study_key: str, responses) -> pd.DataFrame | None:
    """A chapter's ``study_key`` and ``responses`` parameters -> the tidy answers, or None
    without responses (``responses`` may be a list or one string separated by ``;``)."""
    if isinstance(responses, str):
        responses = [r for r in responses.split(";") if r.strip()]
    if not responses:
        return None
    if not study_key:
        raise ValueError("parameter study_key is required with responses: the packet folder "
                         "(or its key/ folder) that the answer files belong to")
    return load_responses(study_key, responses)
