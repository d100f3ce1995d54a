"""GPS position from EXIF tags as decimal degrees, altitude in metres and UTC time.

No network and no map tiles: the analyst gets numbers (and may paste them into a map
of their choosing); a position in EXIF is a claim by whatever wrote the file.
"""

from __future__ import annotations

from typing import Any


def _number(value: Any) -> float:
    if hasattr(value, "num") and hasattr(value, "den"):
        if not value.den:
            raise ZeroDivisionError("GPS value with a zero denominator")
        return float(value.num) / float(value.den)
    return float(value)


def _values(tags: dict[str, Any], name: str) -> list[Any] | None:
    tag = tags.get(f"GPS {name}")
    if tag is None:
        return None
    values = getattr(tag, "values", tag)
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _degrees(tags: dict[str, Any], name: str, ref_name: str, negative: str, limit: float) -> float | None:
    values = _values(tags, name)
    if not values:
        return None
    parts = [_number(v) for v in values[:3]] + [0.0] * (3 - min(3, len(values)))
    deg = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0
    ref = str(getattr(tags.get(f"GPS {ref_name}"), "printable", "") or "").strip().upper()
    if ref.startswith(negative):
        deg = -deg
    if not -limit <= deg <= limit:
        raise ValueError(f"GPS {name} {deg} is outside ±{limit}")
    return round(deg, 7)


def gps_from_exif(tags: dict[str, Any]) -> dict[str, Any] | None:
    """exifread tags → {latitude, longitude, altitude_m, time_utc, datum, error}; None if no GPS tags.

    A malformed GPS block gives a dict with `error` set (the alerts report it) rather than raising."""
    if not any(str(k).startswith("GPS ") for k in tags):
        return None
    out: dict[str, Any] = {"latitude": None, "longitude": None, "altitude_m": None, "time_utc": None,
                           "datum": None, "error": None}
    try:
        out["latitude"] = _degrees(tags, "GPSLatitude", "GPSLatitudeRef", "S", 90.0)
        out["longitude"] = _degrees(tags, "GPSLongitude", "GPSLongitudeRef", "W", 180.0)
        alt = _values(tags, "GPSAltitude")
        if alt:
            metres = _number(alt[0])
            ref = _values(tags, "GPSAltitudeRef")
            if ref and str(ref[0]).strip() in ("1", "b'\\x01'"):
                metres = -metres
            out["altitude_m"] = round(metres, 2)
        stamp = _values(tags, "GPSTimeStamp")
        date = tags.get("GPS GPSDate")
        if stamp and len(stamp) >= 3:
            h, m, s = (_number(v) for v in stamp[:3])
            clock = f"{int(h):02d}:{int(m):02d}:{s:06.3f}".rstrip("0").rstrip(".")
            day = str(getattr(date, "printable", "") or "").strip().replace(":", "-")
            out["time_utc"] = f"{day}T{clock}Z" if day else f"{clock}Z"
        datum = tags.get("GPS GPSMapDatum")
        if datum is not None:
            out["datum"] = str(getattr(datum, "printable", datum)).strip()[:100]
    except (ValueError, TypeError, ZeroDivisionError, IndexError) as exc:
        out["error"] = f"GPS data could not be read ({exc})"
    return out
