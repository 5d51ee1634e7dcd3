"""The host interface's reload rule: one word per write, one write per clock, per PE."""

from hw.arch.regmap import reload_cycles


def test_reload_cycles_one_write_per_word_per_pe():
    assert reload_cycles(64, 0) == 0
    assert reload_cycles(4, 100) == 400
