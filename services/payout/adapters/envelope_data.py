"""Funds envelopes as data: a CSV of each agency's monthly budget per scheme (whole đồng), made
into the rows `PUT /v1/envelopes` takes for the periods to pay. The demo's file is
`services/payout/data/envelopes.csv`; a province loads its own the same way."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEMO_ENVELOPES = Path(__file__).resolve().parent.parent / "data" / "envelopes.csv"


def envelope_rows(periods: Iterable[str], text: str | None = None) -> list[dict[str, Any]]:
    """One envelope per period, agency and scheme of the CSV (`agency,scheme,monthly_amount`;
    the demo's file unless `text` is given)."""
    source = DEMO_ENVELOPES.read_text(encoding="utf-8") if text is None else text
    budgets = [
        (row["agency"].strip(), row["scheme"].strip(), int(row["monthly_amount"]))
        for row in csv.DictReader(io.StringIO(source))
    ]
    return [
        {"period": period, "agency": agency, "scheme": scheme, "amount": amount}
        for period in periods
        for agency, scheme, amount in budgets
    ]
