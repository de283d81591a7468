"""From store records to tidy frames: one row per configuration (a model trained one way, on
one kind of device, at one precision), seeds aggregated, compared with the reference model's
row of the same protocol."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..store import one_line
from . import statistics
from .domain import DOMAIN, domain_unit, domain_values

ACCURACY = {  # metric -> (label, lower is better)
    "mse": ("MSE", True),
    "mse_per_pixel": ("MSE/pixel", True),
    "mae": ("MAE", True),
    "ssim": ("SSIM", False),
    "psnr": ("PSNR (dB)", False),
}
# Metrics that only some runs compute (``--lpips``): a column when any record has them.
OPTIONAL = {"lpips": ("LPIPS", True)}
# Metrics in the data's own units, for datasets whose records declare them
# (``dataset_info.normalization.data_units``, e.g. K): key -> (label with {u} for the unit and
# {u2} for its square, lower is better). Computed from the per-pixel metrics on [0, 1] and the unit's scale s.
IN_UNITS = {
    "mse_units": ("MSE/pixel ({u2})", True),  # MSE/pixel * s^2
    "rmse_units": ("RMSE ({u})", True),  # sqrt(MSE/pixel) * s: over every test pixel
    "mae_units": ("MAE/pixel ({u})", True),  # MAE / (C*H*W) * s
}
# The metrics of OpenSTL's convention that newer records also hold (``metrics.openstl``,
# bench.evaluation.openstl): summary.csv's last columns, ``openstl_<metric>`` and its std.
OPENSTL = "openstl"
COST = {  # cost key -> (label, lower is better, scale)
    "params": ("params (M)", True, 1e-6),
    "gmacs_fvcore": ("GMACs (fvcore)", True, 1),
    "gmacs_torch": ("GMACs (torch)", True, 1),
    "train_seq_s": ("train (seq/s)", False, 1),
    "infer_seq_s": ("infer (seq/s)", False, 1),
    "infer_ms_per_seq_b1": ("infer b1 (ms/seq)", True, 1),
    "train_peak_mb": ("train mem (MB)", True, 1),
    "infer_peak_mb": ("infer mem (MB)", True, 1),
    "train_efficiency": ("train eff. (%)", False, 100),
}

# The busy-machine check: a profile's training rate this many times off the training run's own.
DISAGREEMENT = 2.0


@dataclass
class Configuration:
    """The records of one row: one model, configuration (hash), kind of device and precision.
    ``label``: the model's name with what tells the row apart from the folder's others;
    ``protocol``: the key shared by rows that may be compared (all but the model's own
    settings); ``protocol_label``: that protocol in words."""
    model: str
    label: str
    protocol: tuple
    protocol_label: str
    records: list[dict] = field(default_factory=list)


def configuration_key(record: dict) -> tuple:
    """What one row holds: the cell key without the seed (a budget and a size match are part
    of the config hash)."""
    return (record["model"], record.get("dataset"), record.get("preset"),
            record.get("config_hash"), record.get("device_kind"), record.get("precision"))


def protocol_key(record: dict) -> tuple:
    """What must be equal for two models' rows to be compared: everything in the cell key but
    the model and its own settings (its width, its arguments, and under a preset of per-model
    recipes the training options its recipe sets: the recipe is the model's own)."""
    config = {k: v for k, v in (record.get("config") or {}).items()
              if k not in ("model", "recipe")}
    own = _recipe_options(record)
    config["train"] = {k: v for k, v in (config.get("train") or {}).items() if k not in own}
    return (record.get("dataset"), record.get("preset"), record.get("device_kind"),
            record.get("precision"), json.dumps(config, sort_keys=True, default=str))


def configurations(records: list[dict]) -> list[Configuration]:
    """The records grouped into rows, in the order rows first appear. Every row is labelled by
    what differs across the folder (budget, size match, training settings, device, precision;
    the config hash where nothing else does), so no two rows of a model look alike."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(configuration_key(record), []).append(record)
    parts = {key: _descriptors(group[-1]) for key, group in groups.items()}
    varying = {name for name in _DESCRIPTORS
               if len({p.get(name) for p in parts.values()}) > 1}
    settings = _varying_settings([group[-1] for group in groups.values()])
    rows = []
    for key, group in groups.items():
        shown = [parts[key][name] for name in _DESCRIPTORS
                 if name in varying and parts[key].get(name)]
        shown += [f"{name}={value}" for name, value in _settings(group[-1]).items()
                  if name in settings]
        rows.append(Configuration(group[-1]["model"], _label(group[-1]["model"], shown),
                                  protocol_key(group[-1]),
                                  ", ".join(shown) or "the preset's protocol", group))
    _tell_apart(rows)
    return rows


_DESCRIPTORS = ("budget", "match", "device", "precision")


def _descriptors(record: dict) -> dict:
    budget, match = record.get("budget"), record.get("match")
    return {"budget": f"budget {budget['kind']}={budget['amount']:g}" if budget else None,
            "match": _match_words(match) if match else None,
            "device": str(record.get("device_kind") or "").replace("NVIDIA ", "") or None,
            "precision": _precision_words(record.get("precision"))}


def _precision_words(precision: str | None) -> str | None:
    """A record's precision label with its autocast mode "none" named: float32."""
    return None if precision is None else precision.replace("none", "fp32")


def _match_words(match: dict) -> str:
    target = match["target"]
    return (f"matched to {target / 1e6:.3g}M params" if match["by"] == "params"
            else f"matched to {target / 1e9:.3g} GFLOPs")


def _settings(record: dict) -> dict:
    """A record's training, data and test settings as flat ``name: value`` pairs (not those its
    preset's recipe for the model sets: they belong to the model, as its width does)."""
    config, own = record.get("config") or {}, _recipe_options(record)
    return {name: json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
            for section in ("train", "data", "eval")
            for name, value in (config.get(section) or {}).items()
            if not (section == "train" and name in own)}


def _recipe_options(record: dict) -> set[str]:
    """The training options the record's per-model recipe sets (``config.recipe``), if any."""
    recipe = (record.get("config") or {}).get("recipe") or {}
    return set(recipe.get("train") or {})


def _varying_settings(records: list[dict]) -> set[str]:
    """The settings whose value is not the same in every configuration of the folder."""
    flat = [_settings(r) for r in records]
    names = set().union(*flat) if flat else set()
    return {name for name in names if len({json.dumps(f.get(name), default=str) for f in flat}) > 1}


def _label(model: str, shown: list[str]) -> str:
    return f"{model} ({', '.join(shown)})" if shown else model


def _tell_apart(rows: list[Configuration]) -> None:
    """Rows whose labels coincide (a model's own settings differ, e.g. --model-arg) get their
    config hash."""
    for label in {r.label for r in rows}:
        same = [r for r in rows if r.label == label]
        for row in same if len(same) > 1 else []:
            shown = [row.protocol_label] if row.label != row.model else []
            row.label = _label(row.model, [*shown, f"config {row.records[-1].get('config_hash')}"])


def configuration_note(rows: list[Configuration]) -> str:
    """How many configurations the folder holds, and which protocols are compared apart (empty
    when every row is one model's only configuration under one protocol)."""
    protocols = list(dict.fromkeys(r.protocol_label for r in rows))
    count, models = len({r.protocol for r in rows}), {r.model for r in rows}
    if len(rows) == len(models) and count == 1:
        return ""
    return (f"This folder holds {len(rows)} configurations of {len(models)} "
            f"model{'s' if len(models) > 1 else ''}, under "
            f"{count} protocol{'s' if count > 1 else ''} ({'; '.join(protocols)}): each "
            "configuration is its own row, its seeds are never mixed with another's, and rows "
            "are compared only within a protocol.")


def accuracy_frame(records: list[dict], reference: str | None = None) -> pd.DataFrame:
    """Per configuration (:func:`configurations`; ``model`` is its label, ``name`` the model):
    mean and std of each headline metric over successful seeds (a non-finite value stays what
    it is), the seed count, the status (with the error of a failed row), a 95% bootstrap
    interval of its own test MSE over the test clips, and, given a ``reference`` model, the
    difference of its test MSE from the reference's row of the same protocol
    (``compared_with``) with a paired bootstrap interval over the same test clips and (with 3
    or more seeds, for trained models) a paired t-test over seeds (bench.report.statistics)."""
    rows = configurations(records)
    references = {row.protocol: row for row in rows if row.model == reference}
    optional = [key for key in OPTIONAL
                if any(key in r["metrics"]["headline"] for r in _ok(records))]
    theirs = list(dict.fromkeys(key for r in _ok(records)
                                for key in (r["metrics"].get(OPENSTL) or {}).get("headline", {})))
    frame = []
    for conf in rows:
        ok = _ok(conf.records)
        row = {"model": conf.label, "name": conf.model, "protocol": conf.protocol_label,
               "seeds": len(ok), "deterministic": is_deterministic(ok),
               "status": "ok" if ok else
               f"failed: {one_line(conf.records[-1].get('error'))}",
               "later_failures": later_failures(ok)}
        row.update(_means(ok, optional))
        row.update(openstl_means(ok, theirs))
        clips = _per_clip_mse(ok)
        row["mse_ci_low"] = row["mse_ci_high"] = np.nan
        if clips and len({len(v) for v in clips.values()}) == 1:
            _, row["mse_ci_low"], row["mse_ci_high"] = statistics.paired_bootstrap(
                np.mean(list(clips.values()), axis=0))
        row.update(_comparison(row, ok, clips, references.get(conf.protocol), conf))
        frame.append(row)
    return pd.DataFrame(frame)


def later_failures(ok: list[dict]) -> str:
    """The failures that followed a row's successful records (``ResultsStore.latest``), as
    ``seed N: error``; empty when none."""
    return "; ".join(f"seed {r['seed']}: {error}" for r in ok
                     for error in r.get("later_failures", []))


def _means(ok: list[dict], optional: list[str]) -> dict:
    """Mean and sample std over seeds of every headline metric (optional ones: over the records
    that have them) and, where the dataset declares units, of the metrics in those units."""
    row = {}
    for key in [*ACCURACY, *optional]:
        row.update(_mean_and_std(key, [r["metrics"]["headline"][key] for r in ok
                                       if key in r["metrics"]["headline"]]))
    scored = [domain_values(r) for r in ok]
    for key in DOMAIN:
        values = [v[key] for v in scored if key in v]
        if values:
            row.update(_mean_and_std(key, values))
    if domain_unit(ok):
        row["domain_unit"] = domain_unit(ok)
    in_units = [u for u in (metrics_in_units(r) for r in ok) if u]
    if in_units:
        for key in IN_UNITS:
            row.update(_mean_and_std(key, [u[key] for u in in_units]))
        row["unit"] = in_units[0]["unit"]
    return row


def openstl_means(ok: list[dict], names: list[str]) -> dict:
    """Mean and sample std over seeds of each of ``names`` in the OpenSTL-convention headline
    (``metrics.openstl.headline``; over the records that hold it), as ``openstl_<name>``."""
    row = {}
    for name in names:
        values = [r["metrics"][OPENSTL]["headline"].get(name) for r in ok
                  if (r["metrics"].get(OPENSTL) or {}).get("headline")]
        row.update(_mean_and_std(f"{OPENSTL}_{name}", values))
    return row


def _mean_and_std(key: str, values: list) -> dict:
    values = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf in the std of a non-finite seed: NaN
        return {key: float(np.mean(values)) if len(values) else np.nan,
                f"{key}_std": float(np.std(values, ddof=1)) if len(values) > 1 else np.nan}


def _comparison(row: dict, ok: list[dict], clips: dict, ref, conf) -> dict:
    """The Δ MSE columns of ``row`` against ``ref`` (the reference model's row of the same
    protocol, None: none), and which row that was (``compared_with``)."""
    out = dict(delta_mse=np.nan, delta_mse_low=np.nan, delta_mse_high=np.nan, paired_seeds=0,
               p_seeds=np.nan, compared_with="", is_reference=ref is conf)
    ref_ok = _ok(ref.records) if ref is not None else []
    if ref is None or ref is conf or not ok or not ref_ok:
        return out
    ref_fixed, ref_seeds = is_deterministic(ref_ok), {r["seed"]: r["metrics"]["headline"]["mse"]
                                                       for r in ref_ok}
    out["compared_with"] = ref.label
    diff, paired = statistics.paired_clip_differences(clips, _per_clip_mse(ref_ok),
                                                      row["deterministic"], ref_fixed)
    if diff is not None:
        out["delta_mse"], out["delta_mse_low"], out["delta_mse_high"] = \
            statistics.paired_bootstrap(diff)
        out["paired_seeds"] = paired
    else:  # records without per-clip values: the difference of means, no interval
        out["delta_mse"] = row["mse"] - float(np.mean(list(ref_seeds.values())))
    if not row["deterministic"] and not ref_fixed:
        out["p_seeds"] = statistics.seeds_test(
            {r["seed"]: r["metrics"]["headline"]["mse"] for r in ok}, ref_seeds)
    return out


def unit_of(records: list[dict]) -> dict | None:
    """The ``data_units`` entry the records' dataset declares (None: no physical units)."""
    for record in records:
        units = ((record.get("dataset_info") or {}).get("normalization") or {}).get("data_units")
        if units:
            return units
    return None


def metrics_in_units(record: dict) -> dict | None:
    """A record's headline MSE/pixel, RMSE and MAE/pixel in its dataset's declared units:
    ``MSE/pixel * s**2``, ``sqrt(MSE/pixel) * s`` and ``MAE / (C*H*W) * s`` for the scale ``s``
    of ``x = x01 * s + offset`` (docs/metrics.md: MAE is summed over a frame's C*H*W values,
    MSE/pixel is the per-pixel mean; the offset cancels in every difference). The RMSE is the
    root of the mean squared error over every test pixel, as OpenSTL's ``RMSE``. None when the
    dataset declares no units, or declares per-channel scales that differ (a metric averaged
    over channels cannot be converted then)."""
    units = unit_of([record])
    if not units or not record.get("metrics"):
        return None
    scales = set(units["scale"])
    if len(scales) != 1:
        return None
    scale = scales.pop()
    info = record["dataset_info"]
    pixels = info["channels"] * info["height"] * info["width"]
    headline = record["metrics"]["headline"]
    return {"unit": units["unit"], "scale": scale,
            "mse_units": headline["mse_per_pixel"] * scale**2,
            "rmse_units": float(np.sqrt(headline["mse_per_pixel"])) * scale,
            "mae_units": headline["mae"] / pixels * scale}


def is_deterministic(records: list[dict]) -> bool:
    """Models without trainable parameters (persistence, blank, mean, optical_flow): no
    training, so the seed changes nothing that a test over seeds could measure."""
    costs = [r["cost"] for r in records if r.get("cost")]
    return bool(costs) and all(c.get("params") == 0 for c in costs)


def _ok(group: list[dict]) -> list[dict]:
    return [r for r in group if r["status"] == "ok" and r.get("metrics")]


def _per_clip_mse(records: list[dict]) -> dict[int, np.ndarray]:
    return {r["seed"]: np.asarray(r["metrics"]["per_clip"]["mse"], dtype=np.float64)
            for r in records if (r["metrics"].get("per_clip") or {}).get("mse")}


def cost_frame(records: list[dict]) -> pd.DataFrame:
    """Per configuration: the cost columns of its newest successful record (cost does not vary
    by seed), with the training throughput of its own training runs (:func:`training_rate`)
    in place of the profile's: ``train_from`` says which ("training", "profile", or "" for a
    model that does not train) and ``profile_train_seq_s`` keeps the profile's figure."""
    rows = []
    for conf in configurations(records):
        ok = [r for r in conf.records if r["status"] == "ok" and r.get("cost")]
        row = {"model": conf.label}
        if ok:
            cost = ok[-1]["cost"]
            row.update({key: cost.get(key) for key in COST})
            row["unused_params"] = cost.get("params", 0) - cost.get("used_params", 0)
            walls = [r["train"]["wall_s"] for r in ok if r.get("train")]
            row["train_min"] = float(np.mean(walls)) / 60 if walls else 0.0
            row.update(training_rate(ok, cost))
        rows.append(row)
    return pd.DataFrame(rows)


def training_rate(ok: list[dict], cost: dict) -> dict:
    """Training throughput in sequences/s from the training loop's own iteration times (the
    median over the seeds' runs of each run's median, and the quartiles of its stretches, as
    sequences/s), the training efficiency recomputed from it; the profile's figure (a few timed
    iterations before the grid) where nothing was timed in training. ``rate_ratio``: the
    profile's seconds per iteration over the loop's (beyond ``DISAGREEMENT`` either way, one
    of them ran on a busy machine)."""
    profile = cost.get("train_seq_s")
    out = {"profile_train_seq_s": profile, "train_from": "profile" if profile else "",
           "train_seq_s_q1": np.nan, "train_seq_s_q3": np.nan, "rate_ratio": np.nan}
    timed = [r for r in ok if (r.get("train") or {}).get("iteration_s")]
    if not timed:
        return out
    batch = ((timed[-1].get("config") or {}).get("train") or {}).get(
        "batch_size", cost.get("bench_batch"))
    iteration = float(np.median([r["train"]["iteration_s"] for r in timed]))
    spread = [r["train"].get("iteration_s_quartiles") for r in timed]
    spread = [q for q in spread if q]
    out.update(train_seq_s=batch / iteration, train_from="training")
    if spread:  # the slow quartile of the iteration time is the low one of the rate
        out["train_seq_s_q1"] = batch / float(np.median([q[1] for q in spread]))
        out["train_seq_s_q3"] = batch / float(np.median([q[0] for q in spread]))
    if profile:
        out["rate_ratio"] = (batch / profile) / iteration
    flops, peak = cost.get("train_flops_per_seq"), cost.get("peak_tflops")
    if flops and peak:
        world = (timed[-1].get("distributed") or {}).get("world_size") or 1
        out["train_efficiency"] = flops * out["train_seq_s"] / (peak * 1e12 * world)
    return out


def busy_rows(cost: pd.DataFrame) -> pd.DataFrame:
    """The rows whose profile and training rates disagree by more than ``DISAGREEMENT``."""
    if "rate_ratio" not in cost:
        return cost.iloc[:0]
    ratio = cost["rate_ratio"]
    return cost[(ratio > DISAGREEMENT) | (ratio < 1 / DISAGREEMENT)]


def per_frame_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for conf in configurations(records):
        for record in _ok(conf.records):
            per_frame = record["metrics"]["per_frame"]
            for t in range(len(per_frame["mse"])):
                rows.append({"model": conf.label, "seed": record["seed"], "frame": t + 1,
                             **{k: v[t] for k, v in per_frame.items()}})
    return pd.DataFrame(rows)


def history_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for conf in configurations(records):
        for record in conf.records:
            for entry in (record.get("train") or {}).get("history", []):
                rows.append({"model": conf.label, "seed": record["seed"], **entry})
    return pd.DataFrame(rows)


def row_labels(records: list[dict]) -> dict[int, str]:
    """``id(record)`` -> the label of its row, for tables built outside this module."""
    return {id(record): conf.label for conf in configurations(records) for record in conf.records}
