"""OpenTelemetry traces that follow one request from HTTP through the outbox and the bus into
every consumer: the W3C `traceparent` is stored with each outbox row and sent as a Kafka header."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

_provider: TracerProvider | None = None


def configure_tracing(processors: Sequence[SpanProcessor] = ()) -> TracerProvider:
    """Install the process's tracer provider once; exporters are added as span processors."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.namespace": "vn-benefits"}))
        trace.set_tracer_provider(_provider)
    for processor in processors:
        _provider.add_span_processor(processor)
    return _provider


def tracer(service: str) -> trace.Tracer:
    return trace.get_tracer(f"benefits.{service}")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span_from_traceparent(
    service: str, name: str, traceparent: str | None, kind: SpanKind, **attributes: str
) -> Iterator[trace.Span]:
    parent = extract({"traceparent": traceparent}) if traceparent else otel_context.get_current()
    if _provider is None:
        # Nothing records spans: carry the caller's trace on (what is published here keeps its
        # traceparent) without paying for a span per event.
        token = otel_context.attach(parent)
        try:
            yield trace.get_current_span(parent)
        finally:
            otel_context.detach(token)
        return
    with tracer(service).start_as_current_span(
        name, context=parent, kind=kind, attributes={"benefits.service": service, **attributes}
    ) as span:
        yield span


class JsonLinesSpanExporter(SpanExporter):
    """Finished spans as JSON lines in a file: enough to follow a trace without a collector."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            context = span.get_span_context()
            if context is None:
                continue
            self._file.write(
                json.dumps(
                    {
                        "trace_id": f"{context.trace_id:032x}",
                        "span_id": f"{context.span_id:016x}",
                        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                        "name": span.name,
                        "kind": span.kind.name,
                        "service": (span.attributes or {}).get("benefits.service"),
                        "start": span.start_time,
                        "end": span.end_time,
                    }
                )
                + "\n"
            )
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def configure_tracing_from_env() -> None:
    """`BENEFITS_TRACE_FILE=/path/spans.jsonl` writes every finished span to that file."""
    path = os.environ.get("BENEFITS_TRACE_FILE")
    if path:
        configure_tracing([SimpleSpanProcessor(JsonLinesSpanExporter(path))])
