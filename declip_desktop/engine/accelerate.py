"""Inference-only rewrites of a loaded `DeclipNet`: exact ones, and the approximate CPU fast mode.

Exact (`optimize_exact`, always applied; fp32 math, same results within float rounding):
- attention through one fused q/k/v projection and `F.scaled_dot_product_attention`
  instead of `nn.MultiheadAttention`'s general path (no mask/need_weights plumbing, and the
  q/k/v projection is one GEMM);
- BatchNorm folded into the preceding convolution (the decoder is Conv → BN → ReLU twenty
  times; folding removes one full read and write of every activation map);
- (optional, off by default) the decoder in channels_last layout: measured *slower* on this
  project's AMD EPYC CPU (3.6 s vs 2.8 s per batch of 4 for the folded conv-20 decoder).

Fast (`optimize_fast_cpu`, `Localizer(fast=True)` on CPU; approximate, see docs/PERFORMANCE.md):
- every Linear of the ViT (attention projections included, thanks to the fused module above)
  becomes a dynamically quantized int8 Linear (per-channel weights, activations quantized
  per call, so no calibration is needed for the ViT). The attention projections quantize
  their input per token (`TokenScaledDynamicLinear`); the MLP layers per call. A per-call
  scale is taken over the whole batch, so in fast mode an image's map can move slightly
  (well inside the fast-mode tolerance) with its batch-mates; running the ViT one image at a
  time would avoid that but costs about a quarter of the int8 gain on this CPU. Exact mode
  has no such effect. Converting one Linear at a time and releasing its fp32 pages keeps
  the peak memory near the int8 model's (`quantize_linears_dynamic`);
- the decoder's Conv(+folded BN)+ReLU stages become statically quantized int8 convolutions
  (per-channel 7-bit weights, 8-bit activations). Activation ranges come from a fixed
  calibration pass over procedurally generated images (`calibration_images`), so the
  decoder's int8 path is deterministic. The first convolution (reading the ViT features),
  the last one before the logits and the 64 → 1 logits convolution stay in fp32: they
  carried most of the int8 error when measured. One more convolution, the one whose int8
  error hurts the calibration maps most (`most_sensitive_conv`), is chosen per model.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- attention


class FusedSelfAttention(nn.Module):
    """Drop-in for `nn.MultiheadAttention` used as self-attention (query is key is value).

    Same call signature and return value `(output, None)`, so open_clip's blocks call it
    unchanged. `qkv` and `out_proj` are plain `nn.Linear`s, which dynamic quantization can
    reach (it cannot reach inside `nn.MultiheadAttention`).
    """

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("only plain self-attention layers can be fused")
        e = mha.embed_dim
        self.num_heads = mha.num_heads
        self.batch_first = mha.batch_first
        # The new Linears *share* the attention's parameters (no copy): installed weights are
        # memory-mapped, and copying them would keep both versions resident (+350 MB for
        # ViT-L/14). A plain nn.Linear (not MHA's out_proj subclass) so that dynamic
        # quantization, which matches exact types, reaches it.
        self.qkv = nn.Linear(e, 3 * e, bias=mha.in_proj_bias is not None, device="meta")
        self.qkv.weight = mha.in_proj_weight
        if mha.in_proj_bias is not None:
            self.qkv.bias = mha.in_proj_bias
        self.out_proj = nn.Linear(e, e, bias=mha.out_proj.bias is not None, device="meta")
        self.out_proj.weight = mha.out_proj.weight
        if mha.out_proj.bias is not None:
            self.out_proj.bias = mha.out_proj.bias

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None, **_ignored):
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise ValueError("FusedSelfAttention only does self-attention")
        x = query if self.batch_first else query.transpose(0, 1)
        b, n, e = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, h, e // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if attn_mask is not None:
            attn_mask = attn_mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, e))
        return (out if self.batch_first else out.transpose(0, 1)), None


def fuse_attention(module: nn.Module) -> int:
    """Replace every `nn.MultiheadAttention` below `module` by `FusedSelfAttention`; returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.MultiheadAttention):
            setattr(module, name, FusedSelfAttention(child))
            count += 1
        else:
            count += fuse_attention(child)
    return count


# --------------------------------------------------------------------------- BatchNorm folding


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm2d that directly follows a Conv2d in a Sequential; returns how many."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    count = 0
    for child in module.children():
        count += fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module._modules.items())
        for (_, conv), (bn_name, bn) in zip(items, items[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                fused = fuse_conv_bn_eval(conv.eval(), bn.eval())
                mapped = conv.weight
                conv.weight, conv.bias = fused.weight, fused.bias
                release_file_pages(mapped)  # the folded copy replaces it: 200 MB for conv-20
                module._modules[bn_name] = nn.Identity()
                count += 1
    return count


class ChannelsLast(nn.Module):
    """Runs `inner` on a channels_last copy of its input and returns a contiguous result."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.contiguous(memory_format=torch.channels_last)).contiguous()


def optimize_exact(net: nn.Module, *, channels_last: bool = False) -> nn.Module:
    """Apply the exact (fp32, same math) rewrites in place; returns `net`."""
    net.eval()
    fuse_attention(net)
    fold_batchnorm(net)
    trim_heap()
    decoder = getattr(net, "decoder", None)
    if channels_last and decoder is not None and any(isinstance(m, nn.Conv2d) for m in decoder.modules()):
        fc = getattr(decoder, "fc", None)
        if isinstance(fc, nn.Sequential):
            decoder.fc = ChannelsLast(fc)
    return net


# --------------------------------------------------------------------------- fast CPU mode


def calibration_images(count: int = 6, size: int = 224, seed: int = 20250101) -> list[np.ndarray]:
    """Deterministic photo-like RGB uint8 images (smooth shading, edges, texture, noise).

    They only set the int8 activation ranges of the decoder; they need the value spread of
    natural photos (flat areas, strong edges, fine texture), not their content.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = []
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        grad = rng.uniform(-120, 120, (2, 3))
        img = base + xx[..., None] * grad[0] + yy[..., None] * grad[1]
        for _ in range(4 + i):  # flat-coloured blobs with hard edges
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.35)
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            img[mask] = rng.uniform(0, 255, 3)
        freq = rng.uniform(4, 40)
        img += 25 * np.sin(2 * np.pi * freq * (xx + rng.uniform() * yy))[..., None]  # texture
        img += rng.normal(0, 2 + 6 * (i % 3), img.shape)  # sensor-like noise
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    return images


def _quantizable_decoder(fc: nn.Sequential, float_convs: frozenset[int] = frozenset()) -> nn.Sequential:
    """The folded `fc` as int8-able runs: Conv+ReLU fused, QuantStub/DeQuantStub around each run.

    Convolutions whose index (0-based, in order) is in `float_convs`, and the last one (the
    logits), stay fp32; upsamplings follow whatever precision precedes them.
    """
    from torch.ao.nn.intrinsic import ConvReLU2d
    from torch.ao.quantization import DeQuantStub, QuantStub

    mods = [m for m in fc if not isinstance(m, nn.Identity)]
    if not mods or not isinstance(mods[-1], nn.Conv2d):
        raise ValueError("expected a conv decoder ending in a convolution")
    units: list[tuple[nn.Module, bool | None]] = []  # (module, int8?) — None: follow the previous one
    conv_index, i = 0, 0
    while i < len(mods):
        m = mods[i]
        last = i == len(mods) - 1
        if isinstance(m, nn.Conv2d):
            quant = not last and conv_index not in float_convs
            if i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU):
                units.append((ConvReLU2d(m, nn.ReLU()), quant))
                i += 2
            else:
                units.append((m, quant))
                i += 1
            conv_index += 1
        else:
            units.append((m, None))
            i += 1
    seq: list[nn.Module] = []
    in_int8 = False
    for module, quant in units:
        quant = in_int8 if quant is None else quant
        if quant and not in_int8:
            seq.append(QuantStub())
        elif not quant and in_int8:
            seq.append(DeQuantStub())
        in_int8 = quant
        if not quant:
            module.qconfig = None
        seq.append(module)
    if in_int8:
        seq.append(DeQuantStub())
    return nn.Sequential(*seq)


#: Bumped whenever the fast mode's quantization recipe changes (invalidates cached ranges).
FAST_RECIPE = "fast-cpu-v3"


def quantize_decoder(decoder: nn.Module, calibration_features: list[torch.Tensor] | None = None,
                     observer: str = "minmax", float_convs: frozenset[int] = frozenset(),
                     weight_bits7: bool = False, ranges: dict | None = None,
                     inplace: bool = False,
                     unit_ranges: list[tuple[float, float]] | None = None) -> tuple[nn.Module, dict]:
    """Static int8 copy of a (BN-folded) conv decoder; returns (module, activation ranges).

    The ranges come from `calibration_features` (feature maps) or, when given, from `ranges`
    (a dict observer name → [min, max] from an earlier calibration, e.g. a cache file), or
    from `unit_ranges` (`_unit_output_ranges` of the fp32 decoder, mapped onto this layout).
    `inplace=True` converts the decoder's own modules (the decoder is unusable afterwards)
    instead of a copy: the fp32 copy would add 200 MB to the peak memory for conv-20.
    AVX2 without VNNI multiplies u8 activations by s8 weights in pairs summed into int16, which
    can saturate; either activations use 7 bits (`reduce_range`, default) or, with
    `weight_bits7`, the weights use 7 bits and the activations the full 8.
    """
    from torch.ao.quantization import QConfig, convert, prepare
    from torch.ao.quantization.observer import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

    fc = decoder.fc.inner if isinstance(decoder.fc, ChannelsLast) else decoder.fc
    qdec = _quantizable_decoder(fc if inplace else copy.deepcopy(fc), float_convs).eval()
    if unit_ranges is not None:
        ranges = _observer_ranges(qdec, unit_ranges)
    qdec.qconfig = QConfig(
        activation=(HistogramObserver if observer == "histogram" else MinMaxObserver).with_args(
            reduce_range=not weight_bits7),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
            **({"quant_min": -64, "quant_max": 63} if weight_bits7 else {})),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare(qdec, inplace=inplace)
        observers = {name: m for name, m in prepared.named_modules() if isinstance(m, MinMaxObserver)}
        if ranges is not None:
            if set(ranges) != set(observers):
                raise ValueError("cached int8 ranges do not fit this decoder")
            for name, (lo, hi) in ranges.items():
                observers[name](torch.tensor([float(lo), float(hi)]))  # sets min/max exactly
        else:
            with torch.inference_mode():
                for feats in calibration_features or []:
                    prepared(feats)
        found = {name: [float(m.min_val), float(m.max_val)] for name, m in observers.items()}
        return convert(prepared, inplace=inplace), found


def release_file_pages(tensor: torch.Tensor) -> int:
    """Drop the resident pages of a memory-mapped tensor that will not be read again; returns bytes.

    Installed weights are memory-mapped (safetensors maps the whole file privately). Once a
    Linear has been replaced by its int8 copy, its fp32 pages are dead weight, but the mapping
    stays alive as long as any other tensor of the file (a LayerNorm, a bias) does, and every
    page the quantizer read stays counted in the process's memory: 1.2 GB for ViT-L/14. For a
    private file mapping whose pages were never written, MADV_DONTNEED just evicts them from
    this process (a later read would fault them in again from the file, with the same bytes),
    so it is safe even if something did still read the tensor. Only whole pages inside the
    tensor are released, never a page it shares with a neighbour. Linux only (elsewhere: 0).
    """
    libc = _libc()
    if libc is None or tensor.device.type != "cpu" or tensor.numel() == 0 or not tensor.is_contiguous():
        return 0  # (a strided view's byte span could cover other tensors' bytes)
    page = os.sysconf("SC_PAGE_SIZE")
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    first, last = -(-start // page) * page, end // page * page
    if last <= first or not _in_file_mapping(first, last):
        return 0
    if libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED) != 0:
        return 0
    return last - first


_MADV_DONTNEED = 4


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc (e.g. musl): keep the pages, nothing breaks
        return None


def _in_file_mapping(first: int, last: int) -> bool:
    """True when [first, last) lies inside one private *file* mapping of this process.

    Guards `release_file_pages` against ever evicting anonymous memory (a tensor that was
    copied to the heap), whose contents MADV_DONTNEED would replace with zeros. safetensors
    maps the file private and writable (copy-on-write); a page of it that had been written
    would, once released, read back as the file's bytes, i.e. the installed weights themselves.
    """
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                fields = line.split()
                lo, hi = (int(v, 16) for v in fields[0].split("-"))
                if lo <= first and last <= hi:
                    # perms like "rw-p" (p: private); inode (field 4) is 0 for anonymous memory.
                    return len(fields) >= 6 and fields[1].endswith("p") and fields[4] != "0"
    except OSError:
        return False
    return False


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise: about 0.5 GB after the
    int8 conversion of ViT-L/14, whose temporary copies are freed but not returned)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


class TokenScaledDynamicLinear(nn.Module):
    """Dynamic int8 Linear whose input is quantized per token instead of per tensor.

    The int8 kernel quantizes its whole input (all tokens of all images in the batch) with one
    scale. In the attention projections a few tokens carry much larger values than the rest,
    so they set that scale and every other token keeps only a few int8 steps. Dividing each
    token by its own absolute maximum before the int8 product and multiplying the result back
    is exact algebra for a Linear map (the bias is added afterwards, in fp32), and gives every
    token the full int8 range. Measured on the benchmark model: the ViT's int8 error on the
    worst photo fell from max |Δ| 0.062 to 0.005 per pixel (docs/PERFORMANCE.md).
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        from torch.ao.nn.quantized import dynamic as nnqd
        from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

        bias = None if linear.bias is None else linear.bias.detach().clone()
        plain = nn.Linear(linear.in_features, linear.out_features, bias=False, device="meta")
        plain.weight = linear.weight
        plain.qconfig = per_channel_dynamic_qconfig
        with torch.no_grad():
            self.linear = nnqd.Linear.from_float(plain)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_min_(1e-12)
        y = self.linear(x / scale)
        return y.mul_(scale) if self.bias is None else torch.addcmul(self.bias, y, scale)


def quantize_linears_dynamic(module: nn.Module) -> int:
    """Replace every nn.Linear below `module` by a dynamically quantized int8 Linear, one at a time.

    The same conversion as `torch.ao.quantization.quantize_dynamic` with per-channel weights,
    but each fp32 weight's memory-mapped pages are released as soon as its int8 copy exists,
    so converting ViT-L/14 never holds both versions (peak memory 3.3 GB → see PERFORMANCE.md).
    Returns how many Linears were converted.
    """
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

    targets = [(parent, name, child) for parent in module.modules()
               for name, child in parent.named_children() if type(child) is nn.Linear]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for parent, name, linear in targets:
            if isinstance(parent, FusedSelfAttention):  # the projections that need per-token scales
                qlinear = TokenScaledDynamicLinear(linear)
            else:  # MLP layers: per-token scaling measured no better there, and costs time
                linear.qconfig = per_channel_dynamic_qconfig
                with torch.no_grad():
                    qlinear = nnqd.Linear.from_float(linear)
            setattr(parent, name, qlinear)
            weight = linear.weight
            del linear
            release_file_pages(weight)
            del weight
    trim_heap()
    return len(targets)


def _unit_output_ranges(fc: nn.Sequential, feats: list[torch.Tensor]) -> list[tuple[float, float]]:
    """[min, max] of the decoder's input and of every unit's output (Conv+ReLU counted as one
    unit, as `_quantizable_decoder` groups them), from one fp32 pass over `feats`."""
    mods = [m for m in fc if not isinstance(m, nn.Identity)]
    ranges = [[math.inf, -math.inf] for _ in range(len(mods) + 1)]

    def widen(slot: int, t: torch.Tensor) -> None:
        ranges[slot][0] = min(ranges[slot][0], float(t.min()))
        ranges[slot][1] = max(ranges[slot][1], float(t.max()))

    with torch.inference_mode():
        for x in feats:
            widen(0, x)
            for i, m in enumerate(mods):
                x = m(x)
                widen(i + 1, x)
    units, i = [ranges[0]], 0
    while i < len(mods):  # keep the range after the ReLU of a Conv+ReLU pair
        fused = isinstance(mods[i], nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
        i += 2 if fused else 1
        units.append(ranges[i])
    return [tuple(r) for r in units]


def _observer_ranges(qdec: nn.Sequential, unit_ranges: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Observer name → range for a `_quantizable_decoder` layout, from `_unit_output_ranges`.

    A QuantStub sees the output of the unit before it (or the decoder's input); a quantized
    convolution's observer sees its own output. Bilinear upsampling stays inside its input's
    range, so a QuantStub after one gets the range of the unit before the upsampling too.
    """
    from torch.ao.nn.intrinsic import ConvReLU2d
    from torch.ao.quantization import DeQuantStub, QuantStub

    out, unit = {}, 0  # unit: how many real units precede this point
    for k, m in enumerate(qdec):
        if isinstance(m, QuantStub):
            out[f"{k}.activation_post_process"] = list(unit_ranges[unit])
        elif not isinstance(m, DeQuantStub):
            unit += 1
            if isinstance(m, (nn.Conv2d, ConvReLU2d)) and getattr(m, "qconfig", True) is not None:
                out[f"{k}.activation_post_process"] = list(unit_ranges[unit])
    return out


def most_sensitive_conv(decoder: nn.Module, feats: list[torch.Tensor], keep: frozenset[int]) -> frozenset[int]:
    """The one more convolution to keep in fp32: the one whose fp32 fallback lowers the worst
    pixel's error on the calibration images most (empty when none helps).

    Which convolution that is depends on the checkpoint's weights, not on the architecture:
    on the benchmark's conv-20 it is the second of the last stage (max |Δ| 0.074 → 0.033 on
    photos outside the calibration set; no other single convolution gets below 0.063), so it
    is chosen per model at the first fast start and cached with the ranges. Every trial
    reuses the activation ranges of one fp32 pass, so a trial is a conversion and an int8
    pass, not a new calibration.
    """
    fc = decoder.fc.inner if isinstance(decoder.fc, ChannelsLast) else decoder.fc
    unit_ranges = _unit_output_ranges(fc, feats)
    with torch.inference_mode():
        reference = [torch.sigmoid(decoder(f)) for f in feats]

    def worst(keep_set: frozenset[int]) -> float:
        qdec, _ = quantize_decoder(decoder, None, "minmax", keep_set, weight_bits7=True, unit_ranges=unit_ranges)
        with torch.inference_mode():
            return max(float((torch.sigmoid(qdec(f)) - r).abs().max()) for f, r in zip(feats, reference))

    count = sum(isinstance(m, nn.Conv2d) for m in fc.modules())
    best, best_error = None, worst(keep)
    for index in range(1, count - 1):  # the logits convolution (count - 1) is always fp32
        if index not in keep:
            error = worst(keep | {index})
            if error < best_error:
                best, best_error = index, error
    return frozenset() if best is None else frozenset({best})


class _DecoderWrapper(nn.Module):
    def __init__(self, fc: nn.Module):
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def optimize_fast_cpu(net: nn.Module, *, calibration=None, ranges: dict | None = None) -> dict | None:
    """Approximate int8 CPU rewrite of an `optimize_exact`-ed DeclipNet, in place.

    `calibration`: a callable returning normalized input batches (B×3×S×S) that set the
    decoder's int8 ranges; not called when `ranges` (from an earlier run) are given.
    Returns what the calibration found, for caching ({"float_convs": [...], "observers": {name: [min, max]}}),
    or None when nothing was quantized; passing it back as `ranges` skips the calibration.
    """
    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    backbone = net.backbone
    vit = getattr(backbone, "vit", None)
    if vit is not None:  # (RN50 convolutions stay fp32: the fusion's RN50 part is small)
        quantize_linears_dynamic(vit)
    decoder = net.decoder
    fc = getattr(decoder, "fc", None)
    convs = [] if fc is None else [m for m in fc.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) < 2 or (calibration is None and ranges is None):
        return None
    # Measured on ViT-L/14 conv-20 (benchmarks/engine.py): the first convolution (it reads
    # the ViT features, whose outlier channels 7/8-bit steps cannot follow) and the last
    # one before the logits cause most of the int8 error; they always stay fp32 (13% of the
    # decoder's multiply-adds). 7-bit weights with 8-bit activations beat the reverse.
    keep_fp32 = frozenset({0, len(convs) - 2})
    observed = None
    if ranges is not None:
        try:
            keep_fp32 = frozenset(int(i) for i in ranges["float_convs"])
            observed = dict(ranges["observers"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("cached int8 ranges come from another fast-mode recipe") from None
        feats = None
    else:
        with torch.inference_mode():
            feats = [backbone(batch) for batch in calibration()]
    # oneDNN's int8 convolutions ran this decoder 15-25% faster than fbgemm's (x86 engine) on
    # the development CPU (AVX2, no VNNI); fbgemm stays for the ViT's dynamic Linears (oneDNN
    # was no faster there). A packed weight remembers its engine, so the two can mix; 7-bit
    # weights keep the AVX2 int16 pair sums from saturating in either.
    engine = torch.backends.quantized.engine
    if "onednn" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "onednn"
    try:
        if observed is None:
            keep_fp32 |= most_sensitive_conv(decoder, feats, keep_fp32)
        qdec, found = quantize_decoder(decoder, feats, "minmax", keep_fp32, weight_bits7=True, ranges=observed,
                                       inplace=True)
    finally:
        torch.backends.quantized.engine = engine
    net.decoder = _DecoderWrapper(qdec)
    del decoder, fc, convs, feats
    trim_heap()
    return {"float_convs": sorted(keep_fp32), "observers": found}


# --------------------------------------------------------------------------- fast CPU mode, v4


def int8_linears(module: nn.Module, skip=lambda parent, name: False) -> int:
    """Replace every nn.Linear below `module` by an `int8.Int8Linear`, one at a time, releasing
    each fp32 weight's memory-mapped pages as soon as its int8 copy exists; returns how many."""
    from declip_desktop.engine.int8 import Int8Linear

    targets = [(parent, name, child) for parent in module.modules()
               for name, child in parent.named_children() if type(child) is nn.Linear and not skip(parent, name)]
    for parent, name, linear in targets:
        setattr(parent, name, Int8Linear(linear))
        weight = linear.weight
        del linear
        release_file_pages(weight)
        del weight
    trim_heap()
    return len(targets)


def int8_decoder(fc: nn.Sequential, float_convs: frozenset[int] = frozenset()) -> nn.Sequential:
    """The (BN-folded) conv decoder with every convolution int8 (`int8.Int8Conv2d`, ReLU fused)
    except those whose index is in `float_convs` and the last one (the logits)."""
    from declip_desktop.engine.int8 import Int8Conv2d

    mods = [m for m in fc if not isinstance(m, nn.Identity)]
    out, conv_index, i = [], 0, 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and i < len(mods) - 1 and conv_index not in float_convs:
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            out.append(Int8Conv2d(m, relu=relu))
            i += 2 if relu else 1
        else:
            out.append(m)
            i += 1
        conv_index += isinstance(m, nn.Conv2d)
    return nn.Sequential(*out)
