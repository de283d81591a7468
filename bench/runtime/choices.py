"""Closed sets of option values: the words a message uses for the accepted values, and the
error for a value outside its set. The sets themselves are ``bench.config.CHOICES``."""
from __future__ import annotations

from collections.abc import Sequence


def accepted(choices: Sequence[str]) -> str:
    """The accepted values as every message names them: ``accepted: adamw, adam``."""
    return f"accepted: {', '.join(choices)}"


def unknown_choice(what: str, value: object, choices: Sequence[str]) -> ValueError:
    """The error (to raise) for ``value`` outside ``choices``: ``unknown optimizer 'sgd';
    accepted: adamw, adam``; ``what`` names the option in the message."""
    return ValueError(f"unknown {what} {value!r}; {accepted(choices)}")
