"""Profiles, overrides, validation messages and the results key."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from prunecxr.config import LADDER_METHODS, PROFILES, Config, ladder, load_config
from prunecxr.prune import sparsity_grid


def test_profiles_load_and_default_grid():
    for name in PROFILES:
        cfg = load_config(name)
        assert cfg.profile == name
    default = load_config("default")
    assert default.sparsities == tuple(sparsity_grid())
    assert len(default.sparsities) == 20 and default.sparsities[-1] == 0.95
    assert default.population >= 8 and default.image_size >= 64  # the preconditions of the default
    paper = load_config("paper")
    assert (paper.arch, paper.image_size, paper.batch_size, paper.lr) == ("resnet50", 256, 256, 1e-4)
    assert (paper.max_epochs, paper.patience, paper.population, paper.weights) == (60, 15, 30, "imagenet")


def test_overrides_are_typed():
    cfg = load_config("smoke", overrides=["population=5", "lr=0.01", "augment=false",
                                          "methods=l1", "sparsities=0,0.5,0.9", "data.n_images=300"])
    assert cfg.population == 5 and cfg.lr == 0.01 and cfg.augment is False
    assert cfg.methods == ("l1",) and cfg.sparsities == (0.0, 0.5, 0.9)
    assert cfg.data["n_images"] == 300
    assert load_config("smoke", overrides={"population": 4}).population == 4


def test_key_tracks_results_fields_only():
    a = load_config("smoke")
    assert a.key == load_config("smoke").key
    assert a.key != load_config("smoke", overrides=["population=4"]).key
    assert a.key != load_config("smoke", overrides=["data.n_images=700"]).key
    # execution knobs do not change results, so they do not change the key
    assert a.key == load_config("smoke", overrides=["threads=1", "device=cpu", "workers=2"]).key
    for changed in ("width=32", "precision=bf16", "lr_schedule=constant", "control_population=1",
                    "channels_last=false", "lr_epochs=5"):
        assert a.key != load_config("smoke", overrides=[changed]).key, changed


def test_control_population_limits_the_controls_only():
    cfg = load_config("smoke", overrides=["population=3", "control_population=2"])
    assert cfg.method_seeds("l1") == [0, 1, 2] and cfg.method_seeds("random") == [0, 1]
    assert load_config("smoke").method_seeds("random") == load_config("smoke").seeds
    small = load_config("default", overrides=["population=2"])  # fewer seeds than controls
    assert small.method_seeds("random") == small.seeds == [0, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "defualt"}, "did you mean 'default'"),
    ({"dataset": "nih"}, "dataset must be one of"),
    ({"overrides": ["populaton=3"]}, "unknown parameter 'populaton'"),
    ({"overrides": ["population=three"]}, "population=three: expected an integer"),
    ({"overrides": ["population=0"]}, "population must be >= 1"),
    ({"overrides": ["methods=l1,magnitude"]}, "unknown compression method 'magnitude'"),
    ({"overrides": ["sparsities=0.1,0.5"]}, "must start at 0.0"),
    ({"overrides": ["sparsities=0,0.5,0.4"]}, "increase strictly"),
    ({"overrides": ["arch=vgg16"]}, "arch must be one of"),
    ({"overrides": ["population"]}, "must look like field=value"),
    ({"overrides": ["width=20"]}, "width must be a positive multiple of 8"),
    ({"overrides": ["width=32", "weights=imagenet"]}, "need width=64"),
    ({"overrides": ["precision=fp16"]}, "precision must be one of"),
    ({"overrides": ["lr_schedule=step"]}, "lr_schedule must be one of"),
    ({"overrides": ["control_population=-1"]}, "control_population must be >= 0"),
    ({"overrides": ["workers=0"]}, "workers must be >= 1"),
])
def test_bad_parameters_are_named(kwargs, message):
    kwargs = {"profile": "smoke", **kwargs}
    with pytest.raises(ValueError, match=message):
        load_config(**kwargs)


@pytest.mark.parametrize("override, message", [
    ("sparsities=a,b", "--set sparsities=a,b: expected a comma-separated list of numbers, "
                       "e.g. sparsities=0,0.05,0.1"),
    ("quant_bits=x", "--set quant_bits=x: expected a comma-separated list of integers, "
                     "e.g. quant_bits=8,4,2"),
    ("compile=maybe", "--set compile=maybe: expected true or false"),
    ("lr=fast", "--set lr=fast: expected a number"),
    ("population=1.5", "--set population=1.5: expected an integer"),
    ("data={", '--set data={: expected a JSON object, e.g. {"n_images": 2000}'),
    ("ladder_population=0", "ladder_population must be >= 1, got 0"),
    ("min_delta=1", "min_delta must be in [0, 1), got 1.0"),
    ("min_delta=-0.1", "min_delta must be in [0, 1), got -0.1"),
    ("lr_epochs=0", "lr_epochs must be >= 1, got 0"),
    ("lr_patience=-1", "lr_patience must be >= 0, got -1"),
    ("patience=0", "patience must be >= 1, got 0"),
    ("lr=0", "lr must be > 0, got 0.0"),
    ("methods=", "methods must name at least one pruning method"),
    ("methods=Xl1", "methods: unknown compression method 'Xl1'; allowed: "
                       "['channel_l1', 'channel_l1_bn', 'channel_l2', 'l1', 'l1_ft', "
                       "'local_l1', 'quant', 'random']"),
    ("methods=l1,l1", "methods must not repeat a method, got ['l1', 'l1']"),
    ("sparsities=0.1,0.5", "sparsities must start at 0.0 (the dense model)"),
    ("sparsities=0,0.5,1", "sparsities must increase strictly within [0, 1), got [0.0, 0.5, 1.0]"),
    ("sparsities=0,0.5,0.5", "sparsities must increase strictly within [0, 1), got [0.0, 0.5, 0.5]"),
    ("channel_ratios=0,0.5", "channel_ratios must increase strictly within (0, 1), got [0.0, 0.5]"),
    ("channel_ratios=0.5,1", "channel_ratios must increase strictly within (0, 1), got [0.5, 1.0]"),
    ("finetune_sparsities=0,0.5",
     "finetune_sparsities must increase strictly within (0, 1), got [0.0, 0.5]"),
    ("quant_bits=9,4", "quant_bits must be integers from 8 down to 2, strictly decreasing, "
                       "got [9, 4]"),
    ("quant_bits=8,1", "quant_bits must be integers from 8 down to 2, strictly decreasing, "
                       "got [8, 1]"),
    ("quant_bits=4,4", "quant_bits must be integers from 8 down to 2, strictly decreasing, "
                       "got [4, 4]"),
    ("quant_bits=2,4", "quant_bits must be integers from 8 down to 2, strictly decreasing, "
                       "got [2, 4]"),
    ("finetune_epochs=0", "finetune_epochs must be >= 1, got 0"),
    ("finetune_lr=0", "finetune_lr must be > 0, got 0.0"),
    ("device=tpu", "device must be one of ('auto', 'cpu', 'cuda'), got 'tpu'"),
    ("arch=resnet19", "arch must be one of ('resnet18', 'resnet34', 'resnet50', 'resnet101', "
                      "'resnet152'), got 'resnet19' (did you mean 'resnet18'?)"),
])
def test_a_bad_override_gets_the_whole_message(override, message):
    """The whole text: for a value that does not parse, how the user wrote it and what the
    field takes with an example; for a value that breaks a rule, the rule and the value."""
    with pytest.raises(ValueError) as caught:
        load_config("smoke", overrides=[override])
    assert str(caught.value) == message


def test_a_bad_profile_gets_the_whole_message():
    with pytest.raises(ValueError) as caught:
        load_config("defualt")
    assert str(caught.value) == ("--profile: profile must be one of " + ", ".join(PROFILES)
                                 + ", got 'defualt' (did you mean 'default'?)")


def test_in_a_chapter_the_message_names_the_override_as_written():
    from prunecxr.errors import notebook_names

    with notebook_names(), pytest.raises(ValueError) as caught:
        load_config("smoke", overrides=["lr=fast"])
    assert str(caught.value) == "override 'lr=fast': expected a number"


def test_fractions_are_read_to_ten_decimals():
    """So that 0.1 typed on the command line and 0.1 in a profile are one key."""
    assert load_config("smoke", overrides=["sparsities=0,0.123456789012"]).sparsities == (
        0.0, 0.123456789)
    assert load_config("smoke", overrides=["sparsities=0,0.1,0.30000000000000004"]).key == \
        load_config("smoke", overrides=["sparsities=0,0.1,0.3"]).key


@pytest.mark.parametrize("override", [
    "ladder_population=1", "min_delta=0", "min_delta=0.99", "lr_epochs=1", "lr_patience=0",
    "patience=1", "lr=1e-9", "quant_bits=8,2", "quant_bits=8", "finetune_epochs=1",
    "finetune_lr=1e-9", "device=cuda", "device=auto", "channel_ratios=0.01,0.99",
    "sparsities=0,0.99", "finetune_sparsities=0.5,0.6",
])
def test_the_edges_of_each_rule_are_allowed(override):
    load_config("smoke", overrides=[override])


@pytest.mark.parametrize("text, value", [
    ("1", True), ("TRUE", True), ("Yes", True), ("on", True),
    ("0", False), ("False", False), ("NO", False), ("off", False),
])
def test_booleans_are_read_in_any_case(text, value):
    assert load_config("smoke", overrides=[f"compile={text}"]).compile is value


def test_override_text_forms():
    """A list may be bracketed; a value may hold '='; a blank override string is no override;
    a list or tuple given from Python is taken as is; the profile names the default."""
    assert load_config("smoke", overrides=["sparsities=[0, 0.5]"]).sparsities == (0.0, 0.5)
    assert load_config("smoke", overrides=["sparsities=(0,0.5)"]).sparsities == (0.0, 0.5)
    assert load_config("smoke", overrides="  ") == load_config("smoke")
    assert load_config("smoke", overrides="population=2").population == 2
    assert load_config("smoke", overrides={"methods": ["l1", "random"]}).methods == ("l1", "random")
    assert load_config().profile == "default"
    with pytest.raises(ValueError) as caught:
        load_config("smoke", overrides=["population"])
    assert str(caught.value) == ("--set population: an override must look like field=value, "
                                 "e.g. population=5")
    with pytest.raises(ValueError) as caught:   # split at the first '=' only
        load_config("smoke", overrides=["lr=0.1=2"])
    assert str(caught.value) == "--set lr=0.1=2: expected a number"
    with pytest.raises(ValueError) as caught:
        load_config("smoke", overrides=["populaton=3"])
    allowed = [f.name for f in dataclasses.fields(Config) if f.name != "profile"]
    assert str(caught.value) == ("--set populaton=3: unknown parameter 'populaton' (did you mean "
                                 "'population'?); allowed: " + ", ".join(allowed)
                                 + ", data.<option>")
    with pytest.raises(ValueError, match="unknown parameter 'profile'"):  # load_config's own
        load_config("smoke", overrides=["profile=paper"])


@pytest.mark.parametrize("overrides, message", [
    ({"sparsities": 0.5}, "--set sparsities=0.5: expected a comma-separated list of numbers, "
                          "e.g. sparsities=0,0.05,0.1"),
    ({"methods": 5}, "--set methods=5: expected a list"),
    ({"population": [1, 2]}, "--set population=[1, 2]: expected an integer"),
    ({"population": True}, "--set population=True: expected an integer"),
    ({"augment": 1}, "--set augment=1: expected true or false"),
    ({"arch": 5}, "--set arch=5: expected text"),
    ({"data": [1]}, '--set data=[1]: expected a JSON object, e.g. {"n_images": 2000}'),
])
def test_a_python_override_of_the_wrong_type_is_named(overrides, message):
    """Overrides given as a dict (a chapter's parameter) keep their Python type, which must be
    the field's: a clear message, not a TypeError deep in validation."""
    with pytest.raises(ValueError) as caught:
        load_config("smoke", overrides=overrides)
    assert str(caught.value) == message


def test_python_overrides_take_the_field_type():
    cfg = load_config("smoke", overrides={"lr": 1, "population": np.int64(3),
                                          "widths": [8, 16], "augment": False,
                                          "arch": "resnet34", "data": {"n_images": 300}})
    assert (cfg.lr, cfg.population, cfg.widths, cfg.augment) == (1.0, 3, (8, 16), False)
    assert (cfg.arch, cfg.data) == ("resnet34", {"n_images": 300})
    assert type(cfg.lr) is float and type(cfg.population) is int


def test_the_arguments_beside_the_overrides():
    """The data folder, a second dataset (its own data options), and every data.* override."""
    assert load_config("smoke", data_dir=Path("/x/y")).data_dir == "/x/y"
    nih = load_config("smoke", dataset="nih-cxr-lt")
    assert nih.dataset == "nih-cxr-lt" and nih.data == {}
    smoke = load_config("smoke")
    assert load_config("smoke", dataset=smoke.dataset).data == smoke.data  # same dataset: kept
    cfg = load_config("smoke", overrides=["data.n_images=300", "data.label_noise=0.5", "population=2"])
    assert (cfg.data["n_images"], cfg.data["label_noise"], cfg.population) == (300, 0.5, 2)


def test_ladder_rungs_run_no_controls():
    """Every other rung sweeps LADDER_METHODS on its first ladder_population seeds alone."""
    cfg = load_config("smoke", overrides=["widths=8,16", "control_population=2", "population=3",
                                          "ladder_population=2"])
    assert cfg.width == 16
    other, own = ladder(cfg)
    assert own == cfg
    assert (other.width, other.control_population, other.population) == (8, 0, 2)
    assert other.methods == LADDER_METHODS
