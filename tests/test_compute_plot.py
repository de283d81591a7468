"""The accuracy-against-compute plot: the report's colours, its caption, and an axis that an
untrained model's first validation point does not stretch."""
import matplotlib
import pandas as pd

from bench.report import compute, plots

matplotlib.use("Agg")


def budget_rows(model, seed, values, test_mse):
    rows = [{"model": model, "budget": "steps=3", "seed": seed, "split": "validation",
             "train_flops": 10.0 ** (i + 9),
             "train_s": float(i), "mse": value} for i, value in enumerate(values)]
    rows.append({"model": model, "budget": "steps=3", "seed": seed, "split": "test",
                 "train_flops": 10.0 ** len(values),
                 "train_s": float(len(values)), "mse": test_mse})
    return rows


def test_the_plot_uses_the_report_colours_caption_and_a_capped_axis(tmp_path, monkeypatch):
    frame = pd.DataFrame(budget_rows("modernn", 0, [200, 150, 130], 124)
                         + budget_rows("predrnn", 0, [515, 160, 131], 123))
    palette = plots.model_palette(["predrnn", "modernn"])  # the grid's order, not sorted
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda figure, path: drawn.setdefault("figure", figure)
                        and [path])
    compute.accuracy_vs_compute(frame, tmp_path / "plot", "mmnist, preset quick", palette)
    figure = drawn["figure"]
    axis = figure.axes[0]
    assert figure._suptitle.get_text().startswith("mmnist, preset quick: ")
    assert axis.get_ylim() == (0, 2 * 131)  # twice the largest final MSE; 515 is above it
    assert "515" in [text.get_text() for text in axis.texts]
    colours = {line.get_label(): line.get_color() for line in axis.get_legend().get_lines()}
    assert colours == {model: palette[model] for model in ("modernn", "predrnn")}


def budget_record(model, amount, mse):
    history = [{"train_flops": amount / 2, "train_s": 1.0, "val_mse": mse + 10},
               {"train_flops": amount, "train_s": 2.0, "val_mse": mse + 5}]
    return {"model": model, "seed": 0, "status": "ok", "metrics": {"headline": {"mse": mse}},
            "train": {"history": history, "budget": {
                "kind": "flops", "amount": amount, "spent_flops": amount, "spent_train_s": 2.0,
                "spent_iterations": 4}}}


def test_two_budgets_of_one_model_are_two_rows_and_two_lines(tmp_path, monkeypatch):
    records = [budget_record("convlstm", 1e12, 130.0), budget_record("convlstm", 4e12, 120.0)]
    table = compute.equal_compute_table(records)
    assert table[["budget", "test MSE"]].values.tolist() == [["flops=1e+12", "130.00"],
                                                              ["flops=4e+12", "120.00"]]
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda figure, path: drawn.setdefault("figure", figure)
                        and [path])
    compute.accuracy_vs_compute(compute.budget_frame(records), tmp_path / "plot")
    stars = [line for line in drawn["figure"].axes[0].lines if line.get_marker() == "*"]
    assert sorted(line.get_ydata()[0] for line in stars) == [120.0, 130.0]
