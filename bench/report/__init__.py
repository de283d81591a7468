"""Every table and plot of a results folder, rebuilt from its store alone (no retraining).

The public face of the report package; the work is done by job in its modules: ``build``
(``write_report``: staging, publishing, the reference model), ``sections`` (the three kinds of
report), ``notes`` (the text under the tables), ``index`` (README.md and example predictions),
``aggregate`` (records to frames), ``tables``, ``plots``, ``compute``, ``cross_eval`` and
``statistics``."""
from __future__ import annotations

from .aggregate import cost_frame
from .build import DEFAULT_REFERENCE, resolve_reference, write_report
from .index import read_examples
from .tables import cost_table

__all__ = ["DEFAULT_REFERENCE", "cost_frame", "cost_table", "read_examples", "resolve_reference",
           "write_report"]
