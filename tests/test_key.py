"""The results key and folder: every field that determines results changes the key (found by
looping over the dataclass, so a new field is covered without touching this file), execution
knobs do not, the library version does, and two datasets' identities give two folders."""

from __future__ import annotations

import dataclasses
import types

import pytest

import prunecxr
from prunecxr import config as config_module
from prunecxr import pipeline
from prunecxr.config import Config, load_config, validate

# The declared execution knobs, pinned here: moving a field among them drops it from the key,
# so that must be a deliberate edit of this line too.
EXECUTION = {"device", "threads", "workers", "compile", "data_dir", "cache_dir"}
# The ladder's fields name other populations (the rungs, each with a key of its own), not
# this one's results.
LADDER = {"widths", "ladder_population"}
BASE = Config()  # width 64, so that weights="imagenet" is a valid change


def _other_choice(value: str, choices) -> str:
    return next(c for c in choices if c != value)


def changed(name: str, value):
    """A valid value of field ``name`` different from ``value``, chosen by the field's type
    (a few string fields with a closed set of values take another member of it)."""
    from prunecxr.compress import METHODS
    from prunecxr.data import DATASETS
    from prunecxr.models import ARCHS

    choices = {"profile": config_module.PROFILES, "dataset": DATASETS, "arch": ARCHS,
               "lr_schedule": config_module.LR_SCHEDULES, "precision": config_module.PRECISIONS,
               "device": ("auto", "cpu", "cuda"), "weights": ("none", "imagenet")}
    if name in choices:
        return _other_choice(value, choices[name])
    if name == "widths":
        return (8, 64) if value != (8, 64) else (16, 64)
    if name == "methods":
        return (*value, _other_choice(value[0], [m for m in METHODS if m not in value]))
    if name == "width":
        return value * 2
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5 + 0.01 if value < 1 else value + 1.0
    if isinstance(value, str):
        return value + "/other"
    if isinstance(value, tuple):
        return value[:-1]  # every grid is increasing or decreasing: a shorter one stays valid
    if isinstance(value, dict):
        return {**value, "n_images": 1234}
    raise TypeError(f"test_key.changed does not know how to change field {name!r} of type "
                    f"{type(value).__name__}: add a case")


def test_execution_fields_are_the_declared_ones():
    names = {f.name for f in dataclasses.fields(Config)}
    assert set(config_module.EXECUTION_FIELDS) == EXECUTION <= names
    assert set(config_module.LADDER_FIELDS) == LADDER <= names
    assert set(BASE.result_fields()) == names - EXECUTION - LADDER


@pytest.mark.parametrize("name", sorted({f.name for f in dataclasses.fields(Config)} - EXECUTION
                                        - LADDER))
def test_every_result_field_changes_the_key(name):
    other = dataclasses.replace(BASE, **{name: changed(name, getattr(BASE, name))})
    assert getattr(other, name) != getattr(BASE, name)
    validate(other)
    assert other.key != BASE.key, f"{name} does not change the results key"
    assert other.result_fields()[name] != BASE.result_fields()[name]


@pytest.mark.parametrize("name", sorted(EXECUTION | LADDER))
def test_execution_fields_leave_the_key(name):
    other = dataclasses.replace(BASE, **{name: changed(name, getattr(BASE, name))})
    validate(other)
    assert other.key == BASE.key


def test_the_library_version_changes_the_key(monkeypatch):
    before = load_config("smoke").key
    monkeypatch.setattr(prunecxr, "__version__", "999.0.0")
    if hasattr(config_module, "__version__"):  # config holds its own reference to the name
        monkeypatch.setattr(config_module, "__version__", "999.0.0")
    assert load_config("smoke").key != before


def test_two_dataset_identities_give_two_folders(tmp_path):
    """The same settings on other data (data_dir is an execution knob, outside the key) must
    not share a results folder: the dataset's identity names it too."""
    from prunecxr.data.phantom import phantom_identity

    a = load_config("smoke", dataset="csv", data_dir=str(tmp_path / "a.csv"))
    b = load_config("smoke", dataset="csv", data_dir=str(tmp_path / "b.csv"))
    assert a.key == b.key
    one = types.SimpleNamespace(identity=phantom_identity(600, 32, 1, 0.05), name="csv")
    two = types.SimpleNamespace(identity=phantom_identity(601, 32, 1, 0.05), name="csv")
    dir_a = pipeline.results_dir_for(a, one, tmp_path)
    assert dir_a == pipeline.results_dir_for(b, one, tmp_path)  # same data: same folder
    assert dir_a != pipeline.results_dir_for(b, two, tmp_path)
    assert dir_a.parent == tmp_path
