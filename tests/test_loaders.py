"""Real-format loaders (nih-cxr-lt, mimic-cxr-lt, csv) on small files written in those formats.

Every fixture is generated into pytest's ``tmp_path``: label CSVs with the real column names,
NIH-style PNGs (8-bit L, RGB, RGBA, 16-bit) and MIMIC-CXR-JPG's ``files/pXX/pNNNNNNNN/sNNNNNNNN``
layout. Each bad input asserts that the message names the file, the line and the column or image.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prunecxr.data import DataError, get_dataset
from prunecxr.data.classes import MIMIC_CXR_LT_CLASSES, NIH_CXR_LT_CLASSES
from prunecxr.data.tables import (
    load_csv,
    load_mimic_cxr_lt,
    load_nih_cxr_lt,
    patient_split,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*no positives:UserWarning")

SIZE = 16
NIH = "miccai2023_nih-cxr-lt_labels_{}.csv"
MIMIC = "miccai2023_mimic-cxr-lt_labels_{}.csv"

# id -> (patient, split, image kind, gray value, (width, height))
NIH_IMAGES = {
    "00000001_000.png": ("1", "train", "L", 100, (40, 30)),
    "00000001_001.png": ("1", "train", "RGB", (200, 100, 50), (24, 24)),
    "00000002_000.png": ("2", "train", "RGBA", (30, 60, 90, 255), (20, 36)),
    "00000003_000.png": ("3", "train", "I;16", 77, (32, 32)),
    "00000004_000.png": ("4", "val", "L", 0, (16, 16)),
    "00000005_000.png": ("5", "test", "L", 255, (50, 10)),
    "00000006_000.png": ("6", "test", "L", 180, (18, 22)),
}

# relative path -> (subject_id, study_id, split, gray value, (width, height))
MIMIC_IMAGES = {
    "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg":
        ("10000032", "50414267", "train", 90, (200, 160)),
    "files/p10/p10000032/s53189527/2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab.jpg":
        ("10000032", "53189527", "train", 120, (48, 64)),
    "files/p10/p10000033/s50000001/aaaa0001.jpg": ("10000033", "50000001", "train", 60, (40, 40)),
    "files/p10/p10000034/s50000002/aaaa0002.jpg": ("10000034", "50000002", "val", 150, (30, 40)),
    "files/p11/p11000035/s50000003/aaaa0003.jpg": ("11000035", "50000003", "test", 200, (40, 30)),
    "files/p11/p11000036/s50000004/aaaa0004.jpg": ("11000036", "50000004", "test", 30, (36, 36)),
}


# --------------------------------------------------------------------------- fixture writers


def write_image(path: Path, kind: str, value, size: tuple[int, int]) -> None:
    """A constant image of one PIL mode (``I;16`` holds ``value * 257``, the same gray)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "I;16":
        img = Image.fromarray(np.full(size[::-1], value * 257, dtype=np.uint16))
    else:
        img = Image.new(kind, size, value)
    if path.suffix == ".jpg":
        img.save(path, quality=95)
    else:
        img.save(path)


def expected_gray(kind: str, value) -> int:
    """The gray level a constant image of this kind must decode to."""
    if kind in ("L", "I;16"):
        return int(value)
    return int(Image.new(kind, (1, 1), value).convert("L").getpixel((0, 0)))


def labels_for(n: int, classes, seed: int) -> np.ndarray:
    """Seeded 0/1 labels with at least one positive per class over the whole set."""
    y = (np.random.default_rng(seed).random((n, len(classes))) < 0.3).astype(int)
    y[np.arange(len(classes)) % n, np.arange(len(classes))] = 1
    return y


def write_nih(root: Path, layout: str = "flat") -> Path:
    """NIH-CXR-LT label files and PNGs; ``layout`` 'flat' (images/) or 'nih' (images_*/images/)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = list(NIH_IMAGES)
    y = labels_for(len(ids), NIH_CXR_LT_CLASSES, seed=1)
    for split in ("train", "val", "test"):
        rows = [i for i, k in enumerate(ids) if NIH_IMAGES[k][1] == split]
        frame = pd.DataFrame(y[rows], columns=list(NIH_CXR_LT_CLASSES))
        frame.insert(0, "id", [ids[i] for i in rows])
        frame["subj_id"] = [int(NIH_IMAGES[ids[i]][0]) for i in rows]
        frame.to_csv(root / NIH.format(split), index=False)
    for n, (name, (_, _, kind, value, size)) in enumerate(NIH_IMAGES.items()):
        folder = (root / "images" if layout == "flat"
                  else root / f"images_{n % 2 + 1:03d}" / "images")
        write_image(folder / name, kind, value, size)
    return root


def write_mimic(root: Path, with_subject: bool = True) -> Path:
    """MIMIC-CXR-LT label files and JPGs under ``root/mimic-cxr-jpg/2.0.0/files/...``."""
    root.mkdir(parents=True, exist_ok=True)
    paths = list(MIMIC_IMAGES)
    y = labels_for(len(paths), MIMIC_CXR_LT_CLASSES, seed=2)
    for split in ("train", "val", "test"):
        rows = [i for i, p in enumerate(paths) if MIMIC_IMAGES[p][2] == split]
        frame = pd.DataFrame(y[rows], columns=list(MIMIC_CXR_LT_CLASSES))
        if with_subject:
            frame.insert(0, "subject_id", [int(MIMIC_IMAGES[paths[i]][0]) for i in rows])
            frame.insert(1, "study_id", [int(MIMIC_IMAGES[paths[i]][1]) for i in rows])
            frame.insert(2, "dicom_id", [Path(paths[i]).stem for i in rows])
        frame.insert(0 if not with_subject else 3, "path", [paths[i] for i in rows])
        frame.to_csv(root / MIMIC.format(split), index=False)
    for rel, (_, _, _, value, size) in MIMIC_IMAGES.items():
        write_image(root / "mimic-cxr-jpg" / "2.0.0" / rel, "L", value, size)
    return root


def write_generic(root: Path, n_patients: int = 40, split_col: bool = False, seed: int = 3) -> Path:
    """A generic multi-label CSV (3 classes, 1-3 tiny PNGs per patient, paths relative to it)."""
    rng = np.random.default_rng(seed)
    records = []
    for p in range(n_patients):
        for k in range(int(rng.integers(1, 4))):
            rel = f"img/pat{p:03d}_{k}.png"
            write_image(root / rel, "L", int(rng.integers(0, 256)), (8, 6))
            records.append({"path": rel, "patient_id": f"P{p:03d}",
                            "cat": int(rng.random() < 0.5), "dog": int(rng.random() < 0.2),
                            "rare": int(p % 17 == 0)})
    frame = pd.DataFrame(records)
    frame.loc[frame.index[:3], "cat"] = 1  # every class has positives
    if split_col:
        frame["split"] = patient_split(frame["patient_id"], seed=0)
    frame.to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def edit_csv(path: Path, fn) -> None:
    """Rewrite a label CSV through ``fn(frame) -> frame`` (all values kept as text)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(frame).to_csv(path, index=False)


def line_of(path: Path, text: str) -> int:
    """1-based line number (header = 1) of the first line containing ``text``."""
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return n
    raise AssertionError(f"{text!r} not in {path}")


def no_complete_cache(cache: Path) -> bool:
    """No finished cache folder and no leftover partial image file under ``cache``."""
    return not list(cache.rglob("complete.json")) and not list(cache.rglob("*.partial.npy"))


@pytest.fixture
def nih(tmp_path):
    return write_nih(tmp_path / "nih")


@pytest.fixture
def mimic(tmp_path):
    return write_mimic(tmp_path / "mimic")


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


# --------------------------------------------------------------------------- NIH-CXR-LT


def test_nih_loads_classes_labels_meta_and_pixels(nih, cache):
    ds = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache, workers=2)
    assert ds.classes == list(NIH_CXR_LT_CLASSES)
    assert ds.images().shape == (len(NIH_IMAGES), SIZE, SIZE) and ds.images().dtype == np.uint8
    assert list(ds.meta.columns[:4]) == ["image_id", "patient", "split", "path"]
    assert set(ds.meta["image_id"]) == set(NIH_IMAGES)
    for i, row in ds.meta.iterrows():
        patient, split, kind, value, _ = NIH_IMAGES[row["image_id"]]
        assert row["patient"] == patient and row["split"] == split
        assert Path(row["path"]).is_absolute() and Path(row["path"]).name == row["image_id"]
        # a constant image stays exactly that gray after decoding, mode conversion and resizing
        assert np.all(ds.images()[i] == expected_gray(kind, value)), (row["image_id"], kind)
    train = pd.read_csv(nih / NIH.format("train"))
    first = ds.meta.index[ds.meta["image_id"] == train["id"][0]][0]
    assert list(ds.labels[first]) == list(train.loc[0, list(NIH_CXR_LT_CLASSES)])
    assert isinstance(ds.meta["patient"][0], str)


def test_nih_finds_images_in_nih_subfolder_layout(tmp_path, cache):
    data = write_nih(tmp_path / "nih", layout="nih")
    assert not (data / "images").exists()
    ds = get_dataset("nih-cxr-lt", data_dir=data, image_size=SIZE, cache_dir=cache)
    assert len(ds) == len(NIH_IMAGES)
    assert {Path(p).parent.parent.name for p in ds.meta["path"]} == {"images_001", "images_002"}


def test_cache_is_reused_without_decoding(nih, cache, monkeypatch):
    first = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    pixels = np.array(first.images())

    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded again")

    monkeypatch.setattr(Image, "open", refuse)
    again = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    assert again.identity == first.identity
    np.testing.assert_array_equal(again.images(), pixels)
    pd.testing.assert_frame_equal(again.meta, first.meta)
    # a changed label file or a touched image is a different dataset: it must decode again
    edit_csv(nih / NIH.format("test"), lambda f: f.assign(Hernia="1"))
    with pytest.raises(DataError, match="7 of 7 image file.*decoded again"):
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)


def test_touched_image_changes_identity(nih, cache):
    first = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    img = nih / "images" / "00000004_000.png"
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache).identity != first.identity
    assert load_nih_cxr_lt(nih, image_size=SIZE + 1, cache_dir=cache).images().shape[1:] == (
        SIZE + 1, SIZE + 1)


def test_moved_data_folder_keeps_cache_and_reports_new_paths(nih, tmp_path, cache, monkeypatch):
    first = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    moved = tmp_path / "elsewhere"
    shutil.copytree(nih, moved, copy_function=shutil.copy2)  # keeps mtimes
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded again"))
    ds = load_nih_cxr_lt(moved, image_size=SIZE, cache_dir=cache)
    assert ds.identity == first.identity
    assert all(p.startswith(str(moved)) for p in ds.meta["path"])


def test_misspelled_class_column_suggests_closest(nih, cache):
    edit_csv(nih / NIH.format("val"), lambda f: f.rename(columns={"Pleural Thickening":
                                                                  "Pleural_Thickening"}))
    with pytest.raises(DataError) as err:
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    msg = str(err.value)
    assert NIH.format("val") in msg and "'Pleural Thickening'" in msg
    assert "did you mean 'Pleural_Thickening'" in msg
    assert no_complete_cache(cache)


def test_value_other_than_0_1_names_file_line_and_column(nih, cache):
    path = nih / NIH.format("train")

    def uncertain(f):
        f.loc[2, "Edema"] = "-1"
        return f

    edit_csv(path, uncertain)
    with pytest.raises(DataError) as err:
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    msg = str(err.value)
    assert f"{NIH.format('train')}, line 4" in msg  # header is line 1, data row 3 is line 4
    assert "'Edema'" in msg and "'-1'" in msg


def test_duplicate_image_id_names_both_places(nih, cache):
    edit_csv(nih / NIH.format("test"),
             lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    with pytest.raises(DataError, match=r"duplicate image id '00000005_000.png' at "
                                         r".*test\.csv, line 2 and .*test\.csv, line 4"):
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)


def test_patient_in_two_splits_names_patient_and_lines(nih, cache):
    edit_csv(nih / NIH.format("val"), lambda f: f.assign(subj_id="2"))
    with pytest.raises(DataError) as err:
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    msg = str(err.value)
    assert "patient '2'" in msg
    assert f"train at {NIH.format('train')}, line 4" in msg
    assert f"val at {NIH.format('val')}, line 2" in msg


def test_empty_split_file(nih, cache):
    edit_csv(nih / NIH.format("val"), lambda f: f.iloc[:0])
    with pytest.raises(DataError, match=re.escape(NIH.format("val")) + r".*'val' split is empty"):
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)


def test_missing_label_file_suggests_name(nih, cache):
    (nih / NIH.format("val")).rename(nih / NIH.format("valid"))
    with pytest.raises(DataError, match=r"not found: .*_val\.csv; did you mean .*_valid\.csv"):
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)


def test_missing_images_are_named_and_counted(nih, cache):
    (nih / "images" / "00000006_000.png").unlink()
    (nih / "images" / "00000003_000.png").unlink()
    with pytest.raises(DataError) as err:
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    msg = str(err.value)
    assert "2 of 7 image file(s) missing" in msg
    assert f"00000006_000.png ({NIH.format('test')}, line 3)" in msg
    assert f"00000003_000.png ({NIH.format('train')}, line 5)" in msg
    assert no_complete_cache(cache)


def test_undecodable_image_leaves_no_cache_and_fixed_input_builds(nih, cache):
    bad = nih / "images" / "00000005_000.png"
    bad.write_bytes(b"not a png at all")
    truncated = nih / "images" / "00000001_000.png"
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(DataError) as err:
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache, workers=2)
    msg = str(err.value)
    assert "2 of 7 image file(s) could not be decoded" in msg
    assert f"00000005_000.png ({NIH.format('test')}, line 2)" in msg
    assert f"00000001_000.png ({NIH.format('train')}, line 2)" in msg
    assert no_complete_cache(cache)
    write_image(bad, "L", 255, (50, 10))
    write_image(truncated, "L", 100, (40, 30))
    ds = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    assert len(ds) == 7 and ds.images().shape == (7, SIZE, SIZE)
    assert len(list(cache.rglob("complete.json"))) == 1


def test_class_without_positives_in_a_split_warns(nih, cache):
    edit_csv(nih / NIH.format("val"), lambda f: f.assign(Hernia="0"))
    with pytest.warns(UserWarning, match="no positives in the val split"):
        ds = load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache)
    assert ds.counts("val")["Hernia"] == 0


def test_bad_options_are_refused(nih, cache):
    with pytest.raises(DataError, match="channels must be 1"):
        load_nih_cxr_lt(nih, image_size=SIZE, cache_dir=cache, channels=3)
    with pytest.raises(DataError, match="image_size"):
        load_nih_cxr_lt(nih, image_size=0, cache_dir=cache)


# --------------------------------------------------------------------------- MIMIC-CXR-LT


def test_mimic_loads_jpgs_and_keeps_id_columns(mimic, cache):
    ds = get_dataset("mimic-cxr-lt", data_dir=mimic, image_size=SIZE, cache_dir=cache)
    assert ds.classes == list(MIMIC_CXR_LT_CLASSES)
    assert ds.images().shape == (len(MIMIC_IMAGES), SIZE, SIZE)
    for col in ("subject_id", "study_id", "dicom_id"):
        assert col in ds.meta.columns
    root = mimic / "mimic-cxr-jpg" / "2.0.0"
    for i, row in ds.meta.iterrows():
        subject, _, split, value, _ = MIMIC_IMAGES[row["image_id"]]
        assert row["patient"] == subject and row["split"] == split
        assert Path(row["path"]) == root / row["image_id"]
        assert np.abs(ds.images()[i].astype(int) - value).max() <= 2  # JPEG is lossy


def test_mimic_patient_parsed_from_path_without_subject_id(tmp_path, cache):
    data = write_mimic(tmp_path / "m", with_subject=False)
    images = data / "mimic-cxr-jpg" / "2.0.0"
    ds = load_mimic_cxr_lt(data, images_dir=images, image_size=SIZE, cache_dir=cache)
    assert dict(zip(ds.meta["image_id"], ds.meta["patient"])) == {
        p: v[0] for p, v in MIMIC_IMAGES.items()}


def test_mimic_missing_class_column(mimic, cache):
    edit_csv(mimic / MIMIC.format("test"), lambda f: f.drop(columns=["Fracture"]))
    with pytest.raises(DataError, match=re.escape(MIMIC.format("test")) + r".*'Fracture'"):
        load_mimic_cxr_lt(mimic, image_size=SIZE, cache_dir=cache)


def test_mimic_wrong_root_names_missing_files(mimic, cache):
    with pytest.raises(DataError) as err:
        load_mimic_cxr_lt(mimic, images_dir=mimic / "nowhere", image_size=SIZE, cache_dir=cache)
    msg = str(err.value)
    assert "6 of 6 image file(s) missing" in msg and "and 1 more" in msg
    assert f"{MIMIC.format('train')}, line 2" in msg


# --------------------------------------------------------------------------- generic CSV


def test_patient_split_is_patient_level_seeded_and_near_70_10_20():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{i}" for i in range(1000)], rng.integers(1, 4, 1000))
    split = patient_split(patients, seed=7)
    per_patient = pd.DataFrame({"p": patients, "s": split}).groupby("p")["s"].nunique()
    assert (per_patient == 1).all()
    shares = pd.Series(split).value_counts(normalize=True)
    assert abs(shares["train"] - 0.7) < 0.03 and abs(shares["val"] - 0.1) < 0.02
    assert abs(shares["test"] - 0.2) < 0.03
    np.testing.assert_array_equal(split, patient_split(patients, seed=7))
    np.testing.assert_array_equal(split[::-1], patient_split(patients[::-1], seed=7))
    assert (split != patient_split(patients, seed=8)).any()
    assert set(patient_split(["a", "b", "c"], seed=0)) == {"train", "val", "test"}


def test_csv_seeded_split_end_to_end(tmp_path, cache):
    csv = write_generic(tmp_path / "g")
    ds = load_csv(csv, image_size=8, seed=0, cache_dir=cache)
    assert ds.classes == ["cat", "dog", "rare"]  # path and patient_id are not classes
    assert ds.meta.groupby("patient")["split"].nunique().max() == 1
    assert set(ds.meta["patient"]) == set(pd.read_csv(csv)["patient_id"])
    again = load_csv(csv, image_size=8, seed=0, cache_dir=cache)
    assert list(again.meta["split"]) == list(ds.meta["split"])
    other = load_csv(csv, image_size=8, seed=1, cache_dir=cache)
    assert other.identity != ds.identity and list(other.meta["split"]) != list(ds.meta["split"])


def test_csv_split_column_and_each_image_its_own_patient(tmp_path, cache):
    csv = write_generic(tmp_path / "g", split_col=True)
    edit_csv(csv, lambda f: f.drop(columns=["patient_id"]).assign(
        split=f["split"].replace({"val": "Validate"})))
    ds = load_csv(csv, image_size=8, cache_dir=cache)
    assert list(ds.meta["patient"]) == list(ds.meta["image_id"])
    assert set(ds.meta["split"]) == {"train", "val", "test"}


def test_csv_non_binary_default_class_column_explains_default(tmp_path, cache):
    csv = write_generic(tmp_path / "g")
    edit_csv(csv, lambda f: f.assign(view="PA"))
    with pytest.raises(DataError) as err:
        load_csv(csv, image_size=8, cache_dir=cache)
    msg = str(err.value)
    assert "labels.csv, line 2" in msg and "'view'" in msg and "'PA'" in msg
    assert "class_cols" in msg
    ds = load_csv(csv, image_size=8, class_cols=["cat", "dog"], cache_dir=cache)
    assert ds.classes == ["cat", "dog"] and "view" in ds.meta.columns


def test_csv_bad_names_and_values(tmp_path, cache):
    csv = write_generic(tmp_path / "g", split_col=True)
    with pytest.raises(DataError, match=r"labels\.csv: missing column\(s\) 'cats' "
                                        r"\(did you mean 'cat'\?\)"):
        load_csv(csv, class_cols=["cats"], image_size=8, cache_dir=cache)
    with pytest.raises(DataError, match=r"labels\.csv: missing column\(s\) 'image'"):
        load_csv(csv, image_col="image", image_size=8, cache_dir=cache)
    line = line_of(csv, "pat000_0.png")
    edit_csv(csv, lambda f: f.assign(split=np.where(f.index == 0, "holdout", f["split"])))
    with pytest.raises(DataError, match=rf"labels\.csv, line {line}: column 'split' has value "
                                        r"'holdout'"):
        load_csv(csv, image_size=8, cache_dir=cache)
    edit_csv(csv, lambda f: f.assign(split=f["split"].replace({"holdout": "train",
                                                               "val": "train"})))
    with pytest.raises(DataError, match=r"the 'val' split is empty \(column 'split'"):
        load_csv(csv, image_size=8, cache_dir=cache)
    assert no_complete_cache(cache)
