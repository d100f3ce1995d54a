"""Peak memory and time of importing a full-size DeCLIP ViT-L/14 checkpoint, preparing it, and loading it.

Writes a random-weight checkpoint in the authors' exact layout and size class (whole
CLIP with text tower + conv-20 decoder + AdamW moments, about 1.9 GB), then runs in
fresh processes: `declip models import`'s install (limit: 5 GB peak RSS), its preparation
for this machine (`modelstore.preparation.prepare_installed`: the OpenVINO conversions that
would otherwise run at the first analysis in each mode), `load_network` + one forward pass on
CPU, and the load of a `Localizer` through each CPU back end (PyTorch: safetensors memory-mapped
+ SHA-256; the machine's choice: the prepared OpenVINO file checked and compiled), each followed
by one forward pass (timed apart). Prints the figures with the machine.

    .venv/bin/python benchmarks/model_import.py [--workdir DIR]
    .venv/bin/python benchmarks/model_import.py --quick   # a tiny checkpoint: does it work?
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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
extra = {}
if what == "import":
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    card = import_checkpoint(arg)
    extra = {"name": card.name}
elif what == "prepare":
    from declip_desktop.modelstore.preparation import prepare_installed
    report = prepare_installed(arg)
    extra = {"modes": {o.mode: [o.state, round(o.seconds, 1)] for o in report.outcomes}, "ok": report.ok}
elif what == "localizer":
    from declip_desktop.modelstore.loading import load_localizer
    import open_clip  # noqa: F401  (the app imports it at start-up: not part of a model's load)
    t = time.perf_counter()
    loc = load_localizer(arg, device="cpu", threads=2)
    loaded = time.perf_counter()
    with torch.no_grad():
        loc.net(torch.zeros(1, 3, 224, 224))
    extra = {"load_s": loaded - t, "forward_s": time.perf_counter() - loaded, "backend": loc.parameters["backend"]}
else:
    from declip_desktop.modelstore.loading import load_network, resolve_model
    net = load_network(resolve_model(arg))
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
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
    ap.add_argument("--quick", action="store_true", help="a tiny ViT checkpoint instead of the 1.9 GB one")
    ap.add_argument("--write-checkpoint", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_checkpoint:
        write_checkpoint(args.write_checkpoint)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="declip_import_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    # --quick: the test suite's tiny ViT (two blocks), named as the authors would name it
    ckpt = work / "quick" / "ViT_layer1_conv-12_ldm.pth" if args.quick else work / "ViT_layer20_conv-20_ldm.pth"
    if args.quick and not ckpt.exists():
        from tests.factories import make_tiny_vit_checkpoint

        make_tiny_vit_checkpoint(ckpt, layer="layer1", decoder="conv-12")
    elif not ckpt.exists():
        # in a child process, so that this parent stays small while it measures the others
        subprocess.run([sys.executable, __file__, "--write-checkpoint", str(ckpt)], check=True)
    size = ckpt.stat().st_size
    home = ckpt.parent / "home"
    shutil.rmtree(home, ignore_errors=True)  # an install from scratch each run
    env = {**os.environ, "DECLIP_HOME": str(home), "OMP_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    imp = run_child("import", str(ckpt), env)
    prep = run_child("prepare", imp["name"], env)
    load = run_child("load", imp["name"], env)
    backends = list(dict.fromkeys(["torch", os.environ.get("DECLIP_CPU_BACKEND") or "auto"]))
    locs = {b: run_child("localizer", imp["name"], {**env, "DECLIP_CPU_BACKEND": b}) for b in backends}
    weights = home / "models" / f"{imp['name']}.safetensors"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, {platform.platform()}")
    print(f"checkpoint: {size / 1e9:.2f} GB -> installed {weights.stat().st_size / 1e9:.2f} GB safetensors")
    print(f"import: {imp['seconds']:.1f} s, peak RSS {imp['peak_rss_mb']:.0f} MB (limit 5000 MB)")
    modes = ", ".join(f"{m} {state} ({sec:.1f} s)" for m, (state, sec) in prep["modes"].items())
    print(f"prepare for this machine (at import): {prep['seconds']:.1f} s, peak RSS {prep['peak_rss_mb']:.0f} MB: {modes}")
    if not prep["ok"]:
        print("  warning: not every mode was prepared; the loads below include a conversion")
    print(f"load_network + 1 forward (CPU): {load['seconds']:.1f} s, peak RSS {load['peak_rss_mb']:.0f} MB")
    for b, r in locs.items():
        print(f"load_localizer, back end {b} → {r['backend']}: load {r['load_s']:.2f} s, then 1 forward "
              f"{r['forward_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
