"""OpenTelemetry traces that follow one request from HTTP through the outbox and the bus into
every consumer: the W3C `traceparent` is stored with each outbox row and sent as a Kafka header."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
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
def span_from_traceparent(service: str, name: str, traceparent: str | None, kind: SpanKind,
                          **attributes: str) -> Iterator[trace.Span]:
    parent = extract({"traceparent": traceparent}) if traceparent else otel_context.get_current()
    with tracer(service).start_as_current_span(name, context=parent, kind=kind,
                                               attributes={"benefits.service": service, **attributes}) as span:
        yield span
