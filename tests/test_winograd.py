"""Winograd F(4×4, 5×5) convolutions (engine.winograd): the same values as a direct convolution at
every shape the decoder can meet, and the full-size conv-20 decoder within exact mode's limit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from declip_desktop.engine import accelerate, winograd
from declip_desktop.engine.networks import NetSpec, build_network
from declip_desktop.engine.winograd import WinogradConv2d


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


def test_the_one_dimensional_transform_is_exact():
    a_t, g, b_t = winograd.toom_cook_matrices()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        d = torch.randn(8, dtype=torch.float64, generator=gen)
        taps = torch.randn(5, dtype=torch.float64, generator=gen)
        want = torch.stack([(d[i:i + 5] * taps).sum() for i in range(4)])
        assert (a_t @ ((g @ taps) * (b_t @ d)) - want).abs().max().item() < 1e-12


@pytest.mark.parametrize("n, cin, cout, h, w", [
    (1, 3, 16, 1, 1),        # one pixel: every tap but the centre reads padding
    (2, 8, 16, 13, 7),       # sizes that are not a whole number of 4×4 blocks
    (1, 16, 32, 3, 300),     # extreme aspect ratio
    (3, 32, 16, 4, 4),       # exactly one block
    (2, 64, 64, 16, 16),     # a decoder stage's shape
])
def test_matches_direct_convolution_at_every_shape(n, cin, cout, h, w):
    torch.manual_seed(n * 1000 + h)
    conv = nn.Conv2d(cin, cout, 5, padding=2)
    x = torch.randn(n, cin, h, w)
    with torch.inference_mode():
        want = conv(x)
        for layout in (torch.contiguous_format, torch.channels_last):
            got = WinogradConv2d(conv)(x.contiguous(memory_format=layout))
            assert got.shape == want.shape
            assert _relative_error(got, want) < 5e-5


def test_large_batches_are_split_and_give_the_same_values(monkeypatch):
    torch.manual_seed(1)
    conv = nn.Conv2d(16, 16, 5, padding=2)
    x = torch.randn(5, 16, 12, 12)
    layer = WinogradConv2d(conv)
    with torch.inference_mode():
        whole = layer(x)
        monkeypatch.setattr(winograd, "MAX_TILE_FLOATS", 1)  # one image per product
        split = layer(x)
    torch.testing.assert_close(split, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("conv", [
    nn.Conv2d(8, 16, 3, padding=1),
    nn.Conv2d(8, 16, 5, padding=2, stride=2),
    nn.Conv2d(8, 16, 5, padding=4, dilation=2),
    nn.Conv2d(8, 16, 5, padding=2, groups=2),
    nn.Conv2d(8, 16, 5, padding=0),
    nn.Conv2d(8, 16, 5, padding=2, padding_mode="reflect"),
])
def test_other_convolutions_are_refused_and_left_alone(conv):
    assert not WinogradConv2d.supports(conv)
    with pytest.raises(ValueError, match="5×5"):
        WinogradConv2d(conv)
    fc = nn.Sequential(conv, nn.ReLU())
    assert winograd.winograd_sequential(fc) == 0 and fc[0] is conv


def test_narrow_layers_stay_direct():
    fc = nn.Sequential(nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.Conv2d(64, 1, 5, padding=2))
    assert winograd.winograd_sequential(fc) == 1
    assert isinstance(fc[0], WinogradConv2d) and isinstance(fc[2], nn.Conv2d)


def test_wrong_channel_count_is_a_clear_error():
    layer = WinogradConv2d(nn.Conv2d(8, 16, 5, padding=2))
    with pytest.raises(ValueError, match="expected 8 input channels, got 4"):
        layer(torch.zeros(1, 4, 8, 8))


def test_full_size_conv20_decoder_stays_within_exact_modes_limit():
    """The claim is about the real decoder: 1024 → 512 … 64 channels, 16×16 → 256×256 through
    twenty convolutions. Weights as benchmarks/engine.py sets them (a well-behaved random stack,
    logits scaled to std 3 so the map is far from flat)."""
    torch.manual_seed(5)
    net = build_network(NetSpec("ViT-L/14", "layer20", "conv-20"), meta=True)
    decoder = net.decoder.to_empty(device="cpu").eval()
    fc = decoder.fc
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for m in fc:
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_((torch.randn(m.weight.shape, generator=gen) + 0.05) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        features = F.relu(torch.randn(2, 1024, 16, 16, generator=gen)) * 0.5
        accelerate.fold_batchnorm(decoder)
        logits = decoder(features)
        last = [m for m in fc if isinstance(m, nn.Conv2d)][-1]
        scale = 3.0 / logits.std().item()
        last.weight.mul_(scale)
        last.bias.mul_(scale).sub_(logits.mean().item() * scale)
        want = torch.sigmoid(decoder(features))
        assert want.std().item() > 0.1  # far from flat
        assert winograd.winograd_sequential(fc) == 20  # all twenty; the logits (64 → 1) stay direct
        got = torch.sigmoid(decoder(features))
    assert (got - want).abs().max().item() <= 1e-4


def test_exact_mode_on_the_cpu_records_it_and_gives_the_reference_map():
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.engine.localizer import Localizer
    from declip_desktop.engine.networks import VitSpec

    torch.manual_seed(2)
    spec = NetSpec("ViT-L/14", "layer1", "conv-4", vit=VitSpec(width=64), decoder_widths=(32, 16, 16, 8))
    card = ModelCard(name="w", backbone="ViT-L/14", layer="layer1", decoder="conv-4")
    reference = build_network(spec).eval()
    copy = build_network(spec).eval()
    copy.load_state_dict(reference.state_dict())
    exact = Localizer(copy, card=card, device="cpu", backend="torch")
    assert exact.parameters["decoder_convolutions"] == winograd.LABEL
    assert sum(isinstance(m, WinogradConv2d) for m in exact.net.modules()) == 3  # 32, 16, 16 wide; 8 and logits direct
    x = torch.rand(2, 3, 224, 224)
    with torch.inference_mode():
        assert (torch.sigmoid(exact.net(x)) - torch.sigmoid(reference(x))).abs().max().item() <= 1e-5
