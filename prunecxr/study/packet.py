"""Build a blinded reader-study packet: images, one offline HTML form per reader, and a key.

Design (paper Sec. 2.3): each of ``readers`` readers sees their own ``per_reader`` test images,
half of them PIEs and half not, each shown with its labels and three questions. Readers'
sets are disjoint; the order within a set is shuffled; everything is drawn from one seeded
``numpy.random.Generator`` so the same seed rebuilds the same packet byte for byte.

Layout of a packet folder ``OUT``::

    OUT/README.txt                       what to send to whom, how to analyse
    OUT/readers/reader_01/reader_01.html the form: one self-contained file, images embedded
    OUT/readers/reader_01/images/*.png   the same images as files (view/zoom outside the form)
    OUT/key/key.csv, OUT/key/key.json    which item is which image, PIE or not: never send

Blinding: items are named by random hex tokens drawn from the seeded generator (hex digits
cannot spell "pie" or a dataset image id), PNGs carry no text chunks, the HTML knows only the
item ids, images and labels, and the PIE flag exists only under ``key/``.

The forms embed their images as base64 data URIs, so each form is a single file that works
when e-mailed on its own, from a USB stick or from ``file://`` with the network off.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io as _io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from .. import __version__

KEY_DIR = "key"
READERS_DIR = "readers"
KEY_FORMAT = 1
RESPONSE_COLUMNS = ("reader", "packet_id", "item", "agrees_with_label", "quality", "difficulty")
KEY_COLUMNS = (
    "reader", "packet_id", "position", "item", "test_row", "image_id", "is_pie", "pie_score",
    "labels",
)
QUESTIONS = {
    "agrees_with_label": "Do you fully agree with the given label?",
    "quality": "How would you rate the image quality?",
    "difficulty": "How difficult is it to properly diagnose this image?",
}


class StudyError(ValueError):
    """A reader-study packet or response problem; the message names the file, row or option."""


@dataclass(frozen=True)
class Design:
    """How many readers, how many images each, and how PIEs are defined."""

    readers: int = 6
    per_reader: int = 40
    method: str = "l1"
    dense: float = 0.0
    sparse: float = 0.9
    fraction: float = 0.05
    image_size: int = 384

    def __post_init__(self) -> None:
        if self.readers < 1:
            raise StudyError(f"readers must be >= 1, got {self.readers}")
        if self.per_reader < 2 or self.per_reader % 2:
            raise StudyError(
                f"per_reader must be an even number >= 2 (half PIEs, half non-PIEs), "
                f"got {self.per_reader}"
            )
        if not 0 < self.fraction < 1:
            raise StudyError(f"fraction must be in (0, 1), got {self.fraction}")
        if self.image_size < 16:
            raise StudyError(f"image_size must be >= 16 px, got {self.image_size}")

    @property
    def half(self) -> int:
        return self.per_reader // 2


def reader_name(r: int) -> str:
    """``reader_01``, ``reader_02``, ... (1-based, zero-padded)."""
    return f"reader_{r + 1:02d}"


def assign_items(is_pie: np.ndarray, readers: int, per_reader: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Draw disjoint, balanced, shuffled row sets: one array of test-row indices per reader.

    Each reader gets ``per_reader // 2`` rows where ``is_pie`` is true and as many where it is
    false, sampled without replacement over all readers, then shuffled within the reader.
    """
    is_pie = np.asarray(is_pie, dtype=bool)
    half = per_reader // 2
    need = readers * half
    pie_rows, other_rows = np.flatnonzero(is_pie), np.flatnonzero(~is_pie)
    for what, rows in (("PIEs", pie_rows), ("non-PIEs", other_rows)):
        if len(rows) < need:
            fits = [f"--readers {len(rows) // half}"] if len(rows) >= half else []
            if len(rows) >= readers:
                fits.append(f"--per-reader {2 * (len(rows) // readers)}")
            raise StudyError(
                f"not enough {what}: the design needs {need} ({readers} readers x {half}) but "
                f"only {len(rows)} of {len(is_pie)} test images are {what}; lower --readers or "
                f"--per-reader" + (f" (e.g. {' or '.join(fits)})" if fits else "")
                + ", change --fraction, or use a larger test set"
            )
    pies = rng.choice(pie_rows, size=need, replace=False).reshape(readers, half)
    others = rng.choice(other_rows, size=need, replace=False).reshape(readers, half)
    return [rng.permutation(np.concatenate([pies[r], others[r]])) for r in range(readers)]


_NUMBER_LIKE = re.compile(r"^[0-9]+(e[0-9]+)?$")


def spreadsheet_safe(token: str) -> bool:
    """False for hex strings a spreadsheet would turn into a number (``0123``, ``12e45``)."""
    return not _NUMBER_LIKE.match(token)


def item_tokens(n: int, rng: np.random.Generator, length: int = 10) -> list[str]:
    """``n`` distinct random lowercase-hex tokens (opaque item ids), none number-like."""
    tokens: list[str] = []
    seen: set[str] = set()
    while len(tokens) < n:
        tok = rng.bytes(length // 2).hex()
        if tok not in seen and spreadsheet_safe(tok):
            seen.add(tok)
            tokens.append(tok)
    return tokens


def png_bytes(image: np.ndarray, size: int) -> bytes:
    """A grayscale uint8 image as PNG bytes, longest side resized to ``size`` (no metadata)."""
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    h, w = image.shape
    scale = size / max(h, w)
    img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                     Image.Resampling.BILINEAR)
    buf = _io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def store_identity(store: Any) -> dict:
    """What identifies the results a packet was drawn from (recorded in the key)."""
    meta_ids = "\n".join(map(str, store.meta["image_id"]))
    labels = np.ascontiguousarray(store.labels, dtype=np.uint8)
    config = getattr(store, "config", None) or {}
    return {
        "dataset": str(getattr(store, "dataset", "")),
        "results_dir": str(getattr(store, "results_dir", "")),
        "n_test": int(labels.shape[0]),
        "classes": list(store.classes),
        "config_sha256": _sha256(json.dumps(config, sort_keys=True, default=str).encode()),
        "test_sha256": _sha256(meta_ids.encode() + labels.tobytes()),
    }


def packet_id(reader: str, items: list[str], seed: int, identity: dict) -> str:
    """A short hash naming one reader's packet (reader, items, seed and store identity)."""
    blob = json.dumps({"reader": reader, "items": items, "seed": seed,
                       "test": identity["test_sha256"]}, sort_keys=True)
    digest = _sha256(blob.encode())
    while not spreadsheet_safe(digest[:12]):
        digest = _sha256(digest.encode())
    return digest[:12]


def render_form(reader: str, pid: str, items: list[dict]) -> str:
    """The reader's self-contained HTML form (``form.html`` with the packet data filled in).

    ``items`` are dicts with ``item``, ``labels`` (list of class names) and ``src`` (a data URI).
    """
    template = resources.files("prunecxr.study").joinpath("form.html").read_text("utf-8")
    payload = {"reader": reader, "packet_id": pid, "columns": list(RESPONSE_COLUMNS),
               "items": items}
    data = (json.dumps(payload, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return template.replace("{{TITLE}}", f"Reader study: {reader}").replace("{{PACKET_JSON}}", data)


def make_packet(store: Any, out: str | os.PathLike, readers: int = 6, per_reader: int = 40,
                seed: int = 0, method: str = "l1", dense: float = 0.0, sparse: float = 0.9,
                fraction: float = 0.05, image_size: int = 384, force: bool = False,
                pies: np.ndarray | None = None, scores: np.ndarray | None = None) -> Path:
    """Write a blinded reader-study packet for ``store`` to ``out`` and return its path.

    PIEs come from ``pie_scores(store, method, dense, sparse)`` and
    ``select_pies(scores, fraction)`` unless a boolean ``pies`` mask over the test images is
    given (then ``scores`` is optional and only recorded in the key). The packet is built in a
    temporary sibling folder and renamed into place, so ``out`` is either the complete new
    packet or untouched. An existing non-empty ``out`` is replaced only with ``force=True`` and
    only if it is itself a packet (has ``key/key.json``).
    """
    design = Design(readers, per_reader, method, dense, sparse, fraction, image_size)
    out = Path(out)
    _check_target(out, force)
    n_test = len(store.labels)
    if pies is None:
        from ..analysis.pies import pie_scores, select_pies
        scores = np.asarray(pie_scores(store, method=method, dense=dense, sparse=sparse),
                            dtype=float)
        pies = np.asarray(select_pies(scores, fraction=fraction), dtype=bool)
    pies = np.asarray(pies, dtype=bool)
    if pies.shape != (n_test,):
        raise StudyError(f"pies must be a boolean mask over the {n_test} test images, "
                         f"got shape {pies.shape}")
    scores = np.full(n_test, np.nan) if scores is None else np.asarray(scores, dtype=float)

    rng = np.random.default_rng(seed)
    sets = assign_items(pies, readers, per_reader, rng)
    tokens = item_tokens(readers * per_reader, rng)
    identity = store_identity(store)
    images = store.test_images()
    classes = list(store.classes)
    labels = np.asarray(store.labels)
    image_ids = store.meta["image_id"].astype(str).to_numpy()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        key_rows, packets = [], {}
        for r, rows in enumerate(sets):
            name = reader_name(r)
            items = tokens[r * per_reader:(r + 1) * per_reader]
            pid = packet_id(name, items, seed, identity)
            folder = tmp / READERS_DIR / name
            (folder / "images").mkdir(parents=True)
            form_items = []
            for pos, (row, item) in enumerate(zip(rows, items), start=1):
                png = png_bytes(images[row], image_size)
                (folder / "images" / f"{item}.png").write_bytes(png)
                names = [c for c, y in zip(classes, labels[row]) if y]
                src = "data:image/png;base64," + base64.b64encode(png).decode()
                form_items.append({"item": item, "labels": names, "src": src})
                key_rows.append({"reader": name, "packet_id": pid, "position": pos, "item": item,
                                 "test_row": int(row), "image_id": image_ids[row],
                                 "is_pie": bool(pies[row]), "pie_score": float(scores[row]),
                                 "labels": "|".join(names)})
            html = render_form(name, pid, form_items)
            (folder / f"{name}.html").write_text(html, encoding="utf-8")
            packets[name] = {"packet_id": pid, "form": f"{READERS_DIR}/{name}/{name}.html",
                             "form_sha256": _sha256(html.encode("utf-8")), "items": per_reader}
        _write_key(tmp / KEY_DIR, key_rows, {
            "format": KEY_FORMAT, "prunecxr_version": __version__, "seed": int(seed),
            "design": design.__dict__ | {"pies_per_reader": design.half},
            "results_dir": identity["results_dir"], "store": identity,
            "available": {"n_test": n_test, "pies": int(pies.sum()),
                          "non_pies": int((~pies).sum())},
            "questions": QUESTIONS, "response_columns": list(RESPONSE_COLUMNS),
            "packets": packets,
        })
        (tmp / "README.txt").write_text(_readme(readers), encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise StudyError(f"--out {out} already holds files; pass --force (force=True) "
                             f"to replace an existing packet")
        if not (out / KEY_DIR / "key.json").is_file():
            raise StudyError(f"--out {out} is not empty and is not a reader-study packet "
                             f"(no {KEY_DIR}/key.json); refusing to replace it even with --force")


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` onto ``out``; an old packet is moved aside, then deleted."""
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "packet")
    os.replace(tmp, out)  # onto a missing or empty folder: atomic on POSIX
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_key(folder: Path, rows: list[dict], info: dict) -> None:
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=list(KEY_COLUMNS)).to_csv(folder / "key.csv", index=False,
                                                          quoting=csv.QUOTE_MINIMAL)
    (folder / "key.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")


def _readme(readers: int) -> str:
    return (
        "Reader-study packet (prunecxr)\n"
        "==============================\n\n"
        f"readers/reader_NN/  one folder per reader ({readers}). Send reader NN their folder, or\n"
        "                    just reader_NN.html: it is self-contained (images embedded) and\n"
        "                    works offline in any modern browser. The PNGs are the same images,\n"
        "                    for viewing at full size outside the form.\n"
        "key/                which item is which test image and which are PIEs. Keep it private:\n"
        "                    never send it to a reader.\n\n"
        "Each reader answers every image and presses 'Save answers', which downloads\n"
        "reader_NN_responses.csv (or copy the text shown below the button into a file).\n"
        "Collect the files, then run (from this folder):\n\n"
        "    python -m prunecxr study analyze --key key --responses reader_*_responses.csv "
        "--out analysis\n"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_key(key: str | os.PathLike) -> tuple[pd.DataFrame, dict, Path]:
    """Load a packet key from the packet folder, its ``key/`` folder or ``key.json`` itself."""
    path = Path(key)
    for cand in (path, path / "key.json", path / KEY_DIR / "key.json"):
        if cand.is_file() and cand.name == "key.json":
            folder = cand.parent
            break
    else:
        raise StudyError(f"no reader-study key at {path} (expected key.json there, or in "
                         f"{path / KEY_DIR})")
    info = json.loads((folder / "key.json").read_text("utf-8"))
    if info.get("format") != KEY_FORMAT:
        raise StudyError(f"{folder / 'key.json'}: unsupported key format {info.get('format')!r}")
    table = pd.read_csv(folder / "key.csv", keep_default_na=False, na_values={"pie_score": [""]},
                        dtype={"reader": str, "item": str, "packet_id": str, "image_id": str,
                               "labels": str})
    missing = [c for c in KEY_COLUMNS if c not in table.columns]
    if missing:
        raise StudyError(f"{folder / 'key.csv'}: missing column(s) {missing}")
    return table, info, folder


def packet_summary(store, design: Design, pies, seed: int = 0) -> tuple[str, str]:
    """(the design in words, what a packet drawn on this build's PIEs holds): draws one packet
    in a temporary folder for as many readers as the PIEs allow, and checks its balance."""
    import tempfile

    import numpy as np

    pies = np.asarray(pies, dtype=bool)
    available = int(pies.sum())
    fits = min(design.readers, available // design.half, int((~pies).sum()) // design.half)
    design_text = (f"{design.readers} readers × {design.per_reader} images ({design.half} PIEs "
                   f"and {design.half} other images each), {design.readers * design.half} PIEs "
                   "in all")
    if fits < 1:
        return design_text, (f"This test set has only {available} PIEs, too few for even one "
                             f"reader's {design.half}; a packet needs a larger test set or fewer "
                             "images per reader.")
    with tempfile.TemporaryDirectory() as tmp:
        path = make_packet(store, f"{tmp}/packet", readers=fits, per_reader=design.per_reader,
                           seed=seed, method=design.method, dense=design.dense,
                           sparse=design.sparse, fraction=design.fraction, image_size=128)
        key, _, _ = read_key(path)
    balanced = bool((key.groupby("reader")["is_pie"].mean() == 0.5).all())
    return design_text, (
        ("This test set has enough PIEs for the whole design; " if fits == design.readers
         else f"This test set has {available} PIEs, enough for {fits} of the {design.readers} "
              "readers; ")
        + f"a packet drawn for {fits} reader(s) here held {len(key)} images, "
        + ("half of them PIEs for every reader" if balanced else "unbalanced (a bug)")
        + f", none shown to two readers ({key['image_id'].nunique()} distinct images).")
