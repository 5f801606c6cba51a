"""The projection's control state: which generation of the read models is live, whether a
rebuild is replacing it, and how fresh the figures are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ACTIVE, REBUILDING = "ACTIVE", "REBUILDING"


@dataclass(frozen=True, slots=True)
class ControlState:
    generation: int
    state: str  # ACTIVE or REBUILDING
    events_applied: int
    last_event_at: datetime | None
    last_applied_at: datetime | None
    rebuild_started_at: datetime | None
    rebuilt_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE
