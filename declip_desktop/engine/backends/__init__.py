"""CPU inference back ends other than PyTorch's own eager mode (see docs/PERFORMANCE.md).

- `openvino_cpu`: the network converted once to an OpenVINO model (cached next to the model's
  card, checked by hash at every load) and run by OpenVINO's CPU plugin: fp32 for exact mode,
  bf16 on CPUs with bf16 instructions (AMX, AVX512-BF16) for fast mode, with two-part weights
  (`two_part`); on CPUs without them (AVX2 only), fast mode runs the ViT in fp32 and the
  decoder in int8 (`hybrid`).
"""
