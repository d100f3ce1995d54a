"""A DeclipNet run by OpenVINO's CPU plugin: exact mode's backbone in fp32 with the decoder in
PyTorch (Winograd convolutions, `backends.hybrid`), fast mode in bf16 on CPUs with AMX (or, with
VNNI but without AMX, the backbone in fp32 and the decoder in int8: `backends.hybrid`).

Why (docs/PERFORMANCE.md, `benchmarks/engine.py`): on the same weights and images, OpenVINO's
fp32 graph (fused attention and layer norms, convolutions with its own blocked layouts) ran
ViT-L/14 layer20 conv-20 faster than PyTorch's eager fp32, with the same results to float
rounding; and on CPUs with bf16 matrix instructions (Intel AMX, AVX512-BF16) its bf16 mode ran
several times faster than any int8 recipe measured, whose per-call quantization bookkeeping
cost more than the int8 products. bf16 keeps 8 significant bits per value with its own
exponent (fp32 accumulation), so no value is clipped and nothing is calibrated; the weights
get about 16 bits as two bf16 parts (`backends.two_part`), which is what brought plain bf16's
error (max |Δ| 0.063 on a held-out photo) inside the limits.

The converted model (OpenVINO IR: `model.xml` + `model.bin`, any batch size) is made once per
model, OpenVINO version and recipe (`IR_RECIPES`: one for exact, one for fast mode) by `prepare`,
which a model's import or download runs (`engine.backends.prepare`; a model installed before
that is converted at its first use instead), and kept next to the model's card in
`<name>.openvino/<recipe>/<key>/` (read-only bundled
models: under `$DECLIP_HOME/cache/openvino/`). `manifest.json` beside it records what it was
made from and the SHA-256 of both files; every load checks the key and both digests and
rebuilds on any difference (a cache file is never trusted blindly).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: What each cached file is, by the precision it is compiled for (part of its cache key: change
#: the name when the recipe changes): the `optimize_exact`-ed DeclipNet traced to OpenVINO with a
#: dynamic batch dimension, weights fp32; for bf16, first rewritten with two-part weights
#: (`backends.two_part`; twice the weights' size on disk).
#: "f32" and "int8dec" (`backends.hybrid`): only the backbone is converted, fp32 (one file for both;
#: until exact mode's decoder moved to Winograd convolutions in PyTorch, "f32" converted the whole
#: network: "openvino-ir-v1").
BACKBONE_IR = "openvino-ir-backbone-f32-v1"
IR_RECIPES = {"f32": BACKBONE_IR, "bf16": "openvino-ir-bf16x2-v1", "int8dec": BACKBONE_IR}
#: Names fast mode's recipe through this back end; recorded with every fast-mode result.
FAST_RECIPE = "fast-cpu-openvino-bf16x2-v5"
#: The fast-mode recipe of each fast precision ("bf16": AMX / AVX512-BF16 CPUs; "int8dec": the rest).
FAST_RECIPES = {"bf16": FAST_RECIPE, "int8dec": "fast-cpu-openvino-f32vit-int8dec-v6"}
#: The precision OpenVINO compiles each recipe's file for.
_COMPILED_AS = {"f32": "f32", "bf16": "bf16", "int8dec": "f32"}
MANIFEST = "manifest.json"
FILES = ("model.xml", "model.bin")
#: How to install the optional back end (the `fast` extra of pyproject.toml).
INSTALL_HINT = "pip install 'declip-desktop[fast]' (or: pip install openvino)"


class CacheError(Exception):
    """A cached converted model that does not match what it claims to be (reason in the message)."""


def version() -> str | None:
    """OpenVINO's version string, or None when it is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    return str(openvino.__version__)


def short_version() -> str | None:
    """"2026.4.1" of "2026.4.1-22982-…" (what results record; the cache key uses the whole)."""
    full = version()
    return None if full is None else full.split("-", 1)[0]


def has_bf16() -> bool:
    """True when OpenVINO can run bf16 on this CPU in hardware (AMX or AVX512-BF16)."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def has_amx() -> bool:
    """True when the CPU has AMX tiles, the matrix unit that makes the bf16 recipe fast. OpenVINO
    reports BF16 for AVX512-BF16 alone too, and there the two-part bf16 recipe measured 3.3×
    slower than "int8dec" (an Intel Xeon without AMX, docs/PERFORMANCE.md), so `selection` asks."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # torch's own CPUID check (2.3+)
    if probe is not None:
        return bool(probe())
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "amx_tile" in flags.split()


def has_vnni() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI or AVX-VNNI), which make
    the int8 decoder of "int8dec" pay; without them (AVX2 only) int8 products measured no faster
    than fp32 (docs/PERFORMANCE.md), so `selection` asks."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


_CORE = None
_CORE_LOCK = threading.Lock()


def _core():
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


# --------------------------------------------------------------------------- the cache


def cache_key(weights_sha256: str, input_size: int, ir_recipe: str) -> str:
    """16 hex digits naming one converted file: weights, recipe, OpenVINO version, input size."""
    text = f"{weights_sha256}\n{ir_recipe}\n{version()}\n{int(input_size)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root(source: Any) -> Path | None:
    """Where an installed model's converted files live (next to its card if writable); `source`
    is the store's model source (its `installed`) or the installed model itself. None when it
    has no card file (nothing is cached then)."""
    installed = getattr(source, "installed", source)
    card_path = getattr(installed, "card_path", None)
    if card_path is None:
        return None
    name = installed.card.name
    if getattr(installed, "read_only", False):
        from declip_desktop.common.paths import declip_home

        return declip_home() / "cache" / "openvino" / name
    return Path(card_path).with_name(f"{name}.openvino")


def _sha256_file(path: Path) -> str:
    from declip_desktop.common.hashing import sha256_file

    return sha256_file(path)


def _expected(weights_sha256: str, input_size: int, ir_recipe: str) -> dict:
    return {"key": cache_key(weights_sha256, input_size, ir_recipe), "weights_sha256": weights_sha256,
            "ir_recipe": ir_recipe, "openvino": version(), "input_size": int(input_size)}


def cache_dir(root: Path, weights_sha256: str, input_size: int, ir_recipe: str) -> Path:
    return root / ir_recipe / cache_key(weights_sha256, input_size, ir_recipe)


def check_cached(directory: Path, weights_sha256: str, input_size: int, ir_recipe: str,
                 hash_files: bool = True) -> Path:
    """The checked `model.xml` in `directory`; CacheError (with the reason) when anything differs.
    `hash_files` False checks the manifest and that both files exist, not their digests (for
    listings, which must not read gigabytes; every load hashes them)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CacheError(f"{directory}: no {MANIFEST}") from exc
    except (OSError, ValueError) as exc:
        raise CacheError(f"{directory / MANIFEST}: unreadable ({exc})") from exc
    if not isinstance(manifest, dict):
        raise CacheError(f"{directory / MANIFEST}: not a JSON object")
    for field, value in _expected(weights_sha256, input_size, ir_recipe).items():
        if manifest.get(field) != value:
            raise CacheError(f"{directory / MANIFEST}: {field} is {manifest.get(field)!r}, expected {value!r}")
    files = manifest.get("files")
    for name in FILES:
        digest = files.get(name) if isinstance(files, dict) else None
        path = directory / name
        if not path.is_file():
            raise CacheError(f"{path}: missing")
        if not hash_files:
            continue
        actual = _sha256_file(path)
        if actual != digest:
            raise CacheError(f"{path}: SHA-256 {actual} differs from the manifest's {digest}")
    return directory / FILES[0]


def _convert(net: nn.Module, input_size: int):
    import openvino as ov

    example = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        return ov.convert_model(net, example_input=example, input=[ov.PartialShape([-1, 3, input_size, input_size])])


def write_cached(model, root: Path, weights_sha256: str, input_size: int, ir_recipe: str) -> Path:
    """Write a converted `model` with its manifest to `root/<ir_recipe>/<key>/`, atomically: the
    files go to a `.building-*` folder renamed at the end, so a process killed midway (or a full
    disk, which raises OSError) never leaves a half-written folder at the final name; older keys
    of the recipe are removed."""
    import openvino as ov

    expected = _expected(weights_sha256, input_size, ir_recipe)
    final = cache_dir(root, weights_sha256, input_size, ir_recipe)
    root = final.parent
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(root)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        _save(ov, model, tmp / FILES[0])
        manifest = {**expected, "files": {name: _sha256_file(tmp / name) for name in FILES}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        tmp = None
        for other in root.iterdir():  # files of an older OpenVINO or recipe: never read again
            if other.name != final.name and other.is_dir() and not other.name.startswith(".building-"):
                shutil.rmtree(other, ignore_errors=True)
        return final
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _save(ov, model, xml: Path) -> None:
    """`ov.save_model`, with a failed write as the OSError it is: OpenVINO reports a full disk
    as RuntimeError("basic_ios::clear: iostream error"), which says nothing about the disk."""
    try:
        ov.save_model(model, str(xml), compress_to_fp16=False)
    except RuntimeError as exc:
        free = shutil.disk_usage(xml.parent).free
        if free < 64 * 2**20:  # measured while the partial files still take their space
            raise OSError(errno.ENOSPC, f"No space left on device ({free // 2**20} MiB free; OpenVINO: {exc})") from exc
        raise OSError(errno.EIO, f"OpenVINO could not write {xml} ({exc}; {free // 2**20} MiB free)") from exc


def _remove_abandoned(root: Path, age_s: float = 3600.0) -> None:
    """Remove `.building-*` folders of conversions killed midway (older than `age_s`, so that a
    conversion running in another process right now keeps its folder)."""
    import time

    for other in root.glob(".building-*"):
        try:
            if time.time() - other.stat().st_mtime > age_s:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            continue


# --------------------------------------------------------------------------- the runtime


class OpenVINONet(nn.Module):
    """Callable like the torch network it replaces: B×3×S×S float32 in, B×1×h×w logits out."""

    def __init__(self, compiled, precision: str):
        super().__init__()
        self.compiled = compiled
        self.precision = precision  # "f32" | "bf16"
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: one call at a time

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        with self._lock:
            self._request.infer({0: data})
            out = self._request.get_output_tensor(0).data.copy()
        return torch.from_numpy(out)


def compile_network(model, precision: str, threads: int) -> OpenVINONet:
    """`model` (ov.Model or path to its .xml) compiled for the CPU at `precision` ("f32" | "bf16")."""
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": int(threads),
              "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if precision == "f32":
        # Exact mode: no precision traded for speed anywhere (e.g. OpenVINO's dynamic int8
        # quantization of fully connected layers, which the PERFORMANCE mode may enable).
        config.update({"EXECUTION_MODE_HINT": "ACCURACY", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0})
    core = _core()
    if not hasattr(model, "get_parameters"):
        model = core.read_model(str(model))
    return OpenVINONet(core.compile_model(model, "CPU", config), precision)


def open_network(*, load_torch_net: Callable[[], nn.Module], weights_sha256: str, input_size: int,
                 precision: str, threads: int, installed: Any = None,
                 on_status: Callable[[str], None] | None = None) -> nn.Module:
    """The model compiled by OpenVINO (for "bf16" an `OpenVINONet`, else a `hybrid.HybridNet`),
    from its checked cache when there is one. `precision` is a key of IR_RECIPES; the returned
    network's `precision` says what runs ("f32" when "int8dec" cannot serve this model).

    `load_torch_net` gives the `optimize_exact`-ed torch network; for "bf16" it is called only
    when the file must be (re)made, so a model whose cache is good is never loaded into torch at
    all ("f32" and "int8dec" always need the torch decoder; the backbone's memory-mapped weights
    are released unread when its converted file is good).
    `installed` None (a network handed to the Localizer): converted in memory, nothing cached.
    """
    say = on_status or (lambda message: None)
    common = dict(weights_sha256=weights_sha256, input_size=input_size, installed=installed, say=say)
    if precision == "bf16":
        xml_or_model = _checked_or_converted(load_torch_net, precision=precision, **common)
        return compile_network(xml_or_model, _COMPILED_AS[precision], threads)
    from concurrent.futures import ThreadPoolExecutor

    from declip_desktop.engine.backends import hybrid

    # The backbone's file is checked and compiled on a second thread while this one loads the
    # torch network (hash of the weights) and builds the decoder (Winograd weights): hashing and
    # OpenVINO's compilation release the GIL, so the two overlap on two cores (ViT-L/14: about
    # 2.3 s of the 4.9 s a sequential load took on the AMD EPYC; docs/PERFORMANCE.md). A file
    # that is missing or fails its check is left to the sequential path below, which says why
    # and converts it from the backbone.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openvino-compile") as pool:
        compiled = pool.submit(_compile_if_cached, weights_sha256, input_size, precision, installed, threads)
        net = load_torch_net()
        if precision == "int8dec":
            try:
                decoder = hybrid.int8_decoder(net)
            except ValueError as exc:
                say(f"Fast mode runs exact mode for this model ({exc}).")
                precision = "f32"
        if precision == "f32":
            decoder = hybrid.exact_decoder(net)
        backbone = net.backbone
        del net
        backbone_net = compiled.result()
    if backbone_net is None:
        xml_or_model = _checked_or_converted(lambda: backbone, precision=precision, **common)
        backbone_net = compile_network(xml_or_model, "f32", threads)
    del backbone  # the ViT's torch weights are not used again (memory-mapped: released with it)
    return hybrid.HybridNet(backbone_net, decoder, precision)


def _compile_if_cached(weights_sha256: str, input_size: int, precision: str, installed: Any,
                       threads: int) -> OpenVINONet | None:
    """The backbone compiled from its cached file when that file exists and passes its check,
    else None (nothing is said or written here: the caller's sequential path does that)."""
    root = cache_root(installed) if installed is not None else None
    if root is None:
        return None
    ir_recipe = IR_RECIPES[precision]
    try:
        xml = check_cached(cache_dir(root, weights_sha256, input_size, ir_recipe), weights_sha256, input_size,
                           ir_recipe)
    except CacheError:
        return None
    return compile_network(xml, "f32", threads)


class PrepareStopped(Exception):
    """`should_stop()` turned true before a conversion was written; nothing was kept."""


def prepare(installed: Any, *, load_torch_net: Callable[[], nn.Module], precision: str,
            on_status: Callable[[str], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Path | None:
    """Make (or check) the converted file of an installed model for `precision` now (when it is
    imported or downloaded, `engine.backends.prepare`), so that no analysis ever waits for a
    conversion; its card gives the weights' SHA-256 and input size. Returns the cache folder, or
    None when it could not be written (the first analysis then converts it again);
    PrepareStopped when `should_stop()` said stop (asked before converting and before writing;
    the conversion itself is one OpenVINO call and runs to its end)."""
    card = installed.card
    say = on_status or (lambda message: None)
    # "f32" and "int8dec" convert only the backbone (their decoder runs in torch).
    load = (lambda: load_torch_net().backbone) if IR_RECIPES[precision] == BACKBONE_IR else load_torch_net
    result = _checked_or_converted(load, weights_sha256=card.sha256,
                                   input_size=int(getattr(card, "input_size", None) or 224), precision=precision,
                                   installed=installed, say=say, should_stop=should_stop)
    return result.parent if isinstance(result, Path) else None


def _checked_or_converted(load_module: Callable[[], nn.Module], *, weights_sha256: str, input_size: int,
                          precision: str, installed: Any, say: Callable[[str], None],
                          should_stop: Callable[[], bool] | None = None):
    """The checked cached `model.xml` for `precision`, or the module of `load_module` converted
    (and cached when `installed` has a place for it): a Path or an ov.Model."""
    ir_recipe = IR_RECIPES[precision]
    root = cache_root(installed) if installed is not None else None  # None: convert in memory
    if root is not None:
        directory = cache_dir(root, weights_sha256, input_size, ir_recipe)
        if directory.exists():
            try:
                return check_cached(directory, weights_sha256, input_size, ir_recipe)
            except CacheError as exc:
                say(f"The converted OpenVINO model failed its check and is made again: {exc}")
    stop = should_stop or (lambda: False)
    if stop():
        raise PrepareStopped("stopped before converting")
    mode = "exact mode" if precision == "f32" else "fast mode"
    say(f"Converting the model for OpenVINO's {mode} (once per model and OpenVINO version; "
        "one to four minutes for ViT-L/14)…")
    net = load_module()
    if precision == "bf16":
        from declip_desktop.engine.backends import two_part

        two_part.rewrite(net)
    model = _convert(net, input_size)
    del net
    if root is None:
        return model
    if stop():
        raise PrepareStopped("stopped after converting, before writing")
    try:
        written = write_cached(model, root, weights_sha256, input_size, ir_recipe)
    except OSError as exc:
        say(f"The converted OpenVINO model could not be saved under {root} "
            f"({exc.strerror or exc}; disk full or read-only?); it will be converted again next time.")
        return model
    del model
    return written / FILES[0]  # run what was cached (memory-mapped), not the copy sharing torch's tensors
