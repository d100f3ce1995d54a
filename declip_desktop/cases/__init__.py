"""Case folders: SQLite store, evidence import, audit trail, verification. No Qt, no torch."""
