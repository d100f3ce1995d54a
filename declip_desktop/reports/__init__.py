"""PDF reports and image exports (QtGui painting only, no widgets)."""
