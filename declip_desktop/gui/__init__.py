"""PySide6 widgets. Talks to analysis, cases and reports only; never to torch or SQL."""
