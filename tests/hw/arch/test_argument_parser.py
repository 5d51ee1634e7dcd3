"""The one-line argparse error every command-line entry point uses (hw.arch.errors)."""

from __future__ import annotations

import pytest

from hw.arch.errors import ArgumentParser


def test_bad_arguments_give_one_line_and_exit_2(capsys):
    p = ArgumentParser(prog="python -m x")
    p.add_argument("--n", type=int, required=True)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--n", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == ("python -m x: error: argument --n: invalid int value: 'many' "
                   "(--help lists the options)\n")
    with pytest.raises(SystemExit):
        p.parse_args([])
    assert capsys.readouterr().err.count("\n") == 1  # no usage block before it
