"""The regions table with the analyst's annotations in it: annotation rows (A1, A2, …) first, then
the regions the map has above the threshold; the Kind column (second, so it stays in view in a
narrow side panel) says which is which and gives an annotation's label.

An annotation row shows its area (the shape's own, a lasso's polygon area), its bounding box,
and the mean / max probability of the map inside it (`common.shapes.map_stats`, the same numbers
the report and `declip case annotate` print).
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt

from declip_desktop.gui.inspector_parts import RegionsModel

#: Sorts annotation rows before the regions (which sort by their 1-based index).
_ANNOTATION_SORT_BASE = -1_000_000


KIND_COLUMN = 1


class RegionsTableModel(RegionsModel):
    HEADERS = (RegionsModel.HEADERS[0], "Kind", *RegionsModel.HEADERS[1:])

    def __init__(self, parent=None):
        super().__init__(parent)
        self.annotations: list = []
        self.stats: dict = {}
        self.image_pixels = 1

    def set_annotations(self, annotations: list, stats: dict, image_size: tuple[int, int] | None) -> None:
        self.beginResetModel()
        self.annotations = list(annotations)
        self.stats = dict(stats)
        self.image_pixels = max(1, (image_size[0] * image_size[1]) if image_size else 1)
        self.endResetModel()

    # ----- rows -------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.annotations) + len(self.regions)

    def annotation_at_row(self, row: int):  # noqa: ANN201 - cases.annotations.Annotation | None
        return self.annotations[row] if 0 <= row < len(self.annotations) else None

    def row_of_annotation(self, annotation_id: int) -> int | None:
        return next((i for i, a in enumerate(self.annotations) if a.id == annotation_id), None)

    def bbox_of(self, row: int) -> tuple[int, int, int, int]:
        annotation = self.annotation_at_row(row)
        if annotation is not None:
            return annotation.shape.bbox()
        return tuple(self.regions[row - len(self.annotations)].bbox)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        n, col = len(self.annotations), index.column()
        if index.row() >= n:
            if col == KIND_COLUMN:
                if role == Qt.ItemDataRole.DisplayRole:
                    return "map region"
                return "region" if role == Qt.ItemDataRole.UserRole else None
            base = col if col < KIND_COLUMN else col - 1
            return super().data(self.createIndex(index.row() - n, base), role)
        return self._annotation_data(self.annotations[index.row()], col, role)

    def _annotation_data(self, annotation, col: int, role):  # noqa: ANN001
        if col >= len(self.HEADERS):  # columns added with add_column describe map regions only
            return None
        shape = annotation.shape
        area = shape.area_px()
        pct = 100.0 * area / self.image_pixels
        x, y, w, h = shape.bbox()
        stats = self.stats.get(annotation.id)
        mean = None if stats is None else stats.mean
        peak = None if stats is None else stats.max
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                f"A{annotation.id}",
                f"annotation: {annotation.label}",
                f"{pct:.3f} ({area:,.0f})",
                f"{x}, {y}  {w}×{h}",
                "—" if mean is None else f"{mean:.3f}",
                "—" if peak is None else f"{peak:.3f}",
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            figures = ("no probability map" if stats is None else
                       f"map inside: mean {mean:.4f}, max {peak:.4f} over {stats.pixels:,} px" if stats.pixels
                       else "no pixel centre inside the shape")
            note = f"\nnote: {annotation.note}" if annotation.note else ""
            return (f"Annotation A{annotation.id} ({annotation.kind}): {annotation.label}{note}\n"
                    f"{shape.describe()}, area {area:,.1f} px ({pct:.4f} % of the image)\n{figures}\n"
                    f"drawn by {annotation.author} at {annotation.created_at}"
                    + (f"\nrelabelled by {annotation.edited_by} at {annotation.edited_at}" if annotation.edited_by else ""))
        if role == Qt.ItemDataRole.UserRole:
            return (_ANNOTATION_SORT_BASE + annotation.id, "annotation", area, _ANNOTATION_SORT_BASE + annotation.id,
                    -1.0 if mean is None else mean, -1.0 if peak is None else peak)[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col > KIND_COLUMN:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


__all__ = ["RegionsTableModel"]
