"""What a report writes: LaTeX that compiles (every cell and header escaped), figures that let
the trained models be told apart, and plots that do not depend on what was drawn before."""
import re
import shutil
import subprocess

import matplotlib
import numpy as np
import pandas as pd
import pytest
import seaborn as sns
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


# ------------------------------------------------------------------------------ figures
def frames(model, seed, mse, ssim=0.5):
    """per_frame.csv rows of one record: ``mse`` and ``ssim``, one value per predicted frame."""
    return [{"model": model, "seed": seed, "frame": t + 1, "mse": m, "ssim": ssim}
            for t, m in enumerate(mse)]


def accuracy(**models):
    """The accuracy frame's columns the figures read: row label, trained or not, MSE, status."""
    return pd.DataFrame([{"model": m, "deterministic": fixed, "status": "ok", "mse": 1.0}
                         for m, fixed in models.items()])


@pytest.fixture
def drawn(monkeypatch):
    """The figures a plot function draws, kept open instead of written."""
    figures = []
    monkeypatch.setattr(plots, "save", lambda figure, path: figures.append(figure) or [path])
    yield figures
    for figure in figures:
        plots.plt.close(figure)


def test_frame_differences_pair_seeds_with_a_t_interval():
    rows = frames("ref", 0, [10, 20]) + frames("ref", 1, [10, 20]) + frames("ref", 2, [10, 20])
    rows += frames("a", 0, [11, 22]) + frames("a", 1, [12, 24]) + frames("a", 2, [13, 26])
    rows += frames("a", 3, [99, 99])  # no reference run of seed 3: not paired, not counted
    diff = plots.frame_differences(pd.DataFrame(rows), "ref", "mse")
    # frame 1: differences 1, 2, 3 -> mean 2, s.d. 1; half-width t(0.975, 2) / sqrt(3) = 2.4841
    # frame 2: differences 2, 4, 6 -> mean 4, s.d. 2; half-width 4.9683
    assert diff["model"].tolist() == ["a", "a"] and diff["pairs"].tolist() == [3, 3]
    assert diff["delta"].tolist() == pytest.approx([2.0, 4.0])
    assert diff["low"].tolist() == pytest.approx([2 - 2.4841, 4 - 4.9683], abs=1e-4)
    assert diff["high"].tolist() == pytest.approx([2 + 2.4841, 4 + 4.9683], abs=1e-4)


def test_a_reference_without_training_pairs_with_every_seed_and_one_pair_has_no_interval():
    rows = frames("persistence", 0, [50, 60]) + frames("a", 0, [40, 40]) \
        + frames("a", 1, [42, 44]) + frames("b", 0, [45, 45]) + frames("mean", 0, [70, 70])
    diff = plots.frame_differences(pd.DataFrame(rows), "persistence", "mse",
                                   untrained={"persistence", "mean"}).set_index(["model", "frame"])
    assert diff.loc[("a", 1), "delta"] == pytest.approx(-9.0)  # (40 - 50 + 42 - 50) / 2
    assert diff.loc[("a", 1), "pairs"] == 2  # both seeds of a against persistence's one run
    assert diff.loc[("b", 2), "delta"] == pytest.approx(-15.0)
    assert np.isnan(diff.loc[("b", 2), "low"])  # one seed: no interval
    assert "mean" not in diff.index.get_level_values("model")  # no training: not a trained line
    assert plots.frame_differences(pd.DataFrame(rows), "absent", "mse").empty


def _titles(figure):
    return [axis.get_title() for axis in figure.axes if axis.get_title()]


def test_per_frame_scales_the_trained_models_and_draws_their_difference(tmp_path, drawn):
    rows = []
    for seed in (0, 1, 2):
        rows += frames("modernn", seed, [100 + seed, 116 + seed]) \
            + frames("convlstm", seed, [101 + 2 * seed, 118 + seed])
    rows += frames("persistence", 0, [200, 255])
    acc = accuracy(modernn=False, convlstm=False, persistence=True)
    plots.per_frame(pd.DataFrame(rows), tmp_path / "f", "toy", None, acc, "modernn")
    figure = drawn[0]
    titles = _titles(figure)
    assert titles == ["MSE (sum over pixels): trained models", "SSIM: trained models",
                      "Δ MSE (sum over pixels) vs modernn: trained models",
                      "Δ SSIM vs modernn: trained models",
                      "MSE (sum over pixels): every model, dotted: no training",
                      "SSIM: every model, dotted: no training"]
    trained_mse, delta_mse = figure.axes[0], figure.axes[2]
    assert trained_mse.get_ylim()[1] < 130  # persistence (200-255) is not on the trained axis
    assert {line.get_label() for line in trained_mse.lines} == {"modernn", "convlstm"}
    assert len(delta_mse.collections) == 1  # convlstm's interval band (3 paired seeds)
    assert delta_mse.lines[1].get_ydata().tolist() == pytest.approx([2.0, 2.0])  # (1+2+3)/3, 2
    suptitle = figure._suptitle.get_text()
    assert "± 1 s.d. over seeds" in suptitle and "95% t-interval over 3 paired seeds" in suptitle


def test_per_frame_names_only_what_it_draws(tmp_path, drawn):
    one_seed = pd.DataFrame(frames("modernn", 0, [100, 116]) + frames("convlstm", 0, [101, 118]))
    plots.per_frame(one_seed, tmp_path / "f", "toy", None, accuracy(modernn=False, convlstm=False),
                    "modernn")
    suptitle = drawn[0]._suptitle.get_text()
    assert "s.d." not in suptitle and "no bands" in suptitle and "no interval" in suptitle
    assert len(drawn[0].axes) == 4  # no baseline: no "every model" row
    alone = pd.DataFrame(frames("modernn", 0, [100, 116]))
    plots.per_frame(alone, tmp_path / "g", "toy", None, accuracy(modernn=False), None)
    assert _titles(drawn[1]) == ["MSE (sum over pixels): trained models", "SSIM: trained models"]
    baselines = pd.DataFrame(frames("persistence", 0, [200, 255]))
    plots.per_frame(baselines, tmp_path / "h", "toy", None, accuracy(persistence=True),
                    "persistence")
    assert _titles(drawn[2]) == ["MSE (sum over pixels): every model, dotted: no training",
                                 "SSIM: every model, dotted: no training"]


def test_pareto_axis_spans_the_trained_models_and_names_a_baseline_beyond_it(tmp_path, drawn):
    acc = pd.DataFrame([{"model": m, "status": "ok", "mse": mse, "mse_std": np.nan,
                         "mse_ci_low": np.nan, "mse_ci_high": np.nan}
                        for m, mse in (("modernn", 116.5), ("convlstm", 118.6),
                                       ("predrnn", 117.7), ("persistence", 255.0))])
    cost = pd.DataFrame([{"model": m, "params": p, "gmacs_fvcore": g, "train_seq_s": s}
                         for m, p, g, s in (("modernn", 9e5, 4.9, 5.8), ("convlstm", 3e5, 1.7, 20.4),
                                            ("predrnn", 7e5, 3.6, 9.3),
                                            ("persistence", 0, 0.0, np.nan))])
    plots.pareto(acc, cost, tmp_path / "p", "toy")
    figure = drawn[0]
    for axis in figure.axes[:2]:
        low, high = axis.get_ylim()
        assert 115 < low < 116.5 and 118.6 < high < 120  # 2 MSE apart is most of the axis
        texts = [text.get_text() for text in axis.texts]
        assert "above the axis, no training: persistence 255.00" in texts
    suptitle = figure._suptitle.get_text()  # no intervals in these rows, no baseline line drawn
    assert "error bars" not in suptitle and "dotted" not in suptitle


def _build_report(store_folder, out):
    """write_report of a copy of ``store_folder``'s store in ``out``; its PNGs' bytes by name."""
    out.mkdir()
    shutil.copy(store_folder / "records.jsonl", out / "records.jsonl")
    write_report(out)
    return {path.name: path.read_bytes() for path in sorted(out.glob("*.png"))}


def test_a_report_draws_the_same_bytes_whatever_was_drawn_before(tmp_path, monkeypatch):
    """Two reports in one process, in both orders, with the global style changed in between
    (as ``sns.set_theme`` in any figure would): every PNG identical (the PDFs, not compared,
    are not written, to keep the test fast)."""
    png = plots.savefig
    monkeypatch.setattr(plots, "savefig", lambda figure, path, dpi: png(figure, path, dpi)
                        if path.suffix == ".png" else path)
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, names in ((first, ("modernn", "convlstm", "persistence")),
                          (second, ("predrnn", "modernn", "mean", "convlstm"))):
        store = ResultsStore(folder)
        for i, name in enumerate(names):
            store.append(record(name, 0, 20.0 + 5 * i, params=0 if name in ("persistence", "mean")
                                else 1000))
    with plots.plt.rc_context():  # leaves the process' settings as they were
        matplotlib.rcdefaults()  # as in a fresh process
        a_then_b = [_build_report(first, tmp_path / "1"), _build_report(second, tmp_path / "2")]
        sns.set_theme(style="darkgrid", palette="pastel", font_scale=1.3, color_codes=False)
        b_then_a = [_build_report(second, tmp_path / "3"), _build_report(first, tmp_path / "4")]
    assert set(a_then_b[0]) == {"per_frame.png", "pareto.png", "loss_curves.png", "cost_bars.png"}
    assert a_then_b[0] == b_then_a[1]
    assert a_then_b[1] == b_then_a[0]
