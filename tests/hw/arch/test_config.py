import json
import re

import pytest

from hw.arch.config import PRESETS, EIEConfig, load_config
from hw.arch.errors import EIEError


def test_eie64_matches_published_design():
    c = PRESETS["eie64"]
    assert (c.n_pes, c.queue_depth, c.weight_index_bits, c.rel_index_bits) == (64, 8, 4, 4)
    assert (c.act_bits, c.weight_bits, c.spmat_word_bits) == (16, 16, 64)
    assert c.entries_per_word == 8
    assert c.spmat_kbytes_per_pe == 128
    assert c.codebook_size == 16 and c.max_rel_index == 15
    # 131,072 entries need an 18-bit pointer (EIE's 16-bit pointers reach only 64K)
    assert c.spmat_entries == 131072 and c.ptr_bits == 18
    # VGG-6 has 25,088 inputs
    assert c.max_vector >= 25088


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name):
    c = PRESETS[name]
    assert EIEConfig.from_json(c.to_json()) == c
    assert EIEConfig.from_dict(json.loads(c.to_json())).digest() == c.digest()


def test_digest_changes_with_any_field():
    c = PRESETS["tiny"]
    assert c.replace(queue_depth=3).digest() != c.digest()


@pytest.mark.parametrize("field,value,msg", [
    ("n_pes", 0, "n_pes must be in 1..1024, got 0"),
    ("queue_depth", 0, "queue_depth must be in 1..256, got 0"),
    ("weight_index_bits", 9, "weight_index_bits must be in 1..8, got 9"),
    ("rel_index_bits", 0, "rel_index_bits must be in 1..8, got 0"),
    ("act_frac", 16, "act_frac must be in 0..act_bits-1 (15), got 16"),
    ("acc_bits", 8, "acc_bits must be in act_bits+1..56 (17..56), got 8"),
    ("rounding", "up", "rounding must be one of half_up, truncate, half_even, got 'up'"),
    ("spmat_word_bits", 6, "spmat_word_bits (6) must hold at least one entry of"),
    ("ptr_depth", 7, "ptr_depth must be even (two banks), got 7"),
    ("n_pes", 2.0, "n_pes must be an integer, got 2.0"),
    ("saturate", 1, "saturate must be true or false, got 1"),
])
def test_invalid_fields(field, value, msg):
    with pytest.raises(EIEError, match=re.escape(msg)):
        PRESETS["eie64"].replace(**{field: value})


def test_load_config_errors(tmp_path):
    with pytest.raises(EIEError, match="unknown config 'nope'"):
        load_config("nope")
    with pytest.raises(EIEError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_pes": 4, "colour": 1}')
    with pytest.raises(EIEError, match="unknown field\\(s\\): colour"):
        load_config(str(bad))
    good = tmp_path / "good.json"
    good.write_text(PRESETS["tiny"].replace(name="mine").to_json())
    assert load_config(str(good)).name == "mine"


def test_acc_depth_defaults_to_act_depth_and_follows_it():
    cfg = PRESETS["tiny"]
    assert cfg.acc_depth is None and cfg.acc_words == cfg.act_depth
    assert cfg.replace(act_depth=24).acc_words == 24  # a derived config keeps the rule
    small = cfg.replace(acc_depth=8)
    assert small.acc_words == 8 and small.replace(act_depth=64).acc_words == 8
    assert EIEConfig.from_json(small.to_json()) == small


@pytest.mark.parametrize("bad", [1, 33, True, 2.5, "8"])
def test_acc_depth_must_fit_the_activation_memory(bad):
    with pytest.raises(EIEError, match="acc_depth must be an integer in 2..act_depth"):
        PRESETS["tiny"].replace(acc_depth=bad)
