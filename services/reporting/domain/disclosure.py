"""Statistical disclosure control: a published cell about fewer than `THRESHOLD` people can point
at a person (a commune with one unemployment recipient shows that person's benefit), so readers
without the detail scope see such cells hidden.

Primary suppression hides every small cell. A hidden cell of a group whose total is published
elsewhere (a breakdown's total row, the district a commune belongs to, a period of a series) could
be recovered by subtracting the visible cells from that total; secondary suppression therefore
hides more cells of the group, the smallest non-empty ones first, until at least two are hidden
and together they describe at least `THRESHOLD` people. Totals stay the true totals (computed from
the data, never from the visible cells) unless they are small themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.reporting.domain.figures import Figures

THRESHOLD = 5


def cell_size(figures: Figures) -> int:
    """How many people a cell speaks of: the largest of its head counts (people paid, installments
    pending, failed, returned or cancelled, claims, decisions)."""
    return max(
        figures.people_paid,
        figures.pending_count,
        figures.failed_count,
        figures.returned_count,
        figures.cancelled_count,
        figures.claims_received,
        figures.decisions,
    )


def is_small(figures: Figures) -> bool:
    """Describes someone, but fewer than `THRESHOLD` people. An empty cell reveals nobody."""
    return 0 < cell_size(figures) < THRESHOLD


def suppressed_cells(sizes: Sequence[int], groups: Iterable[Sequence[int]] = ()) -> set[int]:
    """Indices of the cells to hide, given each cell's size and the groups (lists of indices)
    whose totals a reader can learn."""
    hidden = {i for i, size in enumerate(sizes) if 0 < size < THRESHOLD}
    groups = [list(g) for g in groups]
    changed = bool(hidden)
    while changed:  # hiding a cell for one group can expose another group: repeat until stable
        changed = False
        for group in groups:
            in_group = [i for i in group if i in hidden]
            if not in_group:
                continue
            visible = sorted((sizes[i], i) for i in group if i not in hidden and sizes[i] > 0)
            while visible and (len(in_group) < 2 or sum(sizes[i] for i in in_group) < THRESHOLD):
                _, index = visible.pop(0)
                hidden.add(index)
                in_group.append(index)
                changed = True
    return hidden
