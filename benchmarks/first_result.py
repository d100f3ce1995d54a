"""Launch → first result in the real app (issue 23 item 4): one dropped 12 MP photo.

Each round starts a fresh Python process that does what `declip-desktop` does — imports the
GUI and the desktop composition root, creates the QApplication and the MainWindow (offscreen
unless a DISPLAY is set), starts the engine preload as the app does at start-up — and then at
once creates a case and drops one 12 MP JPEG on it (`window.import_paths`), as an analyst
would. The worker thread loads the case's model and analyses the photo; the round ends when
the inspector holds the stored map. Printed: when each phase ended, seconds since the
process was spawned, and how long the model load, decode, forward and storing took (timed by
wrapping the functions that do them).

Models: the bundled starter, and the full-size ViT-L/14 layer20 conv-20 (seeded random
weights, installed once under --workdir and prepared as `declip models import` prepares a model:
its OpenVINO exact-mode file is made before the first round, so the rounds measure the path of an
installed model, not a first-ever conversion; each round checks that it converted nothing).
Exact mode. Rounds alternate the two; medians. The model load alone is timed twice in a warm
process: through the PyTorch back end (safetensors memory-mapped + SHA-256) and through the
back end the machine picks (OpenVINO where installed: the prepared file's check + compile).

    .venv/bin/python benchmarks/first_result.py [--rounds 3] [--models starter,vit] [--workdir DIR]
    .venv/bin/python benchmarks/first_result.py --quick   # a tiny ViT and a 2 MP photo, one round: does it work?
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, sys, time
T = {"python start": time.time()}
sys.path.insert(0, sys.argv[3])
from PySide6.QtWidgets import QApplication  # noqa: F401
from declip_desktop.desktop import engine_services
from declip_desktop.gui.app import create_application
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from benchmarks.pipeline_common import Phases
T["imports"] = time.time()
app = create_application(["first-result"])
run = sys.argv[2]
from pathlib import Path
window = MainWindow(Settings(Path(run) / "bench.ini"), device="cpu", services=engine_services())
window.resize(1280, 800)
window.show()
app.processEvents()
T["window shown"] = time.time()
window.preload_engine_later()  # what the app does at start-up
phases = Phases()
wrapped = {"v": False}
def wrap_engine():  # once torch is imported by the preload or the worker
    if wrapped["v"] or "declip_desktop.engine.localizer" not in sys.modules:
        return
    wrapped["v"] = True
    from declip_desktop.cases.case import Case
    from declip_desktop.engine import preprocess
    from declip_desktop.engine.localizer import Localizer
    from declip_desktop.analysis import prefetch
    from declip_desktop.modelstore import loading
    phases.wrap(Localizer, "__init__", "model load (hash, build, weights, exact rewrites)")
    phases.wrap(Localizer, "_forward", "forward")
    phases.wrap(prefetch, "load_evidence", "read, hash, decode, preprocess")
    phases.wrap(preprocess, "resize_map", "map resized to 12 MP")
    phases.wrap(Case, "store_result", "store (PNG, write, DB)")
state = {"done": None, "ready": None}
window.create_case(os.path.join(run, "case"), "FIRST-1", "First result", "Benchmark")
window.controller.worker.model_ready.connect(lambda _i: state.update(ready=time.time()))
window.controller.worker.progress.connect(
    lambda e: state.update(done=time.time()) if e.status == "done" else None)
T["case created"] = time.time()
window.import_paths([sys.argv[1]])
deadline = time.monotonic() + 600
while time.monotonic() < deadline:
    wrap_engine()
    app.processEvents()
    if state["done"] and window.inspector.prob_map is not None:
        break
    time.sleep(0.002)
T["result shown"] = time.time()
T["model ready"] = state["ready"]
T["result stored"] = state["done"]
ok = window.inspector.prob_map is not None
window.close()
# A converted file written during this run means the model was not prepared: not the intended path.
home = Path(os.environ["DECLIP_HOME"])
converted = [str(m) for m in home.glob("models/*.openvino/*/*/manifest.json") if m.stat().st_mtime > T["python start"]]
print(json.dumps({"T": T, "phases": dict(phases.seconds), "ok": ok, "preload_wrapped": wrapped["v"],
                  "converted": converted}))
"""

LOAD_CHILD = r"""
import json, sys, time
import torch
from declip_desktop.modelstore.loading import load_localizer, resolve_model
from declip_desktop.modelstore import loading
from declip_desktop.engine import accelerate
sys.path.insert(0, sys.argv[1])
from benchmarks.pipeline_common import Phases
import open_clip  # noqa: F401  (imported at start-up by the app's preload, not part of a load)
phases = Phases()
from declip_desktop.modelstore import weights_digest
phases.wrap(loading, "load_network", "load_network (hash-checked network)")
phases.wrap(weights_digest, "sha256_mapped", "  SHA-256 of the weights file (its own thread, overlapped)")
phases.wrap(loading, "_build_loaded", "  network built on the meta device, weights assigned (mmap)")
phases.wrap(accelerate, "optimize_exact", "  exact rewrites (fused attention, folded BatchNorm)")
from declip_desktop.engine.backends import openvino_cpu
phases.wrap(openvino_cpu, "check_cached", "check of the prepared OpenVINO file (SHA-256 of model.xml, .bin)")
phases.wrap(openvino_cpu, "compile_network", "OpenVINO compile for the CPU")
phases.wrap(openvino_cpu, "_convert", "conversion to OpenVINO (the model was not prepared!)")
t = time.perf_counter()
loc = load_localizer(resolve_model(None), device="cpu", threads=max(1, torch.get_num_threads()))
total = time.perf_counter() - t
print(json.dumps({"total": total, "phases": dict(phases.seconds), "backend": loc.parameters["backend"]}))
"""

ORDER = ["python start", "imports", "window shown", "case created", "model ready", "result stored", "result shown"]


def prepare_home(kind: str, work: Path, quick: bool = False) -> Path:
    home = work / f"home-{kind}{'-quick' if quick else ''}"
    os.environ["DECLIP_HOME"] = str(home)
    from declip_desktop.modelstore.store import ModelStore

    if kind == "vit":
        if quick:
            tiny_vit_model(home)
        else:
            from benchmarks.pipeline_common import seeded_vit_model

            seeded_vit_model(home)
        ModelStore().set_default("bench-vit")
        prepare_model("bench-vit")
    else:
        home.mkdir(parents=True, exist_ok=True)
        ModelStore().set_default("starter")
    return home


def tiny_vit_model(home: Path):
    """--quick: a tiny ViT DeCLIP network (the test suite's) installed as "bench-vit"."""
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    from declip_desktop.modelstore.store import ModelStore
    from tests.factories import make_tiny_vit_checkpoint

    store = ModelStore(home / "models", bundled=None)
    if "bench-vit" not in store:
        src = make_tiny_vit_checkpoint(home / "src" / "ViT_layer1_conv-12_ldm.pth", layer="layer1", decoder="conv-12")
        import_checkpoint(src, name="bench-vit", store=store)


def prepare_model(name: str) -> None:
    """What `declip models import` does after installing: the exact mode's converted file."""
    from declip_desktop.modelstore.preparation import prepare_installed

    report = prepare_installed(name, ["exact"])
    print(f"  {name} prepared before the rounds: " + report.message.replace("\n", "; "), flush=True)
    if not report.ok:
        raise SystemExit(f"{name} could not be prepared; the rounds would measure a conversion")


def one_round(kind: str, home: Path, photo: Path, work: Path) -> dict:
    run = Path(tempfile.mkdtemp(prefix=f"first-{kind}-", dir=work))
    env = {**os.environ, "DECLIP_HOME": str(home), "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "PYTHONPATH": str(ROOT)}
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, str(photo), str(run), str(ROOT)], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if not data["ok"]:
        raise SystemExit(f"{kind}: no result was shown")
    if data["converted"]:
        raise SystemExit(f"{kind}: the round converted the model ({data['converted']}); it was not prepared")
    data["at"] = {k: (v - t0 if v else float("nan")) for k, v in data["T"].items()}
    return data


def load_round(home: Path, backend: str) -> dict:
    """Loading the installed model alone, in a process where torch is already imported (the app
    imports it at start-up): hash, construction, weights, exact rewrites — or, through OpenVINO,
    the prepared file's check and its compilation."""
    env = {**os.environ, "DECLIP_HOME": str(home), "PYTHONPATH": str(ROOT), "DECLIP_CPU_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(ROOT)], env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="starter,vit")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--quick", action="store_true",
                    help="check that it works: one round, a tiny ViT instead of ViT-L/14, a 2 MP photo")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 1
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from benchmarks.pipeline_common import machine, make_photos, scratch_dir

    work = args.workdir or scratch_dir("declip-first-")  # removed at exit unless given
    work.mkdir(parents=True, exist_ok=True)
    print(machine())
    photo = make_photos(work / "photo-quick", 1, size=(1600, 1200))[0] if args.quick else make_photos(work / "photo", 1)[0]
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    homes = {k: prepare_home(k, work, args.quick) for k in kinds}
    backends = dict.fromkeys(["torch", os.environ.get("DECLIP_CPU_BACKEND") or "auto"])
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for i in range(args.rounds):
        for kind in (kinds if i % 2 == 0 else kinds[::-1]):
            r = one_round(kind, homes[kind], photo, work)
            r["load"] = {b: load_round(homes[kind], b) for b in backends}
            results[kind].append(r)
            print(f"  round {i + 1} {kind}: result shown {r['at']['result shown']:.1f} s after launch", flush=True)
    for kind, rs in results.items():
        print(f"{kind}: launch → first result (12 MP JPEG), median of {len(rs)} round(s); seconds since launch:")
        for name in ORDER:
            print(f"    {name:<16} {statistics.median(r['at'][name] for r in rs):6.1f}")
        for b in backends:
            loads = [r["load"][b] for r in rs]
            print(f"  model load alone (warm process), back end {b} → {loads[0]['backend']}: "
                  f"{statistics.median(x['total'] for x in loads):.2f} s")
            for name in dict.fromkeys(n for x in loads for n in x["phases"]):
                print(f"    {name:<66} {statistics.median(x['phases'].get(name, 0.0) for x in loads):6.2f} s")
        names = list(dict.fromkeys(n for r in rs for n in r["phases"]))
        print("  durations (in the app):")
        for name in names:
            print(f"    {name:<52} {statistics.median(r['phases'].get(name, 0.0) for r in rs):6.2f} s")
    print(machine().rsplit(",", 1)[-1].strip().replace("1-min load average", "load average at the end"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
