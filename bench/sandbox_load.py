"""Throughput check: push transfers through the payout service's bank adapter into the sandbox
and wait for every outcome callback.

    python -m bench.sandbox_load                           # 100,000 transfers, batches of 2,000
    python -m bench.sandbox_load --bin 970405              # the same through ISO 20022 files
    python -m bench.sandbox_load --sandbox-url http://127.0.0.1:8010 --callback-port 8002

Without --sandbox-url the sandbox is started as a subprocess whose callbacks come back to a
receiver in this process, which checks each one with the adapter's `parse_callback`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime

from services.payout.adapters.banks import (
    BankChannel,
    BankChannelRegistry,
    BankChannelSettings,
    PaymentBatch,
    PaymentInstruction,
)
from tests.support.sandbox import (
    SandboxAdmin,
    SandboxProcess,
    WebhookReceiver,
    free_port,
)


class Counts:
    """A lightweight callback handler: verifies and counts, keeps no outcome objects."""

    def __init__(self, registry: BankChannelRegistry) -> None:
        self.registry = registry
        self.outcomes = 0
        self.settled_sum = 0
        self.deliveries = 0
        self.rejected = 0
        self.seen: set[str] = set()
        self.done = asyncio.Event()
        self.expected = 0

    async def __call__(
        self, kind: str, counterparty: str, headers: Mapping[str, str], body: bytes
    ) -> int:
        try:
            _, outcomes = self.registry.channel(counterparty).parse_callback(
                headers, body, datetime.now(UTC)
            )
        except Exception:  # any unreadable callback: counted and refused
            self.rejected += 1
            return 401
        self.deliveries += 1
        for outcome in outcomes:
            if outcome.event_id in self.seen:
                continue
            self.seen.add(outcome.event_id)
            self.outcomes += 1
            if outcome.status == "SETTLED":
                self.settled_sum += outcome.amount
        if self.outcomes >= self.expected:
            self.done.set()
        return 200


async def run(args: argparse.Namespace) -> None:
    callback_port = args.callback_port or free_port()
    process = None
    if args.sandbox_url:
        sandbox_url = args.sandbox_url
    else:
        process = SandboxProcess(
            callback_base=f"http://127.0.0.1:{callback_port}",
            extra_args=["--webhook-batch-size", str(args.webhook_batch_size)],
        ).start()
        sandbox_url = process.url
    settings = BankChannelSettings(
        environment="development",
        base_url=sandbox_url,
        read_timeout_seconds=60,
        write_timeout_seconds=60,
    )  # the sandbox signs with development secrets
    registry = BankChannelRegistry(settings)
    counts = Counts(registry)
    counts.expected = args.transfers
    receiver = await WebhookReceiver(counts, port=callback_port).start()
    admin = SandboxAdmin(sandbox_url)
    try:
        await measure(args, admin, registry, counts)
    finally:
        await admin.aclose()
        await receiver.stop()
        await registry.aclose()
        if process is not None:
            process.stop()


async def measure(
    args: argparse.Namespace, admin: SandboxAdmin, registry: BankChannelRegistry, counts: Counts
) -> None:
    """Seed the accounts, submit every batch, wait for every outcome, print the figures."""
    await admin.reset()
    accounts = [f"{n:012d}" for n in range(args.transfers)]
    await seed_accounts(admin, args.bin, accounts)
    items = instructions(args.bin, accounts)
    batches = [
        PaymentBatch.of(
            f"BENCH{n:06d}", args.bin, items[start : start + args.batch_size], date.today()
        )
        for n, start in enumerate(range(0, len(items), args.batch_size))
    ]
    channel = registry.channel(args.bin)
    started = time.perf_counter()
    accepted = await submit_all(channel, batches, args.concurrency)
    submitted = time.perf_counter() - started
    await asyncio.wait_for(counts.done.wait(), timeout=args.timeout)
    settled = time.perf_counter() - started
    ledger = await admin.ledger()
    expected_sum = sum(item.amount for item in items)

    print(f"channel              {getattr(channel, 'style', '?')} ({args.bin})")
    print(
        f"transfers            {args.transfers:,} in {len(batches)} batches of {args.batch_size:,}"
    )
    print(
        f"submitted            {accepted:,} accepted in {submitted:.2f} s "
        f"-> {accepted / submitted:,.0f} transfers/s"
    )
    print(
        f"all outcomes back    {counts.outcomes:,} in {settled:.2f} s "
        f"-> {counts.outcomes / settled:,.0f} transfers/s end to end"
    )
    print(f"callback deliveries  {counts.deliveries:,} (rejected {counts.rejected})")
    matches = ledger["total_credited"] == expected_sum == counts.settled_sum
    print(
        f"ledger               credits {ledger['credits']:,}, duplicates {ledger['duplicates']}, "
        f"total {ledger['total_credited']:,} VND ({'matches' if matches else 'MISMATCH'})"
    )


async def seed_accounts(admin: SandboxAdmin, bank_bin: str, accounts: list[str]) -> None:
    for start in range(0, len(accounts), 20_000):
        await admin.seed_accounts(
            [
                {"bin": bank_bin, "account_number": a, "holder_name": "Nguyễn Văn An"}
                for a in accounts[start : start + 20_000]
            ]
        )


def instructions(bank_bin: str, accounts: list[str]) -> list[PaymentInstruction]:
    return [
        PaymentInstruction(
            end_to_end_id=f"BN{n:010d}",
            amount=1_500_000 + n % 1000,
            account_number=account,
            account_name="NGUYEN VAN AN",
            bank_bin=bank_bin,
            commune_code=None,
            remittance_info="Luong huu thang 05/2023",
        )
        for n, account in enumerate(accounts)
    ]


async def submit_all(channel: BankChannel, batches: list[PaymentBatch], concurrency: int) -> int:
    """Submit the batches, `concurrency` at a time; the number of transfers accepted."""
    gate = asyncio.Semaphore(concurrency)
    accepted = 0

    async def submit(batch: PaymentBatch) -> None:
        nonlocal accepted
        async with gate:
            result = await channel.submit_batch(batch)
            accepted += len(result.accepted)

    await asyncio.gather(*(submit(batch) for batch in batches))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight at once")
    parser.add_argument(
        "--bin", default="970436", help="bank to pay (970405 takes ISO 20022 files)"
    )
    parser.add_argument("--webhook-batch-size", type=int, default=500)
    parser.add_argument("--sandbox-url", help="use a running sandbox instead of starting one")
    parser.add_argument(
        "--callback-port", type=int, help="port of this process's callback receiver"
    )
    parser.add_argument("--timeout", type=float, default=300)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
