"""What a report writes: LaTeX that compiles (every cell and header escaped), figures that let
the trained models be told apart, and plots that do not depend on what was drawn before."""
import re
import shutil
import subprocess

import pytest
from test_report import record

from bench.report import plots, write_report
from bench.report.tables import latex_escape
from bench.store import ResultsStore

# Characters LaTeX reads as commands (%: a comment to the end of the line, which swallows the
# row's "\\"; _ and #: errors outside math; &: a new column).
SPECIAL = "%_#&"


def _bare(text: str, chars: str = SPECIAL) -> list[str]:
    """The characters of ``chars`` in ``text`` not escaped by a backslash."""
    return re.findall(rf"(?<!\\)[{re.escape(chars)}]", text)


@pytest.fixture
def unsaved_figures(monkeypatch):
    """Figures drawn but not written (the slow part), for tests about the tables."""
    def close(figure, path):
        plots.plt.close(figure)
        return [path.with_suffix(".png")]
    monkeypatch.setattr(plots, "save", close)


@pytest.fixture
def awkward_store(tmp_path, unsaved_figures):
    """Model names and an error with every LaTeX special character; the reference is named
    ``predrnn_v2`` so the comparison headers carry an underscore as well as "[95% CI]"."""
    store = ResultsStore(tmp_path)
    for seed in (0, 1):
        store.append({**record("predrnn_v2", seed, 20.0 + seed), "reference": "predrnn_v2"})
        store.append(record("net#1 & 50%", seed, 25.0 + seed))
    store.append(record("persistence", 0, 80.0, params=0))
    store.append(record("broken_model", 0, 0.0, status="failed",
                        error="ValueError: size_x 100% & #2 {a} ~b^c $d <e> |f|"))
    return store


def _tabular_rows(tex: str):
    """(column count, body lines) of each tabular in ``tex``."""
    for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}\n(.*?)\\end\{tabular\}", tex, re.S):
        yield len(spec), [line for line in body.splitlines() if not line.endswith("rule")]


def test_summary_tex_escapes_every_header_cell_and_caption(awkward_store, tmp_path):
    write_report(tmp_path)
    tex = (tmp_path / "summary.tex").read_text()
    header = next(line for line in tex.splitlines() if line.startswith("model & MSE"))
    assert r"[95\% CI]" in header and r"predrnn\_v2" in header
    cost_header = next(line for line in tex.splitlines() if line.startswith("model & params"))
    assert r"train eff. (\%)" in cost_header
    tables = list(_tabular_rows(tex))
    assert len(tables) == 2
    for columns, lines in tables:
        for line in lines:  # the header and every row: no bare %, _, #; & only between columns
            assert _bare(line, "%_#") == [], line
            assert len(_bare(line, "&")) == columns - 1, line
    captions = re.findall(r"\\caption\{(.*)\}", tex)
    assert len(captions) == 2 and all(_bare(c) == [] for c in captions)
    assert r"net\#1 \& 50\%" in tex and r"broken\_model" in tex


def test_latex_escape_escapes_once():
    assert latex_escape(r"a\b{c}") == r"a\textbackslash{}b\{c\}"  # the escape's braces kept
    assert latex_escape("95% CI, s², √x, ± 1, 2 × 3, Δ") == \
        r"95\% CI, s$^2$, $\surd$x, $\pm$ 1, 2 $\times$ 3, $\Delta$"


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (Debian: texlive-latex-base and "
                           "texlive-latex-recommended); the escaping test above needs no LaTeX")
def test_summary_tex_compiles_with_pdflatex(awkward_store, tmp_path):
    write_report(tmp_path)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\n"
                                      "\\begin{document}\\input{summary.tex}\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
