"""The starter model: a compact fully convolutional localizer trained from scratch.

It ships in the repository's `models/` so the app localizes something offline, before any
DeCLIP weights are installed. It is a demo ("demo model — not for casework"): trained only on
synthetic manipulations of a few dozen photos (see models/README.md).

Architecture ("starter-fcn", a small U-Net):
- input: B×3×H×W RGB normalized with the card's mean/std (the Localizer does that);
- a fixed, non-trainable high-pass bank (three SRM-style residual kernels on each RGB channel)
  computed on the de-normalized image in grey levels and truncated, plus the local energy of the
  luma residuals relative to the image's median (see HighPass), concatenated to the RGB:
  local blur, noise, resampling and inpainting change these residuals far more than they change
  the colours, and a small network trained on little data would not learn such filters reliably;
- encoder at 1, 1/2, 1/4, 1/8, 1/16 resolution, decoder with skip connections back to 1/2;
- output: B×1×(H/2)×(W/2) logits (the Localizer upsamples the sigmoid to the image size).
H and W need not be multiples of 16: decoder stages resize to their skip connection's size.

Flip averaging: a card may set `test_time_flips` to 2 (the image and its mirror) or 4 (also both
vertical flips); in eval mode the network then returns the mean of the logits over those flips,
each mapped back. Training sees random flips, so every view is in-distribution; averaging them
removes orientation-dependent noise from the map at 2-4× the (small) cost. Training mode always
runs one view. The bundled card records the value its test figures were measured with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from declip_desktop.common.facts import DEMO_LABEL  # re-exported: the one definition

KIND = "starter"
BACKBONE = "starter-fcn"
ARCHITECTURE = "starter-unet-v2"
DEFAULT_INPUT_SIZE = 512
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.25, 0.25, 0.25)
DEFAULT_WIDTHS = (16, 24, 32, 48, 64)
#: Flip sets for test-time averaging, by `test_time_flips`: lists of the tensor dims to flip.
FLIP_SETS = {1: ((),), 2: ((), (-1,)), 4: ((), (-1,), (-2,), (-2, -1))}
#: Residuals are clipped at this many grey levels (SRM-style truncation), then scaled to [-1, 1].
RESIDUAL_CLIP = 8.0


def _srm_kernels() -> torch.Tensor:
    """Three classic rich-model residual kernels, zero-sum, as one 3×5×5 tensor."""
    square5 = torch.tensor(
        [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]],
        dtype=torch.float32,
    ) / 12.0
    square3 = torch.zeros(5, 5)
    square3[1:4, 1:4] = torch.tensor([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=torch.float32) / 4.0
    second = torch.zeros(5, 5)
    second[2, 1:4] = torch.tensor([1, -2, 1], dtype=torch.float32) / 2.0
    second = (second + second.T) / 2.0  # horizontal + vertical second derivative
    return torch.stack([square5, square3, second])


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _box(x: torch.Tensor, k: int) -> torch.Tensor:
    """Separable k×k mean filter (same size, borders averaged over the valid pixels only)."""
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, k // 2), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0), count_include_pad=False)


class HighPass(nn.Module):
    """Fixed residual features: 9 SRM-style residuals (3 kernels × RGB) in truncated grey levels
    / RESIDUAL_CLIP, plus 6 *relative local residual energies*: log of the mean |residual| of the
    luma over 7×7 and 21×21 windows, minus its median over the image.

    The second group says "this region is smoother / noisier than the rest of this image", the
    evidence blur, resampling, inpainting, added noise and pasted content of another scale leave.
    Giving it to the network directly lets a small model learn from little data (a few thousand
    crops on a CPU) what a large one would have to discover by itself.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        k = _srm_kernels()  # 3×5×5
        weight = k.unsqueeze(1).repeat(3, 1, 1, 1)  # 9×1×5×5: channel c uses rows 3c..3c+2
        # Buffers are not persistent: they are constants of the architecture / the card,
        # so the weights file holds only what training learned.
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    out_channels = 9 + 6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey_levels = (x * self.std + self.mean) * 255.0
        r = F.conv2d(F.pad(grey_levels, (2, 2, 2, 2), mode="reflect"), self.weight, groups=3)
        # Luma residuals = the same kernels on 0.299 R + 0.587 G + 0.114 B (linear, so mix r).
        luma = 0.299 * r[:, 0:3] + 0.587 * r[:, 3:6] + 0.114 * r[:, 6:9]
        mag = luma.abs().clamp(max=4 * RESIDUAL_CLIP)
        energies = []
        for k in (7, 21):
            e = torch.log(_box(mag, k) + 0.1)
            med = e.flatten(2).median(dim=2).values[..., None, None]
            energies.append(((e - med) / 2.0).clamp(-3.0, 3.0))
        return torch.cat([r.clamp(-RESIDUAL_CLIP, RESIDUAL_CLIP) / RESIDUAL_CLIP, *energies], dim=1)


class StarterNet(nn.Module):
    def __init__(self, mean=DEFAULT_MEAN, std=DEFAULT_STD, widths: Sequence[int] = DEFAULT_WIDTHS,
                 test_time_flips: int = 1):
        super().__init__()
        if test_time_flips not in FLIP_SETS:
            raise ValueError(f"test_time_flips must be one of {sorted(FLIP_SETS)}, got {test_time_flips!r}")
        self.test_time_flips = test_time_flips
        w0, w1, w2, w3, w4 = widths
        self.highpass = HighPass(mean, std)
        self.stem = _conv(3 + HighPass.out_channels, w0)
        self.enc1 = nn.Sequential(_conv(w0, w1, stride=2), _conv(w1, w1))
        self.enc2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.enc3 = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3))
        # Dilated convolutions at 1/16 widen the context cheaply (large inpainted regions).
        self.enc4 = nn.Sequential(_conv(w3, w4, stride=2), _conv(w4, w4, dilation=2), _conv(w4, w4, dilation=4))
        self.dec3 = _conv(w4 + w3, w3)
        self.dec2 = _conv(w3 + w2, w2)
        self.dec1 = _conv(w2 + w1, w1)
        self.head = nn.Conv2d(w1, 1, 1)

    @staticmethod
    def _up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.test_time_flips == 1:
            return self._single_view(x)
        views = FLIP_SETS[self.test_time_flips]
        total = self._single_view(x)
        for dims in views[1:]:
            total = total + self._single_view(x.flip(dims)).flip(dims)
        return total / len(views)

    def _single_view(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.stem(torch.cat([x, self.highpass(x)], dim=1))
        x1 = self.enc1(x0)
        x2 = self.enc2(x1)
        x3 = self.enc3(x2)
        x4 = self.enc4(x3)
        d3 = self.dec3(self._up_cat(x4, x3))
        d2 = self.dec2(self._up_cat(d3, x2))
        d1 = self.dec1(self._up_cat(d2, x1))
        return self.head(d1)


def _field(card: Any, name: str, default: Any = None) -> Any:
    """Read a card field from a ModelCard-like object or a plain mapping (JSON card)."""
    if isinstance(card, Mapping):
        value = card.get(name)
    else:
        value = getattr(card, name, None)
        if value is None:  # ModelCard keeps fields it does not know in `extra`
            value = (getattr(card, "extra", None) or {}).get(name)
    return default if value is None else value


def card_widths(card: Any) -> tuple[int, ...]:
    widths = _field(card, "widths", None)
    if widths is None:
        widths = (_field(card, "metrics", {}) or {}).get("widths", DEFAULT_WIDTHS)
    return tuple(int(w) for w in widths)


def build_starter(card: Any = None) -> nn.Module:
    """A StarterNet configured from a model card (ModelCard or dict); weights not loaded.

    Reads `mean`, `std` (defaults 0.5 / 0.25), the channel `widths` (stored in the card's
    `metrics["widths"]` when ModelCard has no `widths` field) and `test_time_flips` (default 1).
    """
    mean = tuple(float(v) for v in _field(card, "mean", DEFAULT_MEAN))
    std = tuple(float(v) for v in _field(card, "std", DEFAULT_STD))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"starter card needs 3 means and 3 positive stds, got mean={mean} std={std}")
    flips = _field(card, "test_time_flips", 1)
    if flips not in FLIP_SETS:
        raise ValueError(f"starter card: test_time_flips must be one of {sorted(FLIP_SETS)}, got {flips!r}")
    return StarterNet(mean=mean, std=std, widths=card_widths(card), test_time_flips=int(flips))


def load_starter(weights_path, card: Any = None, device: str = "cpu") -> nn.Module:
    """Build from the card and load the safetensors weights strictly (missing keys are an error)."""
    from safetensors.torch import load_file

    net = build_starter(card)
    state = load_file(str(weights_path), device=device)
    result = net.load_state_dict(state, strict=True)
    del result
    return net.eval()


def normalize(images_uint8: torch.Tensor, mean=DEFAULT_MEAN, std=DEFAULT_STD) -> torch.Tensor:
    """B×H×W×3 or B×3×H×W uint8 → normalized float, as the Localizer does for the starter."""
    x = images_uint8
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    x = x.float() / 255.0
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s
