"""A probe relay or consumer in its own process, so tests can kill it for real (SIGKILL)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from shared.outbox import OutboxRelay
from shared.runtime import run_relay
from tests.support import probe


class RelayKilledAfterAck(OutboxRelay):
    async def after_publish(self, count: int) -> None:
        # The bus has acknowledged; die before the rows are marked as sent.
        os.kill(os.getpid(), signal.SIGKILL)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay", "consume"])
    parser.add_argument("--database-url")
    parser.add_argument("--kafka")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--crash-after-publish", action="store_true")
    parser.add_argument("--consumer-name", default="probe.test")
    parser.add_argument("--delay-per-event", type=float, default=0.0)
    parser.add_argument("--topic-prefix", default="")
    args = parser.parse_args()
    settings = probe.probe_settings(
        args.database_url, args.kafka, Path(args.data_dir), args.topic_prefix
    )
    runtime = await probe.open_probe(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if args.role == "relay":
        relay_cls = RelayKilledAfterAck if args.crash_after_publish else OutboxRelay
        relay = relay_cls(
            runtime.engine,
            runtime.session_factory,
            probe.outbox,
            probe.outbox_lanes,
            runtime.bus.producer(),
            "probe",
            batch_size=settings.relay_batch_size,
        )
        await run_relay(runtime, stop, relay)
    else:
        await probe.consumer(runtime, args.consumer_name, args.delay_per_event).run(stop)
    await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
