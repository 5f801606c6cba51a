"""Moved to `services.payout.adapters.repository.reads`; these names stay importable from here
until their last importers (workers.py, metrics.py) import the repository."""

from services.payout.adapters.repository.reads import anomaly_counts, cycle_row

__all__ = ["anomaly_counts", "cycle_row"]
