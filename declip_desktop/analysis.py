"""Queue runner shared by the GUI worker and `declip case analyze` (see docs/ARCHITECTURE.md)."""
