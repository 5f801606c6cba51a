"""Every SQL statement of the reporting service, one module per area:

- `reads`: the figures the API and the exports answer, summed over the cubes and rollups;
- `targets`: the targets' configuration rows;
- `projections`: the read models' writes, in the projection consumer's batch transaction;
- `control`: the projection's control row (generation, rebuild, freshness) and a rebuild's reset.

Each repository is a class over the connection its boundary opened (an HTTP dependency, an
endpoint's unit of work, the consumer's batch, the rebuild command): it executes statements and
never begins, commits or rolls back.
"""

from __future__ import annotations

from services.reporting.adapters.repository.control import ControlRepository
from services.reporting.adapters.repository.projections import ProjectionRepository
from services.reporting.adapters.repository.reads import ReadRepository
from services.reporting.adapters.repository.targets import TargetRepository

__all__ = ["ControlRepository", "ProjectionRepository", "ReadRepository", "TargetRepository"]
