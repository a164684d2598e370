"""Label file formats other than the DCASE2025 one (which lives in :mod:`seldflow.labels`)."""
