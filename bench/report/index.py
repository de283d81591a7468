"""A report's README.md index, and its example predictions (a grid and a GIF of each stored
cell's example clips)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from . import plots


def write_examples(folder: Path, out: Path) -> list[tuple]:
    """(title, grid, gif) of every stored example prediction (``folder``/examples/*.npz), the
    images written under ``out``/examples."""
    examples = []
    for npz in sorted((folder / "examples").glob("*.npz")):
        arrays = read_examples(npz)
        if arrays is None:
            continue
        title = npz.stem.replace("__", ", ")
        target = out / "examples" / npz.name
        target.parent.mkdir(parents=True, exist_ok=True)
        examples.append((title, plots.example_grid(arrays, title, target.with_suffix(".png")),
                         plots.example_gif(arrays, target.with_suffix(".gif"))))
    return examples


def read_examples(npz: Path) -> dict | None:
    """A cell's example clips, or None with a warning naming the file when it is damaged (the
    next run of that cell writes it again): one bad file never stops the report."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as error:  # BadZipFile, EOFError, ValueError, zlib.error...
        warnings.warn(f"{npz}: skipping damaged example clips ({type(error).__name__}: {error})",
                      stacklevel=2)
        return None


def write_index(folder, caption, sections, tables, figures, examples) -> None:
    """README.md of ``folder``: the caption, each (title, lines) section, the tables, each (title,
    image) figure and each (title, grid, gif) example, in that order."""
    lines = [f"# {caption}", ""]
    for title, body in sections:
        lines += [f"## {title}", "", *body, ""]
    lines += [f"Tables: {tables}; the store: [records.jsonl](records.jsonl).", ""]
    for title, path in figures:
        lines += [f"## {title}", "", f"![{title}]({path.name}) ([PDF]({path.with_suffix('.pdf').name}))", ""]
    if examples:
        lines += ["## Example predictions", ""]
        for title, grid, gif in examples:
            rel = f"examples/{grid.name}"
            lines += [f"### {title}", "", f"![{title}]({rel})", "",
                      f"![{title}, animated: target | prediction](examples/{gif.name})", ""]
    (folder / "README.md").write_text("\n".join(lines))
