"""seldflow: reproducible spatial-audio ML workflows (SELD, DCASE Task 3)."""

__version__ = "0.1.0"
