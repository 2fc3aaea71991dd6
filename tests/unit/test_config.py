"""The config: sections, one type map, validation on construction, flat and sectioned files."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechgrok import DataConfig, MechgrokError, ModelConfig, TrainConfig
from mechgrok.config import FIELD_KIND, RESUMABLE_FIELDS


def test_defaults_are_the_paper_and_sections_own_their_fields():
    cfg = TrainConfig()
    assert (cfg.data.task, cfg.data.p, cfg.data.frac_train) == ("add", 113, 0.3)
    assert (cfg.model.d_model, cfg.model.n_heads, cfg.model.d_mlp) == (128, 4, 512)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.steps) == (1e-3, 1.0, 20000)
    assert cfg.run.save_every == 100 and cfg.run_name == "add_p113_seed0"
    assert set(cfg.to_dict()) == set(FIELD_KIND) and set(cfg.sections()) == {"data", "model", "optim", "run"}


def test_flat_and_sectioned_construction_agree_and_replace_validates():
    flat = TrainConfig(p=23, lr=1e-2, d_model=64)
    sectioned = TrainConfig(data=DataConfig(p=23), model=ModelConfig(d_model=64), lr=1e-2)
    assert flat == sectioned and flat.to_dict() == sectioned.to_dict()
    assert flat.replace(steps=5).optim.steps == 5 and flat.optim.steps == 20000  # immutable
    with pytest.raises(AttributeError):
        flat.data = DataConfig()
    with pytest.raises(MechgrokError, match="lr must be positive"):
        flat.replace(lr=-1.0)


@pytest.mark.parametrize("field,value,message", [
    ("lr", math.inf, "lr must be a finite number"),
    ("lr", math.nan, "lr must be a finite number"),
    ("weight_decay", math.nan, "weight_decay must be a finite number"),
    ("init_scale", math.nan, "init_scale must be a finite number"),
    ("grokfast_lamb", math.nan, "grokfast_lamb must be a finite number"),
    ("stop_at_test_acc", math.nan, "stop_at_test_acc must be a finite number"),
    ("stop_at_test_acc", 1.5, "stop_at_test_acc must lie in [0, 1]"),
    ("seed", 99999999999999999999, "out of the 64-bit integer range"),
    ("seed", -1, "seed must not be negative"),
    ("steps", True, "steps must be an integer"),
    ("frac_train", "0.5", "frac_train must be a finite number"),
    ("frac_train", 0.001, "leaves an empty train or test set for 529 examples"),
    ("task", 3, "task must be a string"),
    ("dropout", 1.0, "dropout must lie in [0, 1)"),
])
def test_every_bad_value_is_refused_on_construction(field, value, message):
    with pytest.raises(MechgrokError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{"p": 23, field: value})


def test_an_integer_is_a_fine_float_but_not_the_reverse():
    assert TrainConfig(lr=1).optim.lr == 1.0
    with pytest.raises(MechgrokError, match="d_model must be an integer"):
        TrainConfig(d_model=64.0)


@pytest.mark.parametrize("document,message", [
    ([1, 2], "expected a table of config fields, got list"),
    (3, "got int"),
    (None, "got NoneType"),
    ({"steps": True}, "steps must be an integer, got True"),
    ({"frac_train": "0.5"}, "frac_train must be a finite number, got '0.5'"),
    ({"learning_rate": 0.1}, "unknown key 'learning_rate'"),
    ({"optim": {"p": 3}}, "unknown key 'optim.p'"),
])
def test_config_documents_accept_only_the_types_a_field_holds(document, message):
    with pytest.raises(MechgrokError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig.from_dict(document, source="c.json")


def test_sectioned_and_flat_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[data]\np = 23\n[optim]\nlr = 0.01\n[run]\nsave_every = 5\n')
    assert TrainConfig.file_values(toml) == {"p": 23, "lr": 0.01, "save_every": 5}
    flat = tmp_path / "c.json"
    flat.write_text(json.dumps(TrainConfig(p=23).to_dict()))  # what config.json has always held
    assert TrainConfig(**TrainConfig.file_values(flat)) == TrainConfig(p=23)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MechgrokError, match="is not UTF-8 text"):
        TrainConfig.file_values(binary)


def test_resumable_fields_are_the_bookkeeping_ones():
    assert set(RESUMABLE_FIELDS) == {"steps", "save_every", "dense_save_every", "dense_save_until", "log_every",
                                     "stop_at_test_acc", "device", "threads", "out"}
    a, b = TrainConfig(p=23), TrainConfig(p=23, steps=5, out="x", threads=1)
    assert a.differences(b) == "" and "lr: 0.001 there vs 0.01 now" in TrainConfig(p=23, lr=0.01).differences(a)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(FIELD_KIND) + ["data", "optim", "bogus"]),
                                              json_values, max_size=4)))
def test_any_json_document_gives_a_config_or_one_mechgrok_error(document):
    try:
        cfg = TrainConfig.from_dict(document, source="c.json")
    except MechgrokError as err:
        assert "\n" not in str(err) and str(err).startswith("c.json")
        return
    for name, value in cfg.to_dict().items():  # anything accepted has its field's exact type, finite
        kind = FIELD_KIND[name]
        assert type(value).__name__ == kind
        assert kind != "float" or math.isfinite(value)


def test_a_thread_count_beyond_any_machine_is_refused_in_one_line():
    with pytest.raises(MechgrokError, match="threads must be at most 1024"):
        TrainConfig(threads=2147483648)


def test_an_out_name_no_file_system_takes_is_refused_before_anything_is_made(tmp_path):
    with pytest.raises(MechgrokError, match="longer than 255 bytes"):
        TrainConfig(out=str(tmp_path / "parent" / ("x" * 300)))
    assert not (tmp_path / "parent").exists()


def test_a_grokfast_amplification_beyond_float32_is_refused():
    with pytest.raises(MechgrokError, match="grokfast_lamb must be at most"):
        TrainConfig(grokfast="ema", grokfast_lamb=1e308)
