"""CloudEvents 1.0 envelope, JSON structured mode."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
CORRELATION_HEADER = "correlation-id"
TRACEPARENT_HEADER = "traceparent"
EVENT_TYPE_HEADER = "ce_type"


def encode_event(
    type_: str, source: str, subject: str, data: dict[str, Any], time: datetime
) -> tuple[str, bytes]:
    """A new event's id and JSON bytes: the hot path of writing outbox rows, without the dataclass."""
    event_id = str(uuid.uuid4())
    return event_id, orjson.dumps(
        {
            "specversion": SPEC_VERSION,
            "id": event_id,
            "source": source,
            "type": type_,
            "subject": subject,
            "time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": CONTENT_TYPE,
            "data": data,
        }
    )


class MalformedEvent(ValueError):
    """The bytes are not a CloudEvent we can read."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    specversion: str = SPEC_VERSION
    datacontenttype: str = CONTENT_TYPE

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "specversion": self.specversion,
                "id": self.id,
                "source": self.source,
                "type": self.type,
                "subject": self.subject,
                "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "datacontenttype": self.datacontenttype,
                "data": self.data,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> CloudEvent:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedEvent(f"not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise MalformedEvent("not a JSON object")
        missing = [
            k for k in ("specversion", "id", "source", "type", "time", "data") if k not in doc
        ]
        if missing:
            raise MalformedEvent(f"missing CloudEvents attributes: {', '.join(missing)}")
        if doc["specversion"] != SPEC_VERSION:
            raise MalformedEvent(f"unsupported specversion {doc['specversion']!r}")
        if not isinstance(doc["data"], dict):
            raise MalformedEvent("data is not a JSON object")
        try:
            time = datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedEvent(f"bad time: {exc}") from exc
        return cls(
            type=str(doc["type"]),
            source=str(doc["source"]),
            subject=str(doc.get("subject", "")),
            data=doc["data"],
            id=str(doc["id"]),
            time=time,
            datacontenttype=str(doc.get("datacontenttype", CONTENT_TYPE)),
        )
