"""Options that mean the same thing are one definition (bench/cli/options.py), accepted and parsed
alike by every command that has them."""
import pytest

from bench.cli.main import command_parsers
from bench.cli.options import OPTIONS

SAMPLE = {"models": ["convlstm"], "seeds": ["1"], "dataset": ["mmnist3"],
          "dataset-config": ["my.toml"], "preset": ["smoke"], "data-root": ["data"],
          "cache-dir": ["cache"], "device": ["cpu"], "out": ["elsewhere"],
          "reference": ["convlstm"], "rerun": [], "no-progress": []}
# the shared options each command takes (the main command: every one of them)
SHARED = {"": list(OPTIONS),
          "evaluate": ["models", "seeds", "dataset", "dataset-config", "preset", "data-root",
                       "cache-dir", "device", "out", "rerun", "no-progress"],
          "report": ["out", "reference"],
          "download": ["data-root"]}
REQUIRED = {"": [], "evaluate": ["--dataset", "mmnist"], "report": [], "download": ["mnist"]}


def test_every_option_has_a_sample():
    assert SAMPLE.keys() == OPTIONS.keys()


@pytest.mark.parametrize("command", list(SHARED))
def test_each_shared_option_is_accepted_by_each_command(command):
    parser = command_parsers()[command]
    for name in SHARED[command]:
        flag = OPTIONS[name][0][0]
        args = parser.parse_args([*REQUIRED[command], flag, *SAMPLE[name]])
        value = getattr(args, flag[2:].replace("-", "_"))
        expected = True if not SAMPLE[name] else SAMPLE[name][0]
        if OPTIONS[name][1].get("type") is int:
            expected = int(expected)
        assert value == expected or value == [expected], (command, flag, value)


@pytest.mark.parametrize("command", list(SHARED))
def test_a_shared_option_parses_as_its_one_definition(command):
    """Each command's option with a shared flag has the shared type, action and choices, and
    the flags' aliases (--seed for --seeds): no command defines it again its own way."""
    parser = command_parsers()[command]
    by_flag = {flags[0]: (flags, definition) for flags, definition in OPTIONS.values()}
    for action in parser._actions:
        shared = [f for f in action.option_strings if f in by_flag]
        if not shared:
            continue
        flags, definition = by_flag[shared[0]]
        assert tuple(action.option_strings) == flags, (command, action.option_strings)
        assert action.type == definition.get("type"), (command, flags)
        assert action.choices == definition.get("choices"), (command, flags)
        assert (action.nargs == 0) == (definition.get("action") == "store_true"), (command, flags)
    names = {f for a in parser._actions for f in a.option_strings}
    assert {OPTIONS[n][0][0] for n in SHARED[command]} <= names


def test_a_changed_type_is_refused():
    import argparse

    from bench.cli.options import add_option

    with pytest.raises(ValueError, match="--seeds: type are fixed"):
        add_option(argparse.ArgumentParser(), "seeds", type=float)
