import json
import re

import pytest

from hw.arch.config import (PE_MEMORY_BITS_MAX, PE_MEMORY_WORDS_MAX, PRESETS, EIEConfig,
                            load_config)
from hw.arch.errors import EIEError
from hw.arch.memories import pe_memories


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


# ---- configuration files: one line naming the file for anything that is not a config ----

@pytest.mark.parametrize("data, msg", [
    (b'{"name": "caf\xe9"}', "config file {p} is not UTF-8 text (byte 0xe9 at offset 13); "
                            "save it as UTF-8"),
    (b'{"n_pes" 4}', "config file {p} is not valid JSON (Expecting ':' delimiter at line 1 "
                     "column 10); correct it"),
    (b"[1, 2]", "{p}: config must be a JSON object, got list"),
    (b'"eie64"', "{p}: config must be a JSON object, got str"),
    (b'{"n_pes": 4, "colour": 1}', "{p}: config has unknown field(s): colour"),
    (b'{"n_pes": "4"}', "{p}: config 'eie64': n_pes must be an integer, got '4'"),
    (b'{"clock_mhz": NaN}', "{p}: config 'eie64': clock_mhz must be a number in (0, 10000], "
                            "got nan"),
    (b'{"spmat_depth": 1e400}', "{p}: config 'eie64': spmat_depth must be an integer, got inf"),
    (b"[" * 100000, "config file {p} is not valid JSON (nested too deeply); correct it"),
    (b" " * (1 << 20) + b"{}", "config file {p} is over 1048576 bytes, too long for one"),
])
def test_load_config_file_problems(tmp_path, data, msg):
    p = tmp_path / "my.json"
    p.write_bytes(data)
    with pytest.raises(EIEError) as e:
        load_config(str(p))
    assert str(e.value) == msg.format(p=p)


def test_load_config_reads_utf8_with_a_bom_and_refuses_json_text(tmp_path):
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + PRESETS["tiny"].replace(name="mine").to_json().encode())
    assert load_config(str(p)) == PRESETS["tiny"].replace(name="mine")
    with pytest.raises(EIEError, match=r"--config takes a preset name \(eie64, .*\) or a JSON "
                                       r"file, not JSON text \('\{bad'\)"):
        load_config("{bad")


# ---- what a generated design holds ----

def test_every_preset_is_generatable():
    for cfg in PRESETS.values():
        assert cfg.check_generatable() is cfg


@pytest.mark.parametrize("changes, field, value, unit, limit", [
    # the sweep's compile-time Spmat (sim.studies.sweep.SPMAT_CAP): valid, not generatable
    ({"spmat_depth": 1 << 24}, "spmat_depth", 1 << 24, "bits of memory", "8,388,608 (1 MiB)"),
    ({"ptr_depth": 1 << 24}, "ptr_depth", 1 << 24, "bits of memory", "8,388,608 (1 MiB)"),
    ({"act_depth": 1 << 18}, "act_depth", 1 << 18, "bits of memory", "8,388,608 (1 MiB)"),
    # narrow words: few bits, but too many words for the generator
    ({"spmat_word_bits": 8, "spmat_depth": 1 << 19}, "spmat_depth", 1 << 19, "memory words",
     "262,144"),
])
def test_too_much_memory_is_refused_where_hardware_is_made(changes, field, value, unit, limit):
    cfg = PRESETS["tiny"].replace(**changes)  # a valid configuration: the cycle model takes it
    with pytest.raises(EIEError) as e:
        cfg.check_generatable()
    msg = str(e.value)
    assert msg.startswith(f"config 'tiny': {field} = {value} gives a PE ")
    assert f" {unit} (" in msg and f"of them for {field}), over the {limit} a generated " \
        f"design holds per PE; lower {field}, or run this configuration on the cycle model " \
        f"only (make cycles, make sweep)" in msg


def test_the_limits_leave_room_above_the_largest_preset():
    bits = max(sum(m.bits for m in pe_memories(c)) for c in PRESETS.values())
    words = max(sum(m.depth for m in pe_memories(c)) for c in PRESETS.values())
    assert 3 * bits < PE_MEMORY_BITS_MAX and 3 * words < PE_MEMORY_WORDS_MAX
    # just inside both limits: accepted
    PRESETS["tiny"].replace(spmat_depth=(PE_MEMORY_BITS_MAX - 40000) // 64).check_generatable()
