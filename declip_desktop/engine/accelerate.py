"""Inference-only rewrites of a loaded `DeclipNet`: exact ones, and the approximate CPU fast mode.

Exact (`optimize_exact`, always applied; fp32 math, same results within float rounding):
- attention through one fused q/k/v projection and `F.scaled_dot_product_attention`
  instead of `nn.MultiheadAttention`'s general path (no mask/need_weights plumbing, and the
  q/k/v projection is one GEMM);
- BatchNorm folded into the preceding convolution (the decoder is Conv → BN → ReLU twenty
  times; folding removes one full read and write of every activation map);
- (optional, off by default) the decoder in channels_last layout: measured *slower* on this
  project's AMD EPYC CPU (3.6 s vs 2.8 s per batch of 4 for the folded conv-20 decoder).

Fast (`optimize_fast_cpu`, `Localizer(fast=True)` on CPU; approximate, see docs/PERFORMANCE.md),
recipe `FAST_RECIPE`:
- every Linear of the ViT (attention projections included, thanks to the fused module above)
  and every convolution of the decoder except the first (`FLOAT_CONVS`) and the logits
  becomes an `int8` layer whose activations are quantized with each token's (Linear) or each
  image's (convolution) own range at every call, weights split into two 7-bit int8 parts
  (`SPLIT_WEIGHTS`) and the inputs into two 8-bit passes (`SPLIT_VIT_INPUT`,
  `SPLIT_DECODER_INPUT`).
  Nothing is calibrated, so nothing depends on calibration images, nothing is clipped on an
  image unlike them, a model needs no preparation step when it is installed, and an image's
  map does not depend on its batch-mates. The earlier recipe (static decoder ranges
  calibrated on procedural images, per-call ViT scales) moved single pixels by up to 0.40 on
  held-out images.
- Converting one Linear at a time and releasing its fp32 pages keeps the peak memory near the
  int8 model's (`int8_linears`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

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
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    count = 0
    for child in module.children():
        count += fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        items = list(module._modules.items())
        for (_, conv), (bn_name, bn) in zip(items, items[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                # The weights-only form: `fuse_conv_bn_eval` deep-copies the convolution first,
                # one more pass over 200 MB of memory-mapped weights at every model load.
                mapped = conv.weight
                conv.weight, conv.bias = fuse_conv_bn_weights(
                    conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
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



def int8_linears(module: nn.Module, skip=lambda parent, name: False, split=lambda parent, name: False,
                 split_input: bool = False) -> int:
    """Replace every nn.Linear below `module` by an `int8.Int8Linear`, one at a time, releasing
    each fp32 weight's memory-mapped pages as soon as its int8 copy exists; returns how many."""
    from declip_desktop.engine.int8 import Int8Linear

    targets = [(parent, name, child) for parent in module.modules()
               for name, child in parent.named_children() if type(child) is nn.Linear and not skip(parent, name)]
    for parent, name, linear in targets:
        setattr(parent, name, Int8Linear(linear, split=split(parent, name), split_input=split_input))
        weight = linear.weight
        del linear
        release_file_pages(weight)
        del weight
    trim_heap()
    return len(targets)


def int8_decoder(fc: nn.Sequential, float_convs: frozenset[int] = frozenset(), split: bool = False,
                 split_input: bool = False) -> nn.Sequential:
    """The (BN-folded) conv decoder with every convolution int8 (`int8.Int8Conv2d`, ReLU fused)
    except those whose index is in `float_convs` and the last one (the logits)."""
    from declip_desktop.engine.int8 import Int8Conv2d

    mods = [m for m in fc if not isinstance(m, nn.Identity)]
    out, conv_index, i = [], 0, 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and i < len(mods) - 1 and conv_index not in float_convs:
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            out.append(Int8Conv2d(m, relu=relu, split=split, split_input=split_input))
            i += 2 if relu else 1
        else:
            out.append(m)
            i += 1
        conv_index += isinstance(m, nn.Conv2d)
    return nn.Sequential(*out)


# --------------------------------------------------------------------------- fast CPU mode

#: Names the fast-mode recipe; recorded with every fast-mode result (`Localizer.parameters`).
FAST_RECIPE = "fast-cpu-v4"
#: Decoder convolutions kept in fp32 by index (the logits convolution always is). Measured on
#: the benchmark model (benchmarks/fast_mode_diagnosis.py): the first one reads the ViT
#: features, whose few large channels leave the others only a few int8 steps.
FLOAT_CONVS = frozenset({0})
#: Every int8 weight as the sum of two int8 weights (about 13 bits; `int8.Int8Linear`): the
#: 7-bit weights alone carried about half of fast mode's error, spread over every layer.
SPLIT_WEIGHTS = True
#: Decoder convolutions also take their input in two 8-bit passes (about 16 bits): with split
#: weights alone the decoder still moved a held-out photo's map by max |Δ| 0.033 (benchmark
#: model), which leaves activation rounding as the remaining source.
SPLIT_DECODER_INPUT = True
#: The ViT's Linears likewise (each token in two 8-bit passes): with one pass, the worst
#: evaluation images (a photo, screenshots, text) kept max |Δ| 0.034–0.064, all from the ViT;
#: with two, those eight images measured ≤ 0.0006 (docs/PERFORMANCE.md).
SPLIT_VIT_INPUT = True


def optimize_fast_cpu(net: nn.Module) -> bool:
    """Approximate int8 CPU rewrite of an `optimize_exact`-ed DeclipNet, in place.

    Returns False (and leaves `net` exact) when this PyTorch build lacks the oneDNN int8
    kernels (`int8.available()`), so the caller can say that fast mode ran exact.
    """
    from declip_desktop.engine import int8

    if not int8.available():
        return False
    vit = getattr(getattr(net, "backbone", None), "vit", None)
    if vit is not None:  # (RN50 convolutions stay fp32: the fusion's RN50 part is small)
        int8_linears(vit, split=lambda parent, name: SPLIT_WEIGHTS, split_input=SPLIT_VIT_INPUT)
    decoder = getattr(net, "decoder", None)
    fc = getattr(decoder, "fc", None)
    if isinstance(fc, ChannelsLast):
        fc = fc.inner
    if isinstance(fc, nn.Sequential) and sum(isinstance(m, nn.Conv2d) for m in fc) >= 2:
        decoder.fc = int8_decoder(fc, FLOAT_CONVS, split=SPLIT_WEIGHTS, split_input=SPLIT_DECODER_INPUT)
    del fc
    trim_heap()
    return True
