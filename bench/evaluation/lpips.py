"""LPIPS, AlexNet variant: an optional test metric (``--lpips``), as OpenSTL reports it for KTH
and other natural video.

The definition is the ``lpips`` package's ``LPIPS(net='alex', version='0.1')`` (Zhang et al.,
CVPR 2018), which OpenSTL's ``openstl/core/metrics.py`` calls per predicted frame:

- inputs in [-1, 1]: OpenSTL clips the prediction to [0, 1] and passes ``lpips.im2tensor(x *
  255)``, i.e. ``2 x - 1``; a grayscale frame ``[1, H, W]`` is broadcast over the three colour
  channels by lpips' scaling layer, which is the same as repeating it to 3 channels (done here);
- scaling layer ``(x - shift) / scale`` with shift (-0.030, -0.088, -0.188) and scale (0.458,
  0.448, 0.450);
- torchvision's AlexNet (ImageNet weights), features after each of its five ReLUs;
- each feature map divided by its norm over channels (plus 1e-10), the squared difference of the
  two images' maps, a 1x1 convolution to one channel with lpips' learned weights (``lin0`` ..
  ``lin4``; its dropout is off in evaluation), the mean over space, summed over the five layers.

The network: the ``lpips`` package's own ``lpips.LPIPS`` where it imports (beside a torchvision
that loads: a CUDA build of torch with torchvision's PyPI wheel, or a CPU torch with the CPU
wheel), else this module's copy (:class:`AlexLPIPS`), which the tests hold to the package's
numbers wherever both run. ``import lpips`` imports torchvision, and torchvision's PyPI wheels
(built for CUDA, linked to ``libtorch_cuda.so``) do not load beside a CPU build of torch
("operator torchvision::nms does not exist"); the record's note says which one computed it.

Weights (both networks read the same two files; nothing is downloaded but AlexNet's, once):

- the linear layers' weights ship inside the ``lpips`` package (``lpips/weights/v0.1/alex.pth``);
  the own network reads them from the installed package without importing it. The ``lpips``
  package is therefore an optional install, not a test dependency;
- AlexNet's weights are torchvision's ImageNet checkpoint ``alexnet-owt-7be5be79.pth``, read from
  the torch hub cache (``torch.hub.get_dir()/checkpoints``) with ``torch.load`` (no torchvision
  needed; the package's torchvision finds the same file there). A run with ``--lpips`` downloads
  it there once if it is missing (hash-checked); tests never download.

Whatever is missing (the package, the checkpoint, a frame with 2 channels, frames too small for
AlexNet), :func:`load` returns no metric and the reason, which the record stores as
``metrics.lpips_unavailable``; the report then has no LPIPS column. Nothing fails.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision AlexNet_Weights.IMAGENET1K_V1
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
LINEAR_FILE = ("weights", "v0.1", "alex.pth")  # inside the lpips package
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)  # AlexNet's five ReLU outputs
# torchvision's AlexNet.features: (index, in, out, kernel, stride, padding) of each convolution;
# a max-pool (3, stride 2) comes before the 2nd and the 3rd.
CONVS = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1),
         (8, 384, 256, 3, 1, 1), (10, 256, 256, 3, 1, 1))
CHUNK = 64  # frames per network call
DESCRIPTION = ("LPIPS (lpips v0.1, AlexNet): per frame, prediction clipped to [0, 1], both frames "
               "scaled to [-1, 1], grayscale repeated to 3 channels, as OpenSTL")


class AlexLPIPS(nn.Module):
    """LPIPS v0.1 over AlexNet, from two state dicts: ``backbone`` (torchvision's AlexNet keys,
    ``features.{0,3,6,8,10}.{weight,bias}``; other keys are ignored) and ``linear`` (lpips'
    ``lin{0..4}.model.1.weight``, each ``[1, C, 1, 1]``). ``forward(x0, x1)``: images ``[N, 3, H,
    W]`` in [-1, 1] -> distances ``[N]``."""

    def __init__(self, backbone: dict, linear: dict):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
                                   for _, c_in, c_out, k, s, p in CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        for conv, (index, *_rest) in zip(self.convs, CONVS, strict=True):
            conv.weight.data.copy_(backbone[f"features.{index}.weight"])
            conv.bias.data.copy_(backbone[f"features.{index}.bias"])
        for k, lin in enumerate(self.lins):
            lin.weight.data.copy_(linear[f"lin{k}.model.1.weight"])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, out = (x - self.shift) / self.scale, []
        for k, conv in enumerate(self.convs):
            if k in (1, 2):
                h = F.max_pool2d(h, 3, 2)
            h = F.relu(conv(h))
            out.append(h)
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for f0, f1, lin in zip(self.features(x0), self.features(x1), self.lins, strict=True):
            f0 = f0 / (f0.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            f1 = f1 / (f1.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((f0 - f1).square()).mean(dim=(1, 2, 3))
        return total


def to_lpips_input(frames: torch.Tensor) -> torch.Tensor:
    """``[..., C, H, W]`` frames in [0, 1] (clipped) -> ``[N, 3, H, W]`` in [-1, 1]; one channel
    is repeated to three."""
    c, h, w = frames.shape[-3:]
    if c not in (1, 3):
        raise ValueError(f"LPIPS takes 1 (grayscale) or 3 (RGB) channels, not {c}")
    x = frames.reshape(-1, c, h, w).float().clamp(0.0, 1.0) * 2 - 1
    return x.expand(-1, 3, h, w) if c == 1 else x


@torch.no_grad()
def lpips_per_frame(pred: torch.Tensor, target: torch.Tensor, network: nn.Module,
                    chunk: int = CHUNK) -> torch.Tensor:
    """LPIPS of each predicted frame, ``[B, T, C, H, W]`` in [0, 1] -> ``[B, T]`` (float64). The
    prediction is clipped to [0, 1] first (OpenSTL's order). ``network(x0, x1) -> [N]`` takes
    images in [-1, 1]: :class:`AlexLPIPS`, or any stand-in a test builds."""
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(f"expected two [B, T, C, H, W] tensors of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    b, t = pred.shape[:2]
    x0, x1 = to_lpips_input(pred), to_lpips_input(target)
    if len(x0) == 0:  # a rank with no test clip still takes part
        return torch.zeros(b, t, dtype=torch.float64, device=pred.device)
    network = network.to(x0.device)
    out = torch.cat([network(x0[i:i + chunk], x1[i:i + chunk]).reshape(-1)
                     for i in range(0, len(x0), chunk)])
    return out.double().reshape(b, t)


class PackageLPIPS(nn.Module):
    """The ``lpips`` package's ``LPIPS(net='alex', version='0.1')`` behind :class:`AlexLPIPS`'s
    interface: ``forward(x0, x1)``, images ``[N, 3, H, W]`` in [-1, 1] -> distances ``[N]``."""

    def __init__(self, package):
        super().__init__()
        self.net = package.LPIPS(net="alex", version="0.1", verbose=False).eval().requires_grad_(False)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return self.net(x0, x1).reshape(-1)


def package_network() -> tuple[nn.Module | None, str]:
    """(:class:`PackageLPIPS`, its version) where ``import lpips`` works and builds the network
    (its torchvision reads AlexNet's weights from the torch hub cache), else (None, why not)."""
    try:
        import lpips as package

        network = PackageLPIPS(package)
    except Exception as error:  # not installed, or its torchvision does not load beside this torch
        return None, f"lpips does not import here ({type(error).__name__}: {error})"
    try:
        version = importlib.metadata.version("lpips")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown version"
    return network, f"lpips {version}"


def metric(network: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The per-frame hook ``evaluate`` takes (``extra_metrics={"lpips": metric(network)}``)."""
    return lambda pred, target: lpips_per_frame(pred, target, network)


def linear_weights_path() -> Path | None:
    """``lpips/weights/v0.1/alex.pth`` of the installed lpips package, found without importing
    it (its import needs a working torchvision); None when the package is not installed."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*LINEAR_FILE)
    return path if path.is_file() else None


def alexnet_path(hub_dir: str | Path | None = None) -> Path:
    return Path(hub_dir or torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def download_alexnet(hub_dir: str | Path | None = None) -> Path:
    """Torchvision's AlexNet checkpoint into the torch hub cache (its sha256 prefix checked)."""
    path = alexnet_path(hub_dir)
    torch.hub.load_state_dict_from_url(ALEXNET_URL, model_dir=str(path.parent), progress=False,
                                       check_hash=True, map_location="cpu")
    return path


def load(channels: int, height: int, width: int, *, download: bool = False,
         hub_dir: str | Path | None = None) -> tuple[nn.Module | None, dict]:
    """The LPIPS network for frames ``channels x height x width`` and a note for the record:
    ``{"definition", "linear", "backbone"}`` when it loads, else ``(None, {"unavailable":
    reason})``. ``download``: fetch a missing AlexNet checkpoint (only when the user asked for
    LPIPS); any failure becomes the reason, never an exception."""
    if channels not in (1, 3):
        return None, {"unavailable": f"LPIPS takes 1 (grayscale) or 3 (RGB) channels; these "
                                     f"frames have {channels}"}
    linear = linear_weights_path()
    if linear is None:
        return None, {"unavailable": "lpips package not installed (pip install --no-deps "
                                     "lpips): its linear-layer weights (lpips/weights/v0.1/"
                                     "alex.pth) are needed, nothing else of it (without "
                                     "--no-deps pip also installs torchvision, and on a "
                                     "CPU-only machine a CUDA build of torch)"}
    backbone = alexnet_path(hub_dir)
    if not backbone.is_file():
        if not download:
            return None, {"unavailable": f"AlexNet weights not in the torch hub cache "
                                         f"({backbone})"}
        try:
            download_alexnet(hub_dir)
        except Exception as error:  # offline, refused, bad hash: LPIPS is optional
            return None, {"unavailable": f"AlexNet weights not in the torch hub cache "
                                         f"({backbone}) and the download failed "
                                         f"({type(error).__name__}: {error})"}
    try:
        network, implementation = _network(backbone, linear, hub_dir)
        probe = torch.zeros(1, 3, height, width)
        network(probe, probe)
    except Exception as error:
        reason = (f"frames {height}x{width} are too small for AlexNet's five layers (at least "
                  "31x31)" if min(height, width) < 31 else
                  f"cannot build LPIPS from {backbone} and {linear} ({type(error).__name__}: "
                  f"{error})")
        return None, {"unavailable": reason}
    return network, {"definition": DESCRIPTION, "implementation": implementation,
                     "linear": str(linear), "backbone": str(backbone)}


def _network(backbone: Path, linear: Path, hub_dir) -> tuple[nn.Module, str]:
    """The package's network where it imports (and reads the default hub cache, where
    torchvision looks), else the own one; and which, in words."""
    why = f"the hub cache {hub_dir} is not torch's own, where torchvision looks"
    if backbone == alexnet_path():
        network, why = package_network()
        if network is not None:
            return network, f"the lpips package ({why}, lpips.LPIPS)"
    own = AlexLPIPS(torch.load(backbone, map_location="cpu", weights_only=True),
                    torch.load(linear, map_location="cpu", weights_only=True))
    return own, f"the harness's own copy (bench.evaluation.lpips.AlexLPIPS): {why}"
