"""Schemathesis against a running service's OpenAPI: every operation, data that fits the schema
and data that does not, sent with valid credentials; each response must not be a server error
and must conform to the declared status codes, content types and response schemas.

`fuzz(...)` runs every operation of a schema with hypothesis and collects failures instead of
stopping at the first one, so a run reports everything it found."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that are not part of the API contract: liveness answers without a database.
EXCLUDED_PATHS = frozenset({"/metrics"})


@dataclass
class OperationReport:
    label: str
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    impossible: list[str] = field(default_factory=list)  # generation modes without any case
    seconds: float = 0.0


@dataclass
class FuzzReport:
    service: str
    operations: list[OperationReport] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [f"{op.label}: {failure}" for op in self.operations for failure in op.failures]

    @property
    def examples(self) -> int:
        return sum(op.examples for op in self.operations)

    def statuses(self) -> Counter[int]:
        total: Counter[int] = Counter()
        for op in self.operations:
            total.update(op.statuses)
        return total

    def summary(self) -> str:
        lines = [
            f"{self.service}: {len(self.operations)} operations, {self.examples} requests, "
            f"{len(self.failures)} failures; statuses {dict(sorted(self.statuses().items()))}"
        ]
        for op in self.operations:
            mark = "FAIL" if op.failures else "ok"
            lines.append(
                f"  {mark:4} {op.label:62} {op.examples:5} requests {op.seconds:6.1f} s "
                f"{dict(sorted(op.statuses.items()))}"
            )
        return "\n".join(lines)


def load_schema(base_url: str) -> Any:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).raise_for_status().json()
    return schemathesis.openapi.from_dict(spec)


@dataclass(frozen=True)
class Known:
    """A request with real ids (seeded data), checked like a generated one: the ids of a fuzzed
    request rarely exist, so the answers for found rows would otherwise go unchecked."""

    method: str
    path: str  # the operation's template, as in the OpenAPI document
    path_parameters: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)


def fuzz(
    service: str,
    base_url: str,
    headers: dict[str, str],
    *,
    examples: int,
    modes: Iterable[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    shrink: bool = False,
    only: Iterable[str] = (),
    known: Iterable[Known] = (),
) -> FuzzReport:
    """Fuzz every operation of the service at `base_url` with `examples` cases per operation and
    generation mode, then check the `known` requests; `only` restricts to operations whose label
    contains one of the strings."""
    schema = load_schema(base_url)
    report = FuzzReport(service)
    wanted = tuple(only)
    with requests.Session() as session:
        for request in known:
            operation = schema[request.path][request.method]
            op_report = OperationReport(f"{operation.label} (seeded ids)")
            case = operation.Case(
                path_parameters=request.path_parameters,
                query=request.query or None,
                headers=dict(headers),
            )
            try:
                response = case.call(
                    base_url=base_url, session=session, headers=headers, timeout=60
                )
                op_report.examples += 1
                op_report.statuses[response.status_code] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                op_report.failures.append(f"[seeded] {_describe(exc)}")
            report.operations.append(op_report)
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path in EXCLUDED_PATHS:
                continue
            if wanted and not any(w in operation.label for w in wanted):
                continue
            op_report = OperationReport(operation.label)
            started = time.monotonic()
            for mode in modes:
                _fuzz_operation(
                    operation, mode, base_url, headers, session, examples, shrink, op_report
                )
            op_report.seconds = time.monotonic() - started
            report.operations.append(op_report)
    return report


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    examples: int,
    shrink: bool,
    report: OperationReport,
) -> None:
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=phases,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        # The credentials are valid whatever the case generated for the security scheme.
        case.headers = {**(case.headers or {}), **headers}
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        report.examples += 1
        report.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        # No case of this mode exists (say, negative data for an operation without parameters).
        report.impossible.append(mode.value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        report.failures.append(f"[{mode.value}] {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text[:4000] if text else type(exc).__name__
