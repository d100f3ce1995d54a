"""An independent reference forward pass of DeCLIP, in plain torch ops, from DESIGN.md.

It reads the authors' checkpoint layout directly (`model.visual.*` / OpenAI `visual.*`
and `fc.*`), shares no code with `declip_desktop.engine.networks`, and is deliberately
naive (explicit attention, explicit BatchNorm), so agreement with the engine means both
implement the description, not that one copies the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _ln(x, sd, p):
    return F.layer_norm(x, (x.shape[-1],), sd[f"{p}.weight"].float(), sd[f"{p}.bias"].float(), eps=1e-5)


def _bn(x, sd, p):
    mean, var = sd[f"{p}.running_mean"].float(), sd[f"{p}.running_var"].float()
    w, b = sd[f"{p}.weight"].float(), sd[f"{p}.bias"].float()
    scale = w / torch.sqrt(var + 1e-5)
    return x * scale[None, :, None, None] + (b - mean * scale)[None, :, None, None]


def vit_layer_map(sd: dict, x: torch.Tensor, layer: int, prefix: str = "model.visual") -> torch.Tensor:
    """Tokens after block `layer` (after ln_pre and layer+1 blocks), class token dropped → B×W×g×g."""
    conv = sd[f"{prefix}.conv1.weight"].float()
    width, patch = conv.shape[0], conv.shape[-1]
    heads = width // 64
    b = x.shape[0]
    t = F.conv2d(x, conv, stride=patch)  # B×W×g×g
    g = t.shape[-1]
    t = t.reshape(b, width, g * g).transpose(1, 2)  # B×L×W, row-major patches
    cls = sd[f"{prefix}.class_embedding"].float().reshape(1, 1, width).expand(b, 1, width)
    t = torch.cat([cls, t], dim=1) + sd[f"{prefix}.positional_embedding"].float()
    t = _ln(t, sd, f"{prefix}.ln_pre")
    for i in range(layer + 1):
        p = f"{prefix}.transformer.resblocks.{i}"
        h = _ln(t, sd, f"{p}.ln_1")
        qkv = h @ sd[f"{p}.attn.in_proj_weight"].float().T + sd[f"{p}.attn.in_proj_bias"].float()
        q, k, v = qkv.split(width, dim=-1)
        d = width // heads

        def split(z):
            return z.reshape(b, -1, heads, d).transpose(1, 2)  # B×H×L×d

        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d), dim=-1)
        a = (att @ split(v)).transpose(1, 2).reshape(b, -1, width)
        t = t + a @ sd[f"{p}.attn.out_proj.weight"].float().T + sd[f"{p}.attn.out_proj.bias"].float()
        h = _ln(t, sd, f"{p}.ln_2")
        h = h @ sd[f"{p}.mlp.c_fc.weight"].float().T + sd[f"{p}.mlp.c_fc.bias"].float()
        h = h * torch.sigmoid(1.702 * h)  # QuickGELU
        t = t + h @ sd[f"{p}.mlp.c_proj.weight"].float().T + sd[f"{p}.mlp.c_proj.bias"].float()
    return t[:, 1:].transpose(1, 2).reshape(b, width, g, g)


def resnet_stage_map(sd: dict, x: torch.Tensor, stage: int, prefix: str = "model.visual") -> torch.Tensor:
    """Output of ResNet stage `stage` (1…4) of OpenAI's ModifiedResNet."""
    w = lambda k: sd[f"{prefix}.{k}"].float()  # noqa: E731
    x = F.relu(_bn(F.conv2d(x, w("conv1.weight"), stride=2, padding=1), sd, f"{prefix}.bn1"))
    x = F.relu(_bn(F.conv2d(x, w("conv2.weight"), padding=1), sd, f"{prefix}.bn2"))
    x = F.relu(_bn(F.conv2d(x, w("conv3.weight"), padding=1), sd, f"{prefix}.bn3"))
    x = F.avg_pool2d(x, 2)
    for s in range(1, stage + 1):
        stride = 1 if s == 1 else 2
        i = 0
        while f"{prefix}.layer{s}.{i}.conv1.weight" in sd:
            p = f"layer{s}.{i}"
            st = stride if i == 0 else 1
            out = F.relu(_bn(F.conv2d(x, w(f"{p}.conv1.weight")), sd, f"{prefix}.{p}.bn1"))
            out = F.relu(_bn(F.conv2d(out, w(f"{p}.conv2.weight"), padding=1), sd, f"{prefix}.{p}.bn2"))
            if st > 1:
                out = F.avg_pool2d(out, st)
            out = _bn(F.conv2d(out, w(f"{p}.conv3.weight")), sd, f"{prefix}.{p}.bn3")
            if f"{prefix}.{p}.downsample.0.weight" in sd:
                idn = F.avg_pool2d(x, st) if st > 1 else x
                idn = _bn(F.conv2d(idn, w(f"{p}.downsample.0.weight")), sd, f"{prefix}.{p}.downsample.1")
            else:
                idn = x
            x = F.relu(out + idn)
            i += 1
    return x


def decoder(sd: dict, feats: torch.Tensor, involves_rn50: bool) -> torch.Tensor:
    """Walk the authors' `fc.<i>` indices; parameter-free gaps are the upsamplings."""
    if sd["fc.0.weight"].ndim == 2:  # linear decoder
        b, c, h, w = feats.shape
        tokens = feats.reshape(b, c, h * w).transpose(1, 2)
        out = (tokens @ sd["fc.0.weight"].float().T + sd["fc.0.bias"].float()).reshape(b, 1, h, w)
        return F.interpolate(out, size=(256, 256), mode="bicubic", align_corners=False)
    last = max(int(k.split(".")[1]) for k in sd if k.startswith("fc."))
    x, i = feats, 0
    while i <= last:
        if f"fc.{i}.weight" in sd and sd[f"fc.{i}.weight"].ndim == 4:
            x = F.conv2d(x, sd[f"fc.{i}.weight"].float(), sd[f"fc.{i}.bias"].float(), padding=2)
            i += 1
        elif f"fc.{i}.running_mean" in sd:
            x = F.relu(_bn(x, sd, f"fc.{i}"))
            i += 2  # BatchNorm and the ReLU after it
        elif involves_rn50 and i == last - 1:
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
            i += 1
        else:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            i += 1
    return x


def forward_vit(sd, x, layer: int):
    return decoder(sd, vit_layer_map(sd, x, layer), involves_rn50=False)


def forward_rn50(sd, x, stage: int):
    return decoder(sd, resnet_stage_map(sd, x, stage), involves_rn50=True)


def forward_fusion(fc_sd, vit_sd, rn_sd, x, layer: int):
    v = vit_layer_map(vit_sd, x, layer, prefix="visual")
    r = resnet_stage_map(rn_sd, x, 3, prefix="visual")
    r = F.interpolate(r, size=v.shape[-2:], mode="bilinear", align_corners=False)
    return decoder(fc_sd, torch.cat([v, r], dim=1), involves_rn50=True)
