"""CPU inference back ends other than PyTorch's own eager mode (see docs/PERFORMANCE.md).

- `openvino_cpu`: the network converted once to an OpenVINO model (cached next to the model's
  card, checked by hash at every load) and run by OpenVINO's CPU plugin: fp32 for exact mode,
  bf16 on CPUs with AMX for fast mode, with two-part weights (`two_part`); on CPUs without AMX
  (AVX2 only, or AVX512-BF16 alone, where bf16 measured no faster than fp32), fast mode runs
  the ViT in fp32 and the decoder in int8 (`hybrid`). `selection` decides.
"""
