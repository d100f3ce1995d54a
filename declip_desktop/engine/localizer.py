"""`Localizer`: images in, per-image probability maps, scores and timings out.

    loc = load_localizer("vit-ldm", device="auto", fast=False, batch_size=4)  # modelstore.loading
    loc = Localizer(net, card=card, device="auto")  # a network built here, described by its card
    for pred in loc.predict(["a.jpg", "b.png"]):
        pred.prob_map  # float32 H×W in [0, 1] at the image's original resolution

How one image goes through (see `engine.preprocess` for the exact pixel rules):
1. decode with `common.images.load_rgb_image` (EXIF orientation, any mode → 8-bit RGB,
   pixel limit) on a background thread, which also resizes and normalizes, so decoding the
   next images overlaps the network's work on the current batch;
2. batches of `batch_size` go through the network; `seconds` of each image is its batch's
   forward time (transfer to the device and synchronization included) divided by the batch
   size; loading the model and decoding files are not counted;
3. sigmoid → the model's native map (256×256 for DeCLIP) → the image-level score (mean of
   the top 1%, see `preprocess.image_score`) → the map resized bilinear to the original H×W.

A bad image gives a `Prediction` with `error` set; the others go on. Running out of GPU/MPS
memory raises `OutOfDeviceMemory` so the caller can retry on the CPU.

Exact mode runs the same fp32 math as the authors' code (fused attention, folded BatchNorm;
see `engine.accelerate`), on GPUs with TF32 off. Fast mode on the CPU uses int8 with
per-token/per-image activation scales (`accelerate.optimize_fast_cpu`, no calibration); on a
GPU it uses fp16 autocast (or `precision="bf16"`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from declip_desktop.common.errors import DeviceUnavailable, OutOfDeviceMemory  # noqa: F401 - re-exported: raised here
from declip_desktop.common.facts import card_is_demo, demo_label
from declip_desktop.common.images import ImageError, load_rgb_image
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine.devices import DEVICES, is_oom as _is_oom, pick_device  # noqa: F401 - re-exported
from declip_desktop.engine.network_card import card_for_network
from declip_desktop.engine.prediction import Prediction  # re-exported: the Localizer's result type
from declip_desktop.engine.score_calibration import (  # numpy only
    DEFAULT_TOP_FRACTION, calibrated_score, card_value, score_top_fraction,
)

if TYPE_CHECKING:  # torch is imported when a Localizer is made, not with this module
    from declip_desktop.engine.preprocess import PreparedImage

PRECISIONS = ("fp32", "fp16", "bf16")


def _card_field(card: Any, name: str, default: Any) -> Any:
    value = getattr(card, name, None)
    return default if value is None else value


def invalid_output_message(count: int) -> str:
    """The per-image error for a map holding NaN/Inf (one wording for the CLI, the GUI and cases)."""
    return (f"the model produced invalid output: {count} non-finite values (NaN or infinity) in its map; "
            "the model's weights are probably damaged: run `declip models verify` or reinstall it")


def _describe_source(source: Any, index: int) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__} #{index}>"


class Localizer:
    """Runs one installed model over images; see the module docstring.

    `model`: a model source — an object with `.card` and `.load_network(device)` returning
    the network hash-checked against the card (the store's `modelstore.loading.StoredModel`;
    `load_localizer(name)` builds one from a name or file) — or a ready `torch.nn.Module`
    together with `card` (a `ModelCard` or its dict) describing it. A ready
    network takes B×3×S×S inputs (S = the card's `input_size`, normalized with its `mean`/`std`)
    and returns B×1×h×w logits; the Localizer owns it from then on (it is optimized in place)
    and its `model_sha256` is the SHA-256 of its state dict written as safetensors, not the
    card's claim.
    `threads`: CPU threads for torch (process-wide setting); None leaves torch's default.
    `precision`: None (fp32, or fp16 for fast mode on a GPU), "fp32", "fp16" or "bf16"
    (autocast; GPU only: on this project's CPUs bf16 is far slower than fp32).
    `on_status`: called (on the constructing thread) with a one-line message the user should
    see about how the model will run (e.g. fast mode unavailable on this PyTorch build).
    `backend`: the CPU back end, "auto" (default; $DECLIP_CPU_BACKEND), "torch" or "openvino"
    (`engine.backends.selection`); `parameters["backend"]` records which one ran.
    """

    def __init__(
        self,
        model: Any,
        device: str = "auto",
        fast: bool = False,
        batch_size: int = 4,
        threads: int | None = None,
        precision: str | None = None,
        on_status: Callable[[str], None] | None = None,
        card: Any = None,
        tiling: Any = None,
        backend: str | None = None,
    ):
        import torch

        if int(batch_size) < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"thread count must be at least 1, got {threads}")
            torch.set_num_threads(int(threads))
        self._on_status = on_status
        #: `common.tiling_plan.TilingOptions`: also compute a tiled map per image (`engine.tiling`);
        #: `on_tile(done, total)` and `should_stop()` may be set by the caller before predicting.
        self.tiling = tiling
        self.on_tile: Callable[[int, int], None] | None = None
        self.should_stop: Callable[[], bool] | None = None
        self.batch_size = int(batch_size)
        self.threads = torch.get_num_threads()
        self.fast = bool(fast)
        self.device = pick_device(device)
        on_gpu = self.device != "cpu"
        if precision is None:
            precision = "fp16" if (self.fast and on_gpu) else "fp32"
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        if precision != "fp32" and not on_gpu:
            raise ValueError(f"{precision} runs only on a GPU; on the CPU use fast=True (int8) or fp32")
        self.precision = precision

        if isinstance(model, torch.nn.Module):
            self.installed = None
            self.card = card_for_network(model, card)
        elif card is not None:
            raise ValueError("`card` describes a ready network; pass the network itself as `model`")
        elif callable(getattr(model, "load_network", None)):
            self.installed = model
            self.card = model.card
        else:
            raise TypeError(f"model must be a model source or a torch.nn.Module, not {type(model).__name__}; "
                            "for a model by name or file use declip_desktop.load_localizer(NAME)")
        self.input_size = int(_card_field(self.card, "input_size", 224))
        # A fully convolutional card may ask for native resolution (long side ≤ max_side, aspect kept):
        # shrinking to the input_size square removes the traces it reads.
        self.max_side = int(card_value(self.card, "max_side") or 0) or None
        # The image score's share of the map (the card's, chosen with its calibration; default 1 %).
        self.score_top_fraction = score_top_fraction(self.card)
        self.mean = tuple(float(v) for v in _card_field(self.card, "mean", (0.48145466, 0.4578275, 0.40821073)))
        self.std = tuple(float(v) for v in _card_field(self.card, "std", (0.26862954, 0.26130258, 0.27577711)))

        from declip_desktop.engine import accelerate, winograd

        def exact_net():
            net = model if self.installed is None else self.installed.load_network(device="cpu")
            return accelerate.optimize_exact(net.eval().requires_grad_(False))

        self._fast_recipe = accelerate.FAST_RECIPE
        self.backend = f"torch {torch.__version__}"
        self.net = None if on_gpu else self._open_cpu_backend(model, backend, exact_net)
        if self.net is None:
            net = exact_net()
            self.fast_cpu = self.fast and not on_gpu and hasattr(net, "backbone") and hasattr(net, "decoder")
            if self.fast_cpu:
                self._make_fast(net)
            if not on_gpu and not self.fast_cpu:
                winograd.winograd_decoder(net)  # CPU only: on a GPU cuDNN picks its own algorithm
            self.net = net.to(self.device)
        # Recorded with every result: Winograd's fp32 rounding differs from direct convolution's.
        self._winograd_label = winograd.LABEL if winograd.uses_winograd(self.net) else None

    # ------------------------------------------------------------------ properties

    @property
    def model_sha256(self) -> str:
        return self.card.sha256

    @property
    def model_name(self) -> str:
        return self.card.name

    @property
    def is_demo(self) -> bool:
        return card_is_demo(self.card)

    @property
    def label(self) -> str:
        return demo_label(self.card) or str(getattr(self.card, "label", "") or "")

    @property
    def card_snapshot(self) -> dict:
        """The model card as stored with each result (`common.model_card.card_snapshot`)."""
        from declip_desktop.common.model_card import card_snapshot

        return card_snapshot(self.card)

    @property
    def parameters(self) -> dict:
        """What a stored result should record about how it was computed."""
        return {
            "fast": self.fast,
            **({"fast_recipe": self._fast_recipe} if self.fast_cpu else {}),
            "backend": self.backend,
            **({"decoder_convolutions": self._winograd_label} if self._winograd_label else {}),
            "batch_size": self.batch_size,
            "device": self.device,
            "precision": self.precision,
            "threads": self.threads,
            "input_size": self.input_size,
            **({"max_side": self.max_side} if self.max_side else {}),
            **({"score_top_fraction": self.score_top_fraction}
               if self.score_top_fraction != DEFAULT_TOP_FRACTION else {}),
            "software_version": SOFTWARE_VERSION,
            "mode": "squash",
        }

    # ------------------------------------------------------------------ public API

    def predict(self, images: Iterable[Any]) -> list[Prediction]:
        """Predictions for `images` (paths, PIL images, arrays), in order; see the module docstring."""
        return list(self.predict_iter(images))

    def predict_one(self, image: Any) -> Prediction:
        """One image; raises ImageError (or the underlying error) instead of returning an error."""
        pred = self.predict([image])[0]
        if pred.error is not None:
            raise ImageError(pred.source, pred.error)
        return pred

    def predict_iter(self, images: Iterable[Any]) -> Iterator[Prediction]:
        """Like `predict`, yielding each result as soon as its batch is done."""
        items = list(images)
        if not items:
            return
        work: queue.Queue = queue.Queue(maxsize=max(2, 2 * self.batch_size))
        stop = threading.Event()
        producer = threading.Thread(target=self._decode_all, args=(items, work, stop), name="declip-decode",
                                    daemon=True)
        producer.start()
        try:
            pending: list[tuple] = []
            done = 0
            while done < len(items):
                item = work.get()
                if isinstance(item, BaseException):  # the decode thread itself broke
                    raise item
                pending.append(item)
                done += 1
                if len([p for p in pending if p[2] is not None]) >= self.batch_size or done == len(items):
                    yield from self._run_batch(pending)
                    pending = []
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    work.get_nowait()
                except queue.Empty:
                    producer.join(timeout=0.05)

    def prepare(self, source: Any, name: str | None = None) -> PreparedImage:
        """Decode `source` (path, bytes, PIL, array) for the network, on any thread: with
        `predict_prepared`, the next batch is decoded while one runs (`analysis.prefetch`)."""
        from declip_desktop.engine.preprocess import PreparedImage

        name = name or _describe_source(source, 0)
        try:
            return PreparedImage(name, *self._prepare(source))
        except ImageError as exc:
            return PreparedImage(name, None, error=exc.reason)
        except (OSError, ValueError, MemoryError) as exc:
            return PreparedImage(name, None, error=f"cannot be prepared for the model: {type(exc).__name__}: {exc}")

    def predict_prepared(self, prepared: Iterable[PreparedImage]) -> list[Prediction]:
        """Predictions for images `prepare` made, in order, as one batch."""
        pending = [(i, p.name, p.tensor, p.width, p.height, p.error, p.image) for i, p in enumerate(prepared)]
        return list(self._run_batch(pending)) if pending else []

    # ------------------------------------------------------------------ internals

    def _prepare(self, source: Any):
        from declip_desktop.engine.preprocess import native_size, to_input_tensor

        image = load_rgb_image(source)
        size = native_size(image.width, image.height, self.max_side) if self.max_side else self.input_size
        tensor = to_input_tensor(image, size, self.mean, self.std)
        return tensor, image.width, image.height, (image if self.tiling is not None else None)

    def _decode_all(self, items: list, work: queue.Queue, stop: threading.Event) -> None:
        try:
            for index, source in enumerate(items):
                if stop.is_set():
                    return
                p = self.prepare(source, _describe_source(source, index))
                entry = (index, p.name, p.tensor, p.width, p.height, p.error, p.image)
                while not stop.is_set():
                    try:
                        work.put(entry, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            work.put(exc)

    def _error(self, name: str, message: str) -> Prediction:
        return Prediction(source=name, prob_map=None, score=None, model_name=self.model_name,
                          model_sha256=self.model_sha256, seconds=0.0, device=self.device, error=message,
                          demo=self.is_demo, label=self.label if self.is_demo else "")

    def _forward(self, batch):
        """Logits for a CPU batch tensor; returns (probabilities on the CPU, per-image count of
        non-finite logits, seconds)."""
        import contextlib

        import torch

        from declip_desktop.engine.preprocess import probabilities

        dev = self.device
        with torch.inference_mode():
            t0 = time.perf_counter()
            x = batch.to(dev)
            if dev.startswith("cuda"):
                ctx = (torch.autocast("cuda", dtype=torch.float16 if self.precision == "fp16" else torch.bfloat16)
                       if self.precision != "fp32" else torch.backends.cudnn.flags(enabled=True, allow_tf32=False))
            elif dev == "mps" and self.precision != "fp32":
                ctx = torch.autocast("mps", dtype=torch.float16 if self.precision == "fp16" else torch.bfloat16)
            else:
                ctx = contextlib.nullcontext()
            with ctx:
                logits = self.net(x)
            # Counted on the logits, not the probabilities: sigmoid turns ±Inf into a clean 0 or 1,
            # which would hide a broken network (overflowing weights, fp16 overflow) as a confident map.
            bad = (~torch.isfinite(logits.float())).reshape(logits.shape[0], -1).sum(dim=1).cpu()
            prob = probabilities(logits)
            prob = prob.cpu()  # synchronizes the device
            seconds = time.perf_counter() - t0
        return prob, bad.tolist(), seconds

    def _run_batch(self, pending: list[tuple]) -> Iterator[Prediction]:
        good = [p for p in pending if p[2] is not None]
        results: dict[int, Prediction] = {}
        # Native-resolution inputs differ in size: one forward pass per size (one, for square inputs).
        for shape in sorted({tuple(p[2].shape) for p in good}):
            results.update(self._predict_group([p for p in good if tuple(p[2].shape) == shape]))
        if self.tiling is not None:
            self._add_tiled(results, good)
        for index, name, tensor, _, _, error, _ in pending:
            yield results[index] if tensor is not None else self._error(name, error)

    def _predict_group(self, good: list[tuple]) -> dict[int, Prediction]:
        """{index: Prediction} for same-size prepared items, in one forward pass."""
        import torch

        from declip_desktop.engine.preprocess import image_score, resize_map

        results: dict[int, Prediction] = {}
        if good:
            batch = torch.stack([p[2] for p in good])
            try:
                prob, non_finite, seconds = self._forward(batch)
            except Exception as exc:
                if _is_oom(exc):
                    if self.device.startswith("cuda"):
                        torch.cuda.empty_cache()
                    raise OutOfDeviceMemory(self.device, str(exc).splitlines()[0]) from exc
                raise
            share = seconds / len(good)
            for (index, name, _, width, height, _, _), p, bad in zip(good, prob, non_finite):
                if bad:
                    results[index] = self._error(name, invalid_output_message(bad))
                    continue
                results[index] = Prediction(
                    source=name, prob_map=resize_map(p, height, width),
                    score=calibrated_score(image_score(p, self.score_top_fraction), self.card),
                    model_name=self.model_name, model_sha256=self.model_sha256, seconds=share,
                    device=self.device, width=width, height=height, demo=self.is_demo,
                    label=self.label if self.is_demo else "",
                )
        return results

    def _add_tiled(self, results: dict[int, Prediction], good: list[tuple]) -> None:
        """The tiling hook (`engine.tiling`): a tiled map for each image whose squash succeeded.
        `AnalysisStopped` (the caller's `should_stop`) propagates; nothing of the batch is kept."""
        from declip_desktop.engine.tiling import NonFiniteTiles, tiled_map

        for index, name, _, _, _, _, image in good:
            pred = results[index]
            if pred.error is not None:
                continue
            try:
                pred.tiled = tiled_map(image, self._forward_checked, input_size=self.input_size, mean=self.mean,
                                       std=self.std, options=self.tiling, batch_size=self.batch_size,
                                       on_tile=self.on_tile, should_stop=self.should_stop,
                                       score_top_fraction=self.score_top_fraction)
            except NonFiniteTiles as exc:
                results[index] = self._error(name, invalid_output_message(exc.count))

    def _forward_checked(self, batch):
        """`_forward` with out-of-memory turned into `OutOfDeviceMemory` (as for the squash)."""
        import torch

        try:
            return self._forward(batch)
        except Exception as exc:
            if _is_oom(exc):
                if self.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                raise OutOfDeviceMemory(self.device, str(exc).splitlines()[0]) from exc
            raise

    def seconds_per_pass(self) -> float:
        """Measured seconds of one forward pass (one batch of blank tiles), for time estimates."""
        from declip_desktop.engine.tiling import seconds_per_pass

        return seconds_per_pass(self._forward_checked, self.input_size, self.batch_size)

    def _open_cpu_backend(self, model: Any, backend: str | None, exact_net: Callable):
        """The network through OpenVINO when `backends.selection` picks it (a DeCLIP model on the
        CPU), else None (PyTorch runs it). Tells `on_status` why fast mode is not what it could be."""
        from declip_desktop.engine.backends import selection

        declip = (getattr(self.card, "kind", "declip") == "declip" if self.installed is not None
                  else hasattr(model, "backbone") and hasattr(model, "decoder"))
        precision, message = selection.openvino_precision(backend, self.fast) if declip else (None, None)
        if message and self._on_status is not None:
            self._on_status(message)
        if precision is None:
            return None
        from declip_desktop.engine.backends import openvino_cpu

        net = openvino_cpu.open_network(load_torch_net=exact_net, weights_sha256=self.model_sha256,
                                        input_size=self.input_size, precision=precision, threads=self.threads,
                                        installed=self.installed, on_status=self._on_status)
        self.backend = f"openvino {openvino_cpu.short_version()} ({net.precision})"
        self.fast_cpu = net.precision != "f32"  # (a fast recipe that cannot serve this model runs f32)
        self.fast = self.fast and self.fast_cpu
        if self.fast_cpu:
            self._fast_recipe = openvino_cpu.FAST_RECIPES[net.precision]
        return net

    def _make_fast(self, net) -> None:
        """int8 rewrite (`accelerate.optimize_fast_cpu`). It needs no calibration, so there is no
        slow first start and nothing to prepare when a model is installed; where this PyTorch
        lacks the int8 kernels the network stays exact, and `parameters` says so."""
        from declip_desktop.engine import accelerate

        if not accelerate.optimize_fast_cpu(net):
            self.fast_cpu = self.fast = False  # what ran is what the results record
            if self._on_status is not None:
                self._on_status("Fast mode is not available with this PyTorch build (no oneDNN int8 kernels); "
                                "running exact mode instead.")
