"""The population registry the sandbox plays (the National Population Database's identity
check): persons seeded through the admin API, asked about in batches of CCCD, full name and,
optionally, date of birth. A person never seeded is not found.

The persons are on disk (store.py), a province's roll or a nation's: a row each, its folded
name and its dates packed in one integer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from shared.vn_text import fold

if TYPE_CHECKING:
    from .store import PersonStore

MAX_CHECKS_PER_REQUEST = 1_000
PersonStatus = Literal["ALIVE", "DECEASED"]

# born and died as date ordinals packed in one int: born * _SHIFT + died (0: alive)
_SHIFT = 1 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    national_id: str
    found: bool
    status: PersonStatus | None = None
    date_of_death: date | None = None
    name_matches: bool | None = None
    date_of_birth_matches: bool | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "national_id": self.national_id,
            "found": self.found,
            "status": self.status,
            "date_of_death": self.date_of_death.isoformat() if self.date_of_death else None,
            "name_matches": self.name_matches,
            "date_of_birth_matches": self.date_of_birth_matches,
        }


def _packed(born: date, status: PersonStatus, died: date | None) -> int:
    death = died.toordinal() if status == "DECEASED" and died is not None else 0
    if status == "DECEASED" and death == 0:
        death = 1  # deceased, date unknown
    return born.toordinal() * _SHIFT + death


class PopulationRegistry:
    """CCCD -> (folded full name, packed dates), in the store; counters in memory."""

    def __init__(self, store: PersonStore) -> None:
        self.store = store
        self.reset()

    def reset(self) -> None:
        self.store.reset()
        self.checks = 0  # check requests answered
        self.persons_checked = 0

    def __len__(self) -> int:
        return self.store.count()

    def seed(self, rows: Iterable[tuple[str, str, date, PersonStatus, date | None]]) -> int:
        """Add or replace persons: (CCCD, full name, date of birth, status, date of death)."""
        return self.store.add(
            (national_id, fold(full_name), _packed(born, status, died))
            for national_id, full_name, born, status, died in rows
        )

    def check(self, persons: Sequence[tuple[str, str, date | None]]) -> list[Answer]:
        """Answer for each (CCCD, full name, date of birth or None), in the order asked."""
        self.persons_checked += len(persons)
        found = self.store.find(national_id for national_id, _, _ in persons)
        return [_answer(found.get(person[0]), *person) for person in persons]


def _answer(
    person: tuple[str, int] | None, national_id: str, full_name: str, born: date | None
) -> Answer:
    if person is None:
        return Answer(national_id, found=False)
    name, packed = person
    born_ordinal, death = divmod(packed, _SHIFT)
    return Answer(
        national_id,
        found=True,
        status="DECEASED" if death else "ALIVE",
        date_of_death=date.fromordinal(death) if death > 1 else None,
        name_matches=fold(full_name) == name,
        date_of_birth_matches=None if born is None else born.toordinal() == born_ordinal,
    )
