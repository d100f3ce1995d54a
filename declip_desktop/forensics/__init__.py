"""Classical forensics beside DeCLIP: metadata, alerts, Content Credentials, classical views.

Qt-free, torch-free and SQL-free (import-linter contracts in pyproject.toml); at the same
layer as `cases` and `engine` and independent of both. Modules:

- `metadata`: `read_metadata(path)` (EXIF incl. MakerNote, GPS, XMP, IPTC, ICC, PNG text,
  EXIF thumbnail comparison, JPEG quantization) and `key_fields(meta)`.
- `alerts`: `find_alerts(meta, c2pa=None) -> [Alert]`.
- `provenance`: `read_c2pa(path) -> dict` (C2PA validation state, manifest, actions,
  ingredients, regions).
- `views`: `VIEWS` (name → ViewSpec) and `compute_view(name, rgb, **params) -> ViewResult`.

Importing this package imports nothing heavy; c2pa's native library loads on first use.
"""
