"""The memory side of the inference rewrites: int8 conversion without holding two copies."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from declip_desktop.engine import accelerate

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release is Linux-only")


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


@linux_only
def test_released_weight_pages_leave_memory_but_keep_their_values(tmp_path):
    weights = torch.randn(64, 1024, 256)  # 64 MiB
    path = tmp_path / "w.safetensors"
    save_file({"w": weights}, str(path))
    mapped = load_file(str(path))["w"]
    assert torch.equal(mapped, weights)  # reads every page: now resident
    before = _rss_kb()
    released = accelerate.release_file_pages(mapped)
    after = _rss_kb()
    assert released > 60 * 2**20
    assert before - after > 50 * 1024  # KiB: the pages really left this process
    assert torch.equal(mapped, weights)  # and read back from the file, unchanged


@linux_only
def test_heap_tensors_are_never_released():
    heap = torch.arange(4 * 2**20, dtype=torch.float32)  # anonymous memory: MADV_DONTNEED would zero it
    assert accelerate.release_file_pages(heap) == 0
    assert heap[-1].item() == 4 * 2**20 - 1


def test_linear_conversion_matches_torch_quantize_dynamic():
    from torch.ao.quantization import quantize_dynamic
    from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Sequential(nn.Linear(64, 16), nn.Linear(16, 8)))
    x = torch.randn(5, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = quantize_dynamic(
            __import__("copy").deepcopy(net), {nn.Linear: per_channel_dynamic_qconfig}, inplace=False)
    assert accelerate.quantize_linears_dynamic(net) == 3
    assert not any(type(m) is nn.Linear for m in net.modules())
    with torch.inference_mode():
        assert torch.equal(net(x), reference(x))


def test_per_token_scaling_keeps_ordinary_tokens_precise_next_to_an_outlier_token():
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.quantization.qconfig import per_channel_dynamic_qconfig

    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    x = torch.randn(2, 10, 64)
    x[0, 0] *= 200.0  # one token with huge values, as attention inputs have
    exact = linear(x).detach()
    token_scaled = accelerate.TokenScaledDynamicLinear(linear)
    linear.qconfig = per_channel_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_call = nnqd.Linear.from_float(linear)
    with torch.inference_mode():
        err_token = (token_scaled(x) - exact)[:, 1:].abs().max().item()
        err_call = (per_call(x) - exact)[:, 1:].abs().max().item()
    assert err_token < 0.05 < err_call  # ordinary tokens: int8-level error vs swamped by the outlier's scale
    assert err_token * 10 < err_call
