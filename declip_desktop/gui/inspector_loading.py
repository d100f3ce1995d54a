"""Loading an item into the inspector: a quick preview first, then the full resolution
(a mixin of `gui.inspector.Inspector`).

A 54-megapixel JPEG takes seconds to decode in full. The loader reads the file once and

1. shows a preview stretched over the image's full size, marked "preview" with a busy indicator
   (readout and loupe wait: they need real pixels): for a JPEG the decoder's own DCT scaling
   (`inspector_parts.decode_preview`, 1/2 … 1/8 of the size, a few hundred ms); for a PNG, WebP,
   HEIC or tiled TIFF the preview cached in the case (`cases.previews`, made after the import,
   with the list thumbnail, or at the first full decode; tens of ms); for a TIFF without one, an
   embedded reduced page or pyramid level, or every k-th strip (`common.reduced_decode`);
2. hashes the bytes it read against the recorded SHA-256, decodes them in full, builds the
   pyramid (`image_view.build_pyramid`, the coarser levels the view draws when zoomed out),
   loads the map, and swaps the levels in place, keeping zoom and pan.

If the hash does not match, the preview is taken down and the item is flagged (gui.integrity).
"""

from __future__ import annotations

from PySide6.QtGui import QImage

from declip_desktop.cases.previews import PREVIEW_SIDE, cached_preview, wants_preview, write_preview
from declip_desktop.common.hashing import sha256_bytes
from declip_desktop.gui.background import run_background
from declip_desktop.gui.image_view import build_pyramid
from declip_desktop.gui.inspector_parts import Loaded, decode_preview, decode_to_qimage, qimage_rgb, tiff_preview
from declip_desktop.gui.integrity import quick_state
from declip_desktop.gui.render import DisplayMap


class LoadingControls:
    def _start_load(self, ev, analysis, path, token: int, wants_map: bool) -> None:
        case = self.case
        self._set_loading(True)

        def read():
            # The bytes shown are the bytes hashed: a file that is gone, replaced or changed since
            # import is reported as such, never shown as this evidence.
            state = quick_state(path, ev.size)
            if state is not None:
                return state, b"", None
            cached = cached_preview(case, ev)  # PNG, tiled TIFF …: made with the thumbnail (cases.previews)
            if cached is not None:
                image = QImage(str(cached))
                if not image.isNull():
                    return None, None, image
            if (ev.format or "").upper() == "TIFF" and wants_preview(ev):
                # Read only the reduced page or the strips it needs; the full decode reads (and hashes) all.
                return None, None, tiff_preview(path)
            data = path.read_bytes()
            return None, data, decode_preview(data)

        def full(data: bytes | None) -> Loaded:
            if data is None:
                data = path.read_bytes()
            if sha256_bytes(data) != ev.sha256:
                return Loaded(ev.id, [], None, None, None, file_state="changed")
            levels = build_pyramid(decode_to_qimage(data))
            del data
            if wants_preview(ev) and cached_preview(case, ev) is None:
                # Next time this item shows at once: a preview from the pyramid level nearest its size.
                level = min((lv for lv in levels if max(lv.width(), lv.height()) >= PREVIEW_SIDE),
                            key=lambda lv: lv.width(), default=levels[0])
                write_preview(case, ev, qimage_rgb(level), decoded_size=(levels[0].width(), levels[0].height()))
            prob = display = None
            error = None
            if wants_map:
                try:
                    prob = case.load_map(analysis)
                    display = DisplayMap(prob)
                except Exception as exc:  # a changed map file fails its hash check here
                    error = str(exc)
            return Loaded(ev.id, levels, prob, display, error)

        def read_done(result) -> None:
            state, data, preview = result
            if not self.model.is_current(token):
                return
            if state is not None:
                self._loaded(token, Loaded(ev.id, [], None, None, None, file_state=state))
                return
            if preview is not None:
                self._show_preview(preview, ev.width, ev.height)
            run_background(lambda: full(data), lambda loaded: self._loaded(token, loaded),
                           lambda e, d: self._load_failed(token, e, d))

        run_background(read, read_done, lambda e, d: self._load_failed(token, e, d))

    def _set_loading(self, on: bool, text: str = "Loading…") -> None:
        for action in self.loading_actions:
            action.setVisible(on)
        self.loading_label.setText(text if on else "")

    def _show_preview(self, preview: QImage, width: int, height: int) -> None:
        self.placeholder.setVisible(False)
        self.splitter.setVisible(True)
        self.view.set_image([preview], size=(width, height), preview=True)
        self.compare_view.set_image([preview], size=(width, height), preview=True)
        self._set_loading(True, f"Preview ({preview.width()}×{preview.height()}); decoding {width}×{height}…")

    def _loaded(self, token: int, result: Loaded) -> None:
        if not self.model.is_current(token):
            return  # the analyst has moved on
        self._set_loading(False)
        if result.file_state is not None:
            self.view.set_image(None)
            self.compare_view.set_image(None)
            self.model.set_integrity({**self.model.integrity, result.evidence_id: result.file_state})
            self.integrityFound.emit(result.evidence_id, result.file_state)
            self.regions_note.setText("Not shown: the file in the case folder is not the evidence that was imported.")
            return
        if self.model.integrity.get(result.evidence_id):  # restored: its hash matches again
            self.model.set_integrity({k: v for k, v in self.model.integrity.items() if k != result.evidence_id})
            self.integrityFound.emit(result.evidence_id, "")
        if result.map_error:
            self.regions_note.setText(f"The probability map could not be loaded: {result.map_error}")
            self.errorOccurred.emit(
                f"The probability map of {self.evidence.original_name} could not be loaded.", result.map_error
            )
        self.display(result.levels, result.prob_map, result.display)

    def _load_failed(self, token: int, exc: Exception, detail: str) -> None:
        if not self.model.is_current(token):
            return
        self._set_loading(False)
        self.view.set_image(None)
        name = self.evidence.original_name if self.evidence else "the evidence"
        self.regions_note.setText(f"The image could not be shown: {exc}")
        self.errorOccurred.emit(f"{name} could not be shown: {exc}", detail)


__all__ = ["LoadingControls"]
