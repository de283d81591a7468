"""PredFormer (the authors' yyyujintang/PredFormer, b73c7ae) and SwinLSTM-D (OpenSTL c74deb5):
their state-dict names onto ours, and golden cases built at the configuration a fixture's
``config`` entry states (tests/fixtures/README.md), so a fixture made at another configuration
is checked the same way."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from models.predformer import predformer
from models.swinlstm import PATCH, SwinLSTM

from ..golden import FIXTURES, GoldenCase, Tolerance

REFERENCE_TRANSFORMERS = ["ts_temporal_transformer", "ts_space_transformer",
                          "st_space_transformer", "st_temporal_transformer"]  # the TSST order
PREDFORMER_TOL = Tolerance(atol=2e-5, growth=1.0,
              measured="envelope 9.5e-07, flat over the steps (AVX-512 4.8e-07, f64 6.3e-07, "
                       "ulp 9.5e-07, AVX2 6.0e-07, SSE4.1 7.2e-07, 1 thread 4.8e-07)")
SWINLSTM_TOL = Tolerance(atol=2e-5, growth=1.0,
              measured="envelope 8.1e-07, flat over the steps (ulp 8.1e-07, SSE4.1 7.2e-07, "
                       "AVX-512 and 1 thread 6.9e-07, f64 6.7e-07, AVX2 6.0e-07)")


def fixture_config(path: str | Path) -> dict:
    """A fixture's ``config`` entry (a Python dict literal) as a dict."""
    data = np.load(FIXTURES / path)
    if "config" not in data.files:
        raise ValueError(f"{path}: no 'config' entry; this layout needs one (tests/fixtures/README.md)")
    return ast.literal_eval(str(data["config"]))


def predformer_args(config: dict) -> dict:
    """Our ``predformer`` arguments for the reference's ``model_config``."""
    c = config["model_config"]
    if c["pre_seq"] != c["after_seq"]:
        raise ValueError(f"pre_seq {c['pre_seq']} != after_seq {c['after_seq']}: the fixture layout "
                         "holds one call of the model, which predicts pre_seq frames")
    return dict(channels=c["num_channels"], height=c["height"], width=c["width"], in_len=c["pre_seq"],
                patch=c["patch_size"], dim=c["dim"], heads=c["heads"], dim_head=c["dim_head"],
                scale_dim=c["scale_dim"], depth=c["depth"], Ndepth=c["Ndepth"])


def predformer_names(ndepth: int = 2, depth: int = 1):
    """The reference's state-dict names -> ours; the reference has no tensor its forward skips."""
    mapping = {"to_patch_embedding.1.weight": "net.embed.weight",
               "to_patch_embedding.1.bias": "net.embed.bias"}
    layer = {"0.norm": "attn_norm", "0.fn.to_qkv": "attn.qkv", "0.fn.to_out.0": "attn.out",
             "1.norm": "ffn_norm", "1.fn.fc1_g": "ffn.gate", "1.fn.fc1_x": "ffn.value",
             "1.fn.fc2": "ffn.fc2"}
    for k in range(ndepth):
        for j, theirs in enumerate(REFERENCE_TRANSFORMERS):
            prefix, ours = f"blocks.{k}.{theirs}", f"net.blocks.{k}.{j}"
            for p in ("weight", "bias"):
                mapping[f"{prefix}.norm.{p}"] = f"{ours}.norm.{p}"
                for lay in range(depth):
                    for a, b in layer.items():
                        if a != "0.fn.to_qkv" or p == "weight":  # to_qkv has no bias
                            mapping[f"{prefix}.layers.{lay}.{a}.{p}"] = f"{ours}.layers.{lay}.{b}.{p}"
    for p in ("weight", "bias"):
        mapping[f"mlp_head.0.{p}"] = f"net.head_norm.{p}"
        mapping[f"mlp_head.1.{p}"] = f"net.head.{p}"
    return mapping, set()


def predformer_case(path: str | Path = "predformer_golden.npz") -> GoldenCase:
    args = predformer_args(fixture_config(path))
    return GoldenCase(path, lambda: predformer(**args),
                      lambda: predformer_names(args["Ndepth"], args["depth"]), PREDFORMER_TOL,
                      in_len=args["in_len"], out_len=args["in_len"])


def swinlstm_args(config: dict) -> dict:
    """Our ``SwinLSTM`` arguments for the reference's constructor arguments."""
    c = config["configs"]
    if c["patch_size"] != PATCH:
        raise ValueError(f"patch_size {c['patch_size']}: SwinLSTM-D's readout fixes patches of "
                         f"{PATCH} (OpenSTL issue #88)")
    _, channels, height, width = c["in_shape"]
    return dict(channels=channels, height=height, width=width, embed_dim=c["embed_dim"],
                depths_down=list(config["depths_downsample"]),
                depths_up=list(config["depths_upsample"]), heads=list(config["num_heads"]),
                window=c["window_size"])


# OpenSTL's names -> ours, by prefix, then inside a block.
PREFIXES = {
    "Downsample.patch_embed.proj.": "embed.",
    "Downsample.patch_embed.norm.": "embed_norm.",
    "Downsample.layers.": "down.",
    "Downsample.downsample.": "merge.",
    "Upsample.layers.": "up.",
    "Upsample.upsample.": "expand.",
    "Upsample.Unembed.Conv.": "unembed.",
}
IN_BLOCK = {".STBs.": ".blocks.", ".red.": ".fuse.", ".mlp.fc1.": ".fc1.", ".mlp.fc2.": ".fc2."}


def openstl_names(theirs: list[str]) -> tuple[dict[str, str], set[str]]:
    """Every OpenSTL tensor mapped onto ours, except the ones its forward never reads: the
    PatchEmbed UpSample builds and never calls, and ``red`` in the odd blocks (no extra input)."""
    mapping, unused = {}, set()
    for name in theirs:
        block = name.split(".STBs.")[1].split(".")[0] if ".STBs." in name else None
        if name.startswith("Upsample.patch_embed.") or (".red." in name and int(block) % 2):
            unused.add(name)
            continue
        prefix = next(p for p in PREFIXES if name.startswith(p))
        ours = PREFIXES[prefix] + name[len(prefix):]
        for old, new in IN_BLOCK.items():
            ours = ours.replace(old, new)
        mapping[name] = ours
    return mapping, unused


def swinlstm_case(path: str | Path = "swinlstm_golden.npz") -> GoldenCase:
    config = fixture_config(path)
    args, in_len = swinlstm_args(config), config["configs"]["in_shape"][0]
    weights = [k[len("weights/"):] for k in np.load(FIXTURES / path).files if k.startswith("weights/")]
    return GoldenCase(path, lambda: SwinLSTM(**args), lambda: openstl_names(weights), SWINLSTM_TOL,
                      in_len=in_len, out_len=in_len)


# the fixture's ``kind`` prefix -> (model, the case at that file's configuration)
FROM_CONFIG = {"predformer-forward/": ("predformer", predformer_case),
               "swinlstm-d-forward/": ("swinlstm", swinlstm_case)}
