"""The one rule for names that become a path component (a dataset's or a model's results folder)."""
from __future__ import annotations

import re

MAX_NAME_LENGTH = 100  # a file name holds 255 bytes; a name is combined with seeds and hashes
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


def safe_component(name: str, what: str = "name") -> str:
    """``name`` unchanged if it can be one path component under the output folder, else an error.

    Accepted: letters, digits and ``_ . + = -``, starting with a letter or digit, no '..', at
    most :data:`MAX_NAME_LENGTH` characters (so no '.', '..', separator or NUL byte ever leads
    a result outside ``--out``, and no name is too long for the file system).
    """
    if (not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name
            or len(name) > MAX_NAME_LENGTH):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else \
            f"{name[:40]!r}... ({len(name)} characters)"
        raise ValueError(f"{what} {shown} cannot be used in a file name; accepted: letters, "
                         "digits and _ . + = - (starting with a letter or digit, no '..', "
                         f"no path separators, at most {MAX_NAME_LENGTH} characters)")
    return name
