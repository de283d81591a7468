"""Sharding a grid: ``--shard I/N`` and the cells of (model, seed) that shard I runs."""
from __future__ import annotations


# ---------------------------------------------------------------------------- sharding
def parse_shard(text: str) -> tuple[int, int]:
    """``'i/n'`` -> (i, n) with 1 <= i <= n."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise ValueError(f"--shard {text!r}: expected i/n with integers 1 <= i <= n, e.g. 1/4 "
                         "(the first of four parts)")
    return i, n


def shard_cells(model_names: list[str], seeds: list[int],
                shard: tuple[int, int] | None = None) -> list[tuple[str, int]]:
    """The (model, seed) cells of the grid, sorted; with ``shard=(i, n)`` every n-th from the
    i-th (round-robin), so the n shards are disjoint and together cover the grid."""
    if shard is None:  # the whole grid, in the order asked for
        return [(name, seed) for name in model_names for seed in dict.fromkeys(seeds)]
    cells = sorted({(name, seed) for name in model_names for seed in seeds})
    i, n = shard
    return cells[i - 1::n]
