"""Classical views as an inspector layer: pick a view, it is computed off the UI thread (cached
in the case), drawn over the photo like the heat map, with its "how to read it" text."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen, QPixmap, QPolygonF, QTransform
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGraphicsItemGroup,
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
    QLabel,
    QSlider,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.forensics.views import VIEWS
from declip_desktop.gui.background import run_background
from declip_desktop.gui.case_access import own_case
from declip_desktop.gui.pins_box import PinsBox

LAYER_Z = 0.5  # above the photo, below the DeCLIP heat map, mask and outlines
REGIONS_Z = 6  # C2PA-declared regions: above everything
DISPLAY_MAX_SIDE = 4096  # views are shown at most this large (the cache keeps full resolution)
_QUALITY_VIEWS = {"ela": 90, "jpeg_ghost": 0}


def to_display_rgb(data: np.ndarray, kind: str) -> np.ndarray:
    """A view's data as H×W×3 uint8 for the screen, at most DISPLAY_MAX_SIDE on the long side."""
    import cv2

    from declip_desktop.common.regions import colorize

    img = data if kind == "rgb" else colorize(data)
    h, w = img.shape[:2]
    scale = DISPLAY_MAX_SIDE / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ViewsTab(QWidget):
    """Controls + explanation; owns one pixmap layer (and region outlines) in the inspector's view."""

    failed = Signal(str, str)

    def __init__(self, image_view, parent=None):
        super().__init__(parent)
        self.image_view = image_view
        self.case = None
        self.evidence_id: int | None = None
        self._token = 0
        self.last_result = None
        self.size: tuple[int, int] | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.view_combo = QComboBox()
        self.view_combo.addItem("— none —", "")
        for name, spec in VIEWS.items():
            self.view_combo.addItem(spec.title, name)
        self.view_combo.currentIndexChanged.connect(lambda _i: self._request())
        form.addRow("View", self.view_combo)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(0, 100)
        self.quality_spin.setSpecialValueText("auto")
        self.quality_spin.setToolTip("JPEG quality for ELA / JPEG ghosts (ghosts: auto = quality of least change)")
        self.quality_spin.editingFinished.connect(self._request)
        form.addRow("Quality", self.quality_spin)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(10, 100)
        self.opacity.setValue(85)
        self.opacity.valueChanged.connect(lambda v: self.layer.setOpacity(v / 100))
        form.addRow("Opacity", self.opacity)
        layout.addLayout(form)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.explanation = QTextBrowser()
        layout.addWidget(self.explanation, 1)
        self.pins = PinsBox(self.current_view)
        self.pins.failed.connect(self.failed)
        layout.addWidget(self.pins)
        # Two overlay items; whether they are drawn is the inspector model's call (its check boxes,
        # overlay toggle and flicker), through Inspector.add_overlay_layer (gui.forensics_panel).
        self.layer = QGraphicsPixmapItem()
        self.layer.setZValue(LAYER_Z)
        self.layer.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.layer.setOpacity(0.85)
        image_view.scene().addItem(self.layer)
        self.region_group = QGraphicsItemGroup()
        self.region_group.setZValue(REGIONS_Z)
        image_view.scene().addItem(self.region_group)
        self.outlines: list[QGraphicsPolygonItem] = []
        self._set_controls()

    def current_view(self) -> tuple[str, dict] | None:
        """(name, parameters) of the view on screen, for pinning; None when none is shown."""
        if self.last_result is None:
            return None
        params = {k: v for k, v in self.last_result.parameters.items()
                  if k in ("quality", "block", "max_side") and v is not None}
        return self.last_result.name, params

    # ----- content
    def show_evidence(self, case, evidence_id: int | None, size: tuple[int, int] | None = None) -> None:
        """`size`: the item's displayed (width, height), which the layer is stretched over."""
        self._token += 1
        self.case, self.evidence_id, self.size = case, evidence_id, size
        self.last_result = None
        self._clear_layer()
        self.pins.show_evidence(case, evidence_id)
        self._request()

    def _set_controls(self) -> None:
        name = self.view_combo.currentData() or ""
        self.quality_spin.setEnabled(name in _QUALITY_VIEWS)
        spec = VIEWS.get(name)
        self.explanation.setPlainText(spec.explanation if spec else
                                      "Choose a classical view to draw it over the photo. Each view has its "
                                      "own reading and limits, shown here; none of them is a verdict.")

    def _clear_layer(self) -> None:
        self.layer.setPixmap(QPixmap())

    def _request(self) -> None:
        self._set_controls()
        name = self.view_combo.currentData() or ""
        self._token += 1
        self.last_result = None  # nothing pinnable until the new view arrives
        self._clear_layer()
        if not name or self.case is None or self.evidence_id is None:
            self.status.setText("")
            return
        if name in _QUALITY_VIEWS and self.quality_spin.value() == 0 and name == "ela":
            self.quality_spin.setValue(_QUALITY_VIEWS["ela"])
        params = {}
        if name in _QUALITY_VIEWS and self.quality_spin.value():
            params["quality"] = self.quality_spin.value()
        token, case, evidence_id = self._token, self.case, self.evidence_id
        self.status.setText(f"Computing {VIEWS[name].title}…")

        def work():
            from declip_desktop.examination import cached_view

            # Shown first, cached after (writing a 12 MP map takes about a second).
            with own_case(case) as private:  # the case may be closed while this runs
                view = cached_view(private, evidence_id, name, write_cache=False, **params)
            return view, to_display_rgb(view.data, view.kind)

        def ready(view, display) -> None:
            self._ready(token, view, display)
            if view.cached:
                return
            from declip_desktop.examination import store_view

            def store() -> None:
                with own_case(case) as private:
                    store_view(private, evidence_id, view, params)

            run_background(store, lambda _r: None,
                           lambda e, d: self.failed.emit(f"The view could not be cached in the case: {e}", d))

        run_background(work, lambda r: ready(*r), lambda e, d: self._failed(token, e, d))

    def _ready(self, token: int, view, display: np.ndarray) -> None:
        if token != self._token:
            return  # another item or view was chosen meanwhile
        self.last_result = view
        size = self.size or self.image_view.image_size()
        image = rgb_to_qimage(display)
        self.layer.setPixmap(QPixmap.fromImage(image))
        if size:
            self.layer.setTransform(QTransform.fromScale(size[0] / image.width(), size[1] / image.height()))
        extras = {k: v for k, v in view.extras.items() if k != "clusters"}
        note = f"{view.title}: {view.seconds:.2f} s to compute" + (" (from the case's cache)." if view.cached else ".")
        if "clusters" in view.extras:
            note += f" {len(view.extras['clusters'])} linked region pair(s)."
        if extras:
            note += " " + ", ".join(f"{k}: {v}" for k, v in extras.items())
        self.status.setText(note)

    def _failed(self, token: int, exc: Exception, detail: str) -> None:
        if token != self._token:
            return
        self.status.setText(f"The view could not be computed: {exc}")
        self.failed.emit(f"The view could not be computed: {exc}", detail)

    def show_regions(self, regions: list[dict], width: int, height: int) -> None:
        """Outline C2PA-declared edit regions (pixel or percent units) over the photo."""
        self.clear_regions()
        pen = QPen(QColor(0, 200, 255))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        for r in regions:
            k = (width / 100.0, height / 100.0) if r.get("unit") == "percent" else (1.0, 1.0)
            if r.get("type") == "rectangle" and None not in (r.get("x"), r.get("y"), r.get("width"), r.get("height")):
                x, y, w, h = (float(r["x"]) * k[0], float(r["y"]) * k[1], float(r["width"]) * k[0],
                              float(r["height"]) * k[1])
                points = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
            elif r.get("type") == "polygon":
                points = [(float(px) * k[0], float(py) * k[1]) for px, py in r.get("points") or []
                          if px is not None and py is not None]
            else:
                continue
            item = QGraphicsPolygonItem(QPolygonF([QPointF(px, py) for px, py in points]))
            item.setPen(pen)
            item.setToolTip(str(r.get("description") or "C2PA declared region"))
            self.region_group.addToGroup(item)
            self.outlines.append(item)

    def clear_regions(self) -> None:
        for item in self.outlines:
            self.region_group.removeFromGroup(item)
            self.image_view.scene().removeItem(item)
        self.outlines = []
