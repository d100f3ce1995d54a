"""Application preferences (QSettings) kept apart from the case: what one analyst prefers.

The file lives in `declip_home()/desktop.ini`, so `DECLIP_HOME` isolates tests and
portable installs like everything else the application stores.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from declip_desktop.common.paths import declip_home
from declip_desktop.common.regions import COLORMAPS

DEFAULTS = {
    "view/colormap": "inferno",
    "view/opacity": 0.55,
    "analysis/device": "auto",  # auto | cpu | cuda
    "analysis/fast": False,
    "analyst": "",
}
MAX_RECENT = 10


APPEARANCES = ("system", "light", "dark")


class Settings:
    """Typed access to the preferences; every getter falls back to a sane default."""

    def __init__(self, path: Path | None = None):
        path = path or declip_home() / "desktop.ini"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.qsettings = QSettings(str(path), QSettings.Format.IniFormat)

    def _get(self, key: str):
        return self.qsettings.value(key, DEFAULTS.get(key))

    def _set(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)
        self.qsettings.sync()

    # view ------------------------------------------------------------------------------------
    @property
    def colormap(self) -> str:
        value = str(self._get("view/colormap"))
        return value if value in COLORMAPS else DEFAULTS["view/colormap"]

    @colormap.setter
    def colormap(self, value: str) -> None:
        self._set("view/colormap", value)

    @property
    def opacity(self) -> float:
        return _clamp(_float(self._get("view/opacity"), DEFAULTS["view/opacity"]), 0.0, 1.0)

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._set("view/opacity", float(value))

    @property
    def appearance(self) -> str:
        """"system" (follow the desktop's light/dark setting), "light" or "dark"."""
        value = str(self._get("view/appearance") or "system")
        return value if value in APPEARANCES else "system"

    @appearance.setter
    def appearance(self, value: str) -> None:
        if value not in APPEARANCES:
            raise ValueError(f"unknown appearance {value!r}; choose one of {', '.join(APPEARANCES)}")
        self._set("view/appearance", value)

    # analysis --------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        value = str(self._get("analysis/device"))
        return value if value in ("auto", "cpu", "cuda") else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._set("analysis/device", value)

    @property
    def fast(self) -> bool:
        return _bool(self._get("analysis/fast"))

    @fast.setter
    def fast(self, value: bool) -> None:
        self._set("analysis/fast", bool(value))

    @property
    def analyst(self) -> str:
        return str(self._get("analyst") or "")

    @analyst.setter
    def analyst(self, value: str) -> None:
        self._set("analyst", value)

    # cases -----------------------------------------------------------------------------------
    def recent_cases(self) -> list[str]:
        value = self.qsettings.value("cases/recent", [])
        if isinstance(value, str):  # QSettings returns a bare string for one-item lists
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent_case(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_cases() if p != path]
        self._set("cases/recent", [path] + recent[: MAX_RECENT - 1])

    def remove_recent_case(self, path: str) -> None:
        self._set("cases/recent", [p for p in self.recent_cases() if p != path])

    @property
    def last_case(self) -> str:
        return str(self.qsettings.value("cases/last", "") or "")

    @last_case.setter
    def last_case(self, value: str) -> None:
        self._set("cases/last", value)

    def last_evidence(self, case_path: str) -> int | None:
        value = self.qsettings.value(f"cases/last_evidence/{_key(case_path)}")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def set_last_evidence(self, case_path: str, evidence_id: int | None) -> None:
        self._set(f"cases/last_evidence/{_key(case_path)}", evidence_id if evidence_id is not None else "")


    def last_verify(self, case_path: str) -> str:
        """The status-bar line of the last Case → Verify of this case on this computer ("" if never)."""
        return str(self.qsettings.value(f"cases/last_verify/{_key(case_path)}", "") or "")

    def set_last_verify(self, case_path: str, summary: str) -> None:
        self._set(f"cases/last_verify/{_key(case_path)}", summary)


def _key(path: str) -> str:
    # QSettings treats '/' and '\\' as group separators; keep one flat key per case.
    return str(Path(path).resolve()).replace("/", "|").replace("\\", "|")


def _float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _bool(value) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)
