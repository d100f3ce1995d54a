"""Peak memory and time of importing a full-size DeCLIP ViT-L/14 checkpoint, and of loading it.

Writes a random-weight checkpoint in the authors' exact layout and size class (whole
CLIP with text tower + conv-20 decoder + AdamW moments, about 1.9 GB), then runs in
fresh processes: `declip models import` (limit: 5 GB peak RSS) and `load_network` + one
forward pass on CPU. Prints the figures with the machine.

    .venv/bin/python benchmarks/model_import.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.factories`

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(2)
what, arg = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if what == "import":
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    card = import_checkpoint(arg)
    extra = {"name": card.name}
else:
    from declip_desktop.modelstore.loading import load_network, resolve_model
    net = load_network(resolve_model(arg))
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    extra = {}
# VmHWM is this process's own peak (ru_maxrss would include the parent's peak before exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": peak, **extra}))
"""


def write_checkpoint(path: Path) -> int:
    import torch

    from tests import factories

    state = factories.vit_checkpoint_state(
        "layer20", "conv-20", 0, vit=factories.REAL_VIT, text=factories.REAL_TEXT_VIT,
        widths=factories.REAL_DECODER_WIDTHS,
    )
    fc = [k for k in state if k.startswith("fc.") and state[k].is_floating_point() and "running" not in k]
    # AdamW moments of the trained decoder parameters, as in the authors' files
    moments = {i: {"step": torch.tensor(1000.0), "exp_avg": torch.zeros_like(state[k]),
                   "exp_avg_sq": torch.zeros_like(state[k])} for i, k in enumerate(fc)}
    ckpt = {"model": state, "feature_layer": "layer20", "decoder_type": "conv-20", "total_steps": 1000,
            "optimizer": {"state": moments, "param_groups": [{"lr": 1e-4, "params": list(range(len(fc)))}]}}
    torch.save(ckpt, path)
    return path.stat().st_size


def run_child(what: str, arg: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, arg], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--write-checkpoint", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_checkpoint:
        write_checkpoint(args.write_checkpoint)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="declip_import_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "ViT_layer20_conv-20_ldm.pth"
    if not ckpt.exists():
        # in a child process, so that this parent stays small while it measures the others
        subprocess.run([sys.executable, __file__, "--write-checkpoint", str(ckpt)], check=True)
    size = ckpt.stat().st_size
    env = {**os.environ, "DECLIP_HOME": str(work / "home"), "OMP_NUM_THREADS": "2"}
    imp = run_child("import", str(ckpt), env)
    load = run_child("load", imp["name"], env)
    weights = work / "home" / "models" / f"{imp['name']}.safetensors"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, {platform.platform()}")
    print(f"checkpoint: {size / 1e9:.2f} GB -> installed {weights.stat().st_size / 1e9:.2f} GB safetensors")
    print(f"import: {imp['seconds']:.1f} s, peak RSS {imp['peak_rss_mb']:.0f} MB (limit 5000 MB)")
    print(f"load_network + 1 forward (CPU): {load['seconds']:.1f} s, peak RSS {load['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
