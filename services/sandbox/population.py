"""The population registry the sandbox plays (the National Population Database's identity
check): persons seeded through the admin API, asked about in batches of CCCD, full name and,
optionally, date of birth. A person never seeded is not found.

Storage is compact, for a province's roll (100,000+ persons): one small tuple per person (its
folded name, shared between people of the same name, and its dates packed in one integer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from shared.vn_text import fold

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


class PopulationRegistry:
    """CCCD -> (folded full name, packed dates)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._persons: dict[str, tuple[str, int]] = {}
        self._names: dict[str, str] = {}
        self.checks = 0  # check requests answered
        self.persons_checked = 0

    def __len__(self) -> int:
        return len(self._persons)

    def seed(self, rows: Iterable[tuple[str, str, date, PersonStatus, date | None]]) -> int:
        """Add or replace persons: (CCCD, full name, date of birth, status, date of death)."""
        names = self._names
        count = 0
        for national_id, full_name, born, status, died in rows:
            folded = fold(full_name)
            name = names.setdefault(folded, folded)
            death = died.toordinal() if status == "DECEASED" and died is not None else 0
            if status == "DECEASED" and death == 0:
                death = 1  # deceased, date unknown
            self._persons[national_id] = (name, born.toordinal() * _SHIFT + death)
            count += 1
        return count

    def check(self, national_id: str, full_name: str, born: date | None) -> Answer:
        self.persons_checked += 1
        person = self._persons.get(national_id)
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
