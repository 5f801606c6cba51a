"""Schemathesis against each service's OpenAPI (intake, payout, reporting), each running for real
on a fresh PostgreSQL database and Kafka with topics of its own, seeded with a little data:
every operation, data that fits the schema and data that does not, with valid credentials (all
scopes). No answer may be a server error, and every answer must conform to what the document
declares: its status code, its content type and its body's schema. Requests with the ids of the
seeded rows are checked the same way.

A few examples per operation here; `bench/fuzz.py` runs the same with many more."""

from __future__ import annotations

import asyncio

import pytest

from tests.fuzz.runner import fuzz
from tests.fuzz.scenarios import running

EXAMPLES = 8


@pytest.mark.parametrize("service", ["intake", "payout", "reporting"])
async def test_every_operation_conforms_and_never_fails_on_the_server(
    service, pg_database, kafka_bootstrap, tmp_path
):
    url = await pg_database(f"fuzz_{service}")
    async with running(service, url, kafka_bootstrap, tmp_path) as target:
        report = await asyncio.to_thread(
            fuzz, service, target.base_url, target.headers, examples=EXAMPLES, known=target.known
        )
    assert report.examples > 0
    assert not report.failures, report.summary() + "\n\n" + "\n\n".join(report.failures)
