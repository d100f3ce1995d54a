"""DeCLIP networks: shapes, truncation, determinism, and agreement with an independent reference."""

from __future__ import annotations

import pytest
import torch

from tests import factories
from tests import reference_declip as ref
from declip_desktop.engine import networks as nets
from declip_desktop.modelstore.loading import load_network, resolve_model

torch.set_num_threads(2)

TINY = dict(
    vit=nets.VitSpec(width=64, depth=2),
    resnet=nets.ResNetSpec(width=8, blocks=(1, 1, 1, 1)),
    decoder_widths=factories.TINY_DECODER_WIDTHS,
)


def _image(seed=0, batch=2):
    return torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "backbone,layer,decoder",
    [
        (nets.VIT, "layer0", "conv-4"),
        (nets.VIT, "layer1", "conv-12"),
        (nets.VIT, "layer1", "linear"),
        (nets.RN50, "layer1", "conv-4"),
        (nets.RN50, "layer2", "conv-4"),
        (nets.RN50, "layer3", "conv-4"),
        (nets.RN50, "layer4", "conv-4"),
        (nets.FUSION, "layer1", "conv-4"),
    ],
)
def test_every_architecture_gives_256px_logits(backbone, layer, decoder):
    net = nets.build_network(nets.NetSpec(backbone, layer, decoder, **TINY))
    with torch.no_grad():
        out = net(_image(batch=1))
    assert out.shape == (1, 1, 256, 256)
    assert torch.isfinite(out).all()


def test_vit_keeps_only_the_blocks_it_runs_and_no_head():
    spec = nets.NetSpec(nets.VIT, "layer20", "conv-20")  # real ViT-L/14 shapes, no memory used
    shapes = nets.expected_shapes(spec)
    blocks = {int(k.split(".")[4]) for k in shapes if ".resblocks." in k}
    assert blocks == set(range(21))
    assert not any("ln_post" in k or k.endswith(".proj") for k in shapes)
    assert shapes["backbone.vit.conv1.weight"] == (1024, 3, 14, 14)
    assert shapes["backbone.vit.positional_embedding"] == (257, 1024)
    # the authors' fc indices: 4 stages × (5 × conv/bn/relu + upsample) = 64 modules, then the last conv
    assert shapes["decoder.fc.0.weight"] == (512, 1024, 5, 5)
    assert shapes["decoder.fc.64.weight"] == (1, 64, 5, 5)


def test_fusion_and_rn50_decoder_indices_follow_the_authors_layout():
    fusion = nets.expected_shapes(nets.NetSpec(nets.FUSION, "layer20", "conv-20"))
    assert fusion["decoder.fc.0.weight"] == (512, 2048, 5, 5)
    assert fusion["decoder.fc.65.weight"] == (1, 64, 5, 5)  # index 64 is the Upsample to 256×256
    assert not any(k.startswith("backbone.rn50.layer4") or "attnpool" in k for k in fusion)
    rn1 = nets.expected_shapes(nets.NetSpec(nets.RN50, "layer1", "conv-4"))
    # stages 1 and 2 skip their upsampling: 3+3+4+4 modules, then Upsample(256) at 14, conv at 15
    assert rn1["decoder.fc.0.weight"] == (512, 256, 5, 5)
    assert rn1["decoder.fc.15.weight"] == (1, 64, 5, 5)


def test_invalid_combinations_are_refused():
    with pytest.raises(nets.NetworkSpecError):
        nets.NetSpec(nets.RN50, "layer3", "linear")
    with pytest.raises(nets.NetworkSpecError):
        nets.NetSpec(nets.VIT, "layer24", "conv-20")
    with pytest.raises(nets.NetworkSpecError):
        nets.NetSpec(nets.RN50, "layer5", "conv-4")
    with pytest.raises(nets.NetworkSpecError):
        nets.NetSpec(nets.VIT, "layer20", "conv-7")


def test_forward_is_deterministic():
    net = nets.build_network(nets.NetSpec(nets.FUSION, "layer1", "conv-4", **TINY))
    x = _image()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        # batching does not change an image's result beyond float noise
        assert torch.allclose(net(x)[1:], net(x[1:]), atol=1e-5)


def _install(path):
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint

    return resolve_model(import_checkpoint(path).name)


@pytest.mark.parametrize(
    "layer,decoder", [("layer0", "conv-4"), ("layer1", "conv-12"), ("layer1", "linear")]
)
def test_vit_matches_the_reference(tmp_path, layer, decoder):
    src = factories.make_tiny_vit_checkpoint(tmp_path / f"ViT_{layer}_{decoder}_ldm.pth", layer, decoder, seed=3)
    net = load_network(_install(src))
    sd = torch.load(src, weights_only=True)["model"]
    x = _image(batch=1)
    with torch.no_grad():
        ours, theirs = net(x), ref.forward_vit(sd, x, int(layer[5:]))
    assert theirs.std() > 1e-3  # a meaningful comparison, not two zero maps
    assert (ours - theirs).abs().max().item() < 1e-5


@pytest.mark.parametrize("layer", ["layer1", "layer2", "layer3", "layer4"])
def test_rn50_matches_the_reference(tmp_path, layer):
    src = factories.make_tiny_rn50_checkpoint(tmp_path / f"RN50_{layer}_conv-4_lama.pth", layer=layer, seed=4)
    net = load_network(_install(src))
    sd = torch.load(src, weights_only=True)["model"]
    x = _image(batch=1)
    with torch.no_grad():
        ours, theirs = net(x), ref.forward_rn50(sd, x, int(layer[5:]))
    assert theirs.std() > 1e-4
    assert (ours - theirs).abs().max().item() < 1e-5


def test_fusion_matches_the_reference(tmp_path):
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint

    src = factories.make_tiny_fusion_checkpoint(tmp_path / "ViT_layer1+RN50_layer3_conv-4_ldm.pth", seed=5)
    vit = factories.make_clip_weights(tmp_path / "ViT-L-14.pt", "ViT", seed=6)
    rn = factories.make_clip_weights(tmp_path / "RN50.pt", "RN50", seed=7)
    card = import_checkpoint(src, clip_weights=[vit, rn])
    net = load_network(resolve_model(card.name))
    fc = torch.load(src, weights_only=True)["model"]
    vit_sd, rn_sd = torch.load(vit, weights_only=True), torch.load(rn, weights_only=True)
    x = _image(batch=1)
    with torch.no_grad():
        ours, theirs = net(x), ref.forward_fusion(fc, vit_sd, rn_sd, x, 1)
    assert theirs.std() > 1e-4
    assert (ours - theirs).abs().max().item() < 1e-5


def _random_state(spec, seed=0):
    """Seeded random weights for every tensor of `spec` (faster than module init at full size)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in nets.expected_shapes(spec).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) >= 2:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            state[key] = torch.randn(shape, generator=gen) * fan_in**-0.5
        elif key.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight")) or (
            key.startswith("decoder.") and key.endswith(".weight")
        ):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=gen)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=gen)
    return state


@pytest.mark.slow
def test_real_size_vit_l14_layer20_conv20_matches_the_reference():
    spec = nets.NetSpec(nets.VIT, "layer20", "conv-20")
    state = _random_state(spec)
    net = nets.build_network(spec, meta=True)
    net.load_state_dict(state, strict=True, assign=True)
    # the same weights in the authors' naming, for the reference
    sd = {}
    for k, v in state.items():
        if k.startswith("backbone.vit."):
            sd["model.visual." + k[len("backbone.vit."):]] = v
        elif k.startswith("decoder."):
            sd[k[len("decoder."):]] = v
    x = _image(batch=1)
    with torch.no_grad():
        ours = net(x)
        theirs = ref.forward_vit(sd, x, 20)
    assert ours.shape == (1, 1, 256, 256)
    assert theirs.std() > 1e-3
    assert (ours - theirs).abs().max().item() < 1e-4
