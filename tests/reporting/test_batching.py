"""How much of a backlog one projection transaction takes: per-batch round trips (inbox check,
generation lock, progress row, commit, offset commit) dominate small batches, so the projection
takes large ones; a quiet topic still yields small batches as soon as they arrive."""

from __future__ import annotations

import inspect

from services.reporting.consumers import rebuild
from services.reporting.settings import ReportingSettings
from shared.settings import ServiceSettings

BACKLOG_BATCH = 5000


class TestBatchSize:
    def test_the_projection_takes_large_batches_by_default(self):
        settings = ReportingSettings(environment="development")
        assert settings.consumer_batch_size >= BACKLOG_BATCH
        assert ServiceSettings(environment="development").consumer_batch_size < BACKLOG_BATCH

    def test_the_rebuild_uses_the_same_batches_as_the_live_projection(self):
        default = inspect.signature(rebuild.rebuild).parameters["batch_size"].default
        assert default is None
