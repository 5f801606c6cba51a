"""The deployment definitions of deploy/ are valid and agree with the code they run.

- deploy/compose.yaml is validated against the Compose Specification's JSON schema
  (tests/deploy/compose-spec.json: the schema Docker Compose v2.40.3 embeds, from
  github.com/compose-spec/compose-spec, Apache-2.0), before and after variable interpolation.
- Every Kubernetes manifest under deploy/k8s is validated with kubernetes-validate in strict
  mode (unknown fields are errors) against the schemas of Kubernetes 1.30 and of the newest
  version the package ships.
- deploy/Dockerfile is parsed with BuildKit's own parser (the `dockerfile` package).
- The Grafana dashboard's queries are parsed as PromQL (`promql-parser`).

Beyond the schemas, the settings each container would read are loaded with the services' own
settings classes, the probed paths are matched against the apps' routes, and the commands are
parsed by the services' own command lines. No network, no Docker engine, no cluster.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import importlib
import importlib.util
import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dockerfile
import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry
from starlette.routing import Match

from services.intake.settings import IntakeSettings
from services.payout.settings import PayoutSettings
from services.reporting.settings import ReportingSettings
from services.sandbox.__main__ import parse_args as sandbox_args
from services.sandbox.config import SandboxSettings
from shared.auth import WELL_KNOWN_JWKS
from shared.settings import ServiceSettings
from shared.web import HttpMetrics
from tests.support import tokens

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")

SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "payout": PayoutSettings,
    "reporting": ReportingSettings,
}
PREFIXES = ("INTAKE_", "PAYOUT_", "REPORTING_", "SANDBOX_")
SANDBOX_PORT = 8010
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
MEMORY_CEILING = 300 * 1024 * 1024
BUSINESS_METRICS = {
    "benefits_installments",
    "benefits_cycle_progress_ratio",
    "benefits_outbox_pending",
    "benefits_consumer_lag_seconds",
    "benefits_dead_letters_total",
}
HTTP_METRICS = {"http_requests_total", "http_request_duration_seconds_bucket"}

# What an operator exports before `docker compose up` (deploy/compose.yaml's header).
WEBHOOK_SECRETS = {  # 32 bytes or more, as production requires
    "970436": "s3cret-vcb-0123456789-0123456789",
    "970405": "s3cret-agribank-0123-0123456789ab",
    "VNPOST": "s3cret-vnpost-01234-0123456789abc",
}
OPERATOR_ENV = {
    "POSTGRES_PASSWORD": "pg-Pa55word",
    "BANK_WEBHOOK_SECRETS": json.dumps(WEBHOOK_SECRETS),
    # intake's signing key reaches it as a Compose secret (a file), not by interpolation
    "BENEFITS_SIGNING_KEY": tokens.KEY.to_pem().decode(),
}
REQUIRED_VARIABLES = set(OPERATOR_ENV) - {"BENEFITS_SIGNING_KEY"}
INTAKE_JWKS = "http://intake-api:8001" + WELL_KNOWN_JWKS


def default_port(settings_cls: type[Any]) -> int:
    return settings_cls.model_fields["port"].default


def service_port(name: str) -> int:
    return SANDBOX_PORT if name == "sandbox" else default_port(SETTINGS[name])


def serves(app: Any, path: str) -> bool:
    scope = {
        "type": "http",
        "path": path,
        "method": "GET",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def app_of(name: str) -> Any:
    if name == "sandbox":
        from services.sandbox.app import create_app as create_sandbox

        return create_sandbox(SandboxSettings())
    return importlib.import_module(f"services.{name}.bootstrap").create_app(SETTINGS[name]())


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], factory: Any) -> Any:
    """Builds settings as a container would: from these variables only."""
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key.startswith(PREFIXES):
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return factory()


# ---- Compose --------------------------------------------------------------------------------


class MissingVariable(Exception):
    pass


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
    ${VAR?e}, ${VAR:+r}, ${VAR+r}."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        usable = present and env[name] != ""
        if op in (":?", "?") and not (usable if op == ":?" else present):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and not (usable if op == ":-" else present):
            return arg
        if op in (":+", "+"):
            return arg if (usable if op == ":+" else present) else ""
        return env.get(name, "")

    return _INTERPOLATION.sub(substitute, value)


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(compose_raw, OPERATOR_ENV)


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the project's image."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_compose_file_validates_against_the_compose_specification(
    compose_raw, compose, compose_validator
):
    assert schema_errors(compose_validator, compose_raw) == []
    assert schema_errors(compose_validator, compose) == []


def test_compose_schema_validation_rejects_invalid_files(compose, compose_validator):
    misspelt = copy.deepcopy(compose)
    misspelt["services"]["intake-api"]["depends_onn"] = misspelt["services"]["intake-api"].pop(
        "depends_on"
    )
    assert schema_errors(compose_validator, misspelt)
    bad_condition = copy.deepcopy(compose)
    bad_condition["services"]["intake-api"]["depends_on"]["intake-migrate"]["condition"] = (
        "service_finished"
    )
    assert schema_errors(compose_validator, bad_condition)


@pytest.mark.parametrize("variable", sorted(REQUIRED_VARIABLES))
def test_compose_refuses_to_start_without_each_production_secret(compose_raw, variable):
    env = {key: value for key, value in OPERATOR_ENV.items() if key != variable}
    with pytest.raises(MissingVariable, match=variable):
        interpolate(compose_raw, env)
    with pytest.raises(MissingVariable, match=variable):
        interpolate(compose_raw, {**env, variable: ""})


def test_compose_services_are_wired_together(compose):
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    used_volumes: set[str] = set()
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for target, dependency in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert dependency["condition"] in {
                "service_healthy",
                "service_completed_successfully",
            }, name
            if dependency["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                used_volumes.add(source)
        for secret in svc.get("secrets", []):
            assert secret in (compose.get("secrets") or {}), name
    assert used_volumes <= declared_volumes
    assert {"postgres-data", "kafka-data"} <= used_volumes

    for infra in ("postgres", "kafka", "sandbox", "prometheus", "grafana"):
        assert "healthcheck" in services[infra], infra

    for svc in SETTINGS:
        migrate, api, worker = (
            services[f"{svc}-migrate"],
            services[f"{svc}-api"],
            services[f"{svc}-worker"],
        )
        assert migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        for process in (api, worker):
            assert (
                process["depends_on"][f"{svc}-migrate"]["condition"]
                == "service_completed_successfully"
            )
            assert process["depends_on"]["postgres"]["condition"] == "service_healthy"
            assert process["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "healthcheck" in api

    # One image for every process, built from the repository root with deploy/Dockerfile.
    images = {svc["image"] for svc in app_services(compose).values()}
    assert len(images) == 1
    for name, svc in app_services(compose).items():
        assert (
            DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]
        ).resolve() == DEPLOY / "Dockerfile", name
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        limit = svc["deploy"]["resources"]["limits"]["memory"]
        assert parse_quantity(limit) <= MEMORY_CEILING, name


def test_compose_commands_run_the_services_command_lines(compose, capsys):
    services = app_services(compose)
    assert set(services) == {f"{s}-{p}" for s in SETTINGS for p in ("migrate", "api", "worker")} | {
        "sandbox"
    }
    for name, svc in services.items():
        module, *args = svc["command"]
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        if module == "services.sandbox":
            continue
        service = module.split(".")[1]
        assert name == f"{service}-{args[0]}"
        bootstrap = importlib.import_module(f"{module}.bootstrap")
        with pytest.raises(SystemExit) as exit_:
            bootstrap.main([*args, "--help"])  # argparse: exit 0 for a known command, 2 otherwise
        assert exit_.value.code == 0, name
    capsys.readouterr()


def http_port_of_healthcheck(svc: dict[str, Any]) -> tuple[int, str]:
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[a-z]+)", " ".join(svc["healthcheck"]["test"]))
    assert url, svc["healthcheck"]
    return int(url[1]), url[2]


def test_compose_settings_load_as_each_container_reads_them(compose, monkeypatch):
    services = compose["services"]
    postgres_env = services["postgres"]["environment"]
    kafka_env = services["kafka"]["environment"]
    advertised = urlsplit(kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")[0])
    databases = created_databases()
    for name, svc in app_services(compose).items():
        if name == "sandbox":
            continue
        service = svc["command"][0].split(".")[1]
        settings = settings_from_env(monkeypatch, svc["environment"], SETTINGS[service])
        assert settings.environment == "production"
        assert not settings.embedded
        db = urlsplit(settings.database_url)
        assert db.scheme == "postgresql+asyncpg"
        assert (db.hostname, db.port) == ("postgres", 5432)
        assert (db.username, db.password) == (
            postgres_env["POSTGRES_USER"],
            postgres_env["POSTGRES_PASSWORD"],
        )
        assert db.path.lstrip("/") == service and service in databases
        assert settings.kafka_bootstrap_servers == f"{advertised.hostname}:{advertised.port}"
        assert advertised.hostname == "kafka"
        assert settings.host == "0.0.0.0"
        assert settings.port == default_port(SETTINGS[service])
        assert not hasattr(settings, "jwt_secret")
        if service == "intake":
            assert settings.signing_key_file == Path("/run/secrets/intake_signing_key")
            assert svc.get("secrets", []) == (
                ["intake_signing_key"] if name == "intake-api" else []
            )
        else:
            # payout and reporting verify with intake's public keys, fetched from its API
            assert settings.jwks_url == INTAKE_JWKS and settings.jwks_file is None, name
            jwks = urlsplit(settings.jwks_url)
            assert jwks.hostname in services and jwks.port == default_port(IntakeSettings)
            assert serves(app_of("intake"), jwks.path) and "secrets" not in svc, name
        if name.endswith("-api"):
            assert svc["ports"] == [f"{settings.port}:{settings.port}"]
            port, path = http_port_of_healthcheck(svc)
            assert port == settings.port and serves(app_of(service), path), name
        if service == "payout":
            bank = urlsplit(settings.bank_base_url)
            assert bank.hostname in services and bank.port == SANDBOX_PORT
            assert settings.webhook_secrets == WEBHOOK_SECRETS
    assert compose["secrets"]["intake_signing_key"] == {"environment": "BENEFITS_SIGNING_KEY"}

    sandbox = services["sandbox"]
    overrides = sandbox_args(sandbox["command"][1:])
    sandbox_settings = settings_from_env(
        monkeypatch, sandbox["environment"], lambda: SandboxSettings(**overrides)
    )
    assert (sandbox_settings.host, sandbox_settings.port) == ("0.0.0.0", SANDBOX_PORT)
    callback = urlsplit(sandbox_settings.callback_base)
    assert callback.hostname == "payout-api" and callback.port == default_port(PayoutSettings)
    assert sandbox_settings.webhook_secrets == WEBHOOK_SECRETS
    assert sandbox["labels"]["vn-benefits.non-production"] == "true"
    port, path = http_port_of_healthcheck(sandbox)
    assert port == SANDBOX_PORT and serves(app_of("sandbox"), path)


def test_compose_production_values_refuse_development_placeholders(compose_raw, monkeypatch):
    placeholders = {
        **OPERATOR_ENV,
        "BANK_WEBHOOK_SECRETS": json.dumps({"970436": "dev-secret-970436"}),
    }
    payout_env = interpolate(compose_raw, placeholders)["services"]["payout-api"]["environment"]
    with pytest.raises(ValueError, match="development placeholder"):
        settings_from_env(monkeypatch, payout_env, PayoutSettings)


def test_compose_kafka_is_a_single_node_kraft_cluster(compose):
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = {
        urlsplit(item).scheme.upper(): urlsplit(item).port
        for item in env["KAFKA_LISTENERS"].split(",")
    }
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    voter_id, voter_address = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == env["KAFKA_NODE_ID"]
    assert voter_address == f"kafka:{listeners[controller]}"
    for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        parsed = urlsplit(listener)
        assert listeners[parsed.scheme.upper()] == parsed.port and parsed.hostname == "kafka"
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocols)
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", key
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid
    assert (
        int(env["KAFKA_NUM_PARTITIONS"]) == ServiceSettings.model_fields["topic_partitions"].default
    )
    assert any(volume.endswith(":" + env["KAFKA_LOG_DIRS"]) for volume in kafka["volumes"])


def created_databases() -> set[str]:
    sql = (DEPLOY / "postgres" / "init.sql").read_text(encoding="utf-8")
    return set(
        re.findall(r"^\s*CREATE DATABASE\s+([a-z_]+)\s*;", sql, flags=re.MULTILINE | re.IGNORECASE)
    )


def test_postgres_init_creates_one_database_per_service(compose):
    assert created_databases() == set(SETTINGS)
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[1].split(".")[0] == "15"
    assert any(
        v.startswith("./postgres/init.sql:/docker-entrypoint-initdb.d/")
        for v in postgres["volumes"]
    )


# ---- Dockerfile -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_stages() -> list[list[dockerfile.Command]]:
    stages: list[list[dockerfile.Command]] = []
    args: dict[str, str] = {}
    for command in dockerfile.parse_file(str(DEPLOY / "Dockerfile")):
        if command.cmd == "ARG" and not stages:
            name, _, default = command.value[0].partition("=")
            args[name] = default
            continue
        if command.cmd == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], command.value[0])
            command = command._replace(value=(image, *command.value[1:]))
            stages.append([])
        stages[-1].append(command)
    return stages


def commands(stage: list[dockerfile.Command], name: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == name]


def test_dockerfile_builds_a_slim_non_root_image_of_the_project(docker_stages):
    assert len(docker_stages) >= 1
    for stage in docker_stages:
        assert stage[0].value[0] == "python:3.11-slim"
    final = docker_stages[-1]

    builds = " ".join(c.value[0] for stage in docker_stages for c in commands(stage, "RUN"))
    assert re.search(r"pip install \.(\s|$)", builds), (
        "the image installs the project with pip install ."
    )
    assert not re.search(r"pip install[^&]*\[(test|dev)", builds), "no test or dev extras"
    final_runs = " ".join(c.value[0] for c in commands(final, "RUN"))
    assert "apt-get install" not in final_runs and "pip install" not in final_runs
    assert not commands(final, "ADD")

    user = commands(final, "USER")[-1].value[0]
    uid = user.split(":")[0]
    assert uid not in {"root", "0"} and uid.isdigit()

    entrypoint = commands(final, "ENTRYPOINT")[-1]
    assert entrypoint.json and list(entrypoint.value) == ["python", "-m"]
    cmd = commands(final, "CMD")[-1]
    assert cmd.json and importlib.util.find_spec(f"{cmd.value[0]}.__main__") is not None

    exposed = {int(port.split("/")[0]) for c in commands(final, "EXPOSE") for port in c.value}
    assert exposed == {service_port(name) for name in [*SETTINGS, "sandbox"]}


def test_dockerfile_sets_the_listen_address_every_process_reads(docker_stages, monkeypatch):
    values = commands(docker_stages[-1], "ENV")
    env = {}
    for command in values:
        env.update(zip(command.value[0::2], command.value[1::2], strict=True))
    # The image is production (an unset environment is): the operator adds the secrets.
    secrets = {"PAYOUT_WEBHOOK_SECRETS": OPERATOR_ENV["BANK_WEBHOOK_SECRETS"]}
    for name, factory in SETTINGS.items():
        assert settings_from_env(monkeypatch, {**env, **secrets}, factory).host == "0.0.0.0", name
    assert settings_from_env(monkeypatch, env, SandboxSettings).host == "0.0.0.0"


def test_the_modules_the_image_runs_exist():
    for module in ("services.intake", "services.payout", "services.reporting", "services.sandbox"):
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    for name, factory in SETTINGS.items():
        assert default_port(factory) == {"intake": 8001, "payout": 8002, "reporting": 8003}[name]
    assert default_port(SandboxSettings) == SANDBOX_PORT


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_the_build_context_carries_what_the_image_needs(docker_stages):
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        c.value[:-1] for stage in docker_stages for c in commands(stage, "COPY") if not c.flags
    ]
    sources = [source for group in copied for source in group]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignore_excludes(source, patterns), source
    for needed in (
        "pyproject.toml",
        "services/intake/__main__.py",
        "services/payout/migrations/env.py",
        "services/sandbox/data/banks.csv",
        "shared/data/banks.csv",
    ):
        assert not dockerignore_excludes(needed, patterns), needed
    for left_out in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        ".run/embedded/intake.db",
        "services/intake/__pycache__/bootstrap.cpython-311.pyc",
    ):
        assert dockerignore_excludes(left_out, patterns), left_out


def test_pip_install_carries_the_migrations_and_data_files():
    """`pip install .` in the image must carry every non-Python file the services read
    (Alembic templates, CSVs, XSDs): they have to match the package-data patterns."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    assert config["packages"]["find"].get("namespaces", True), (
        "migrations/ and data/ have no __init__.py"
    )
    patterns = [
        p for key, values in config["package-data"].items() if key in {"*", ""} for p in values
    ]
    for package in ("services", "shared"):
        for path in (ROOT / package).rglob("*"):
            if (
                not path.is_file()
                or path.suffix in {".py", ".pyc", ".md"}
                or "__pycache__" in path.parts
            ):
                continue  # code, byte-code and documentation
            assert any(fnmatch.fnmatch(path.name, p) for p in patterns), (
                f"{path.relative_to(ROOT)} would be left out"
            )
    for svc in SETTINGS:
        assert (ROOT / "services" / svc / "migrations" / "env.py").exists()


# ---- Kubernetes -----------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def load_manifests(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomizations() -> dict[Path, dict[str, Any]]:
    return {
        p.parent: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted(K8S.rglob("kustomization.yaml"))
    }


def build(directory: Path, seen: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """What `kubectl kustomize` gives for these files: resources, namespace, images and
    strategic-merge patches of ConfigMap data."""
    directory = directory.resolve()
    for ancestor in seen:
        # kustomize refuses a root that contains one already visited (a cycle).
        assert not ancestor.is_relative_to(directory), f"{directory} contains {ancestor}"
    kustomization = kustomizations()[directory]
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        target = (directory / resource).resolve()
        if target.is_dir():
            objects.extend(build(target, (*seen, directory)))
        else:
            assert target.is_relative_to(directory), f"{resource} is outside {directory}"
            objects.extend(copy.deepcopy(load_manifests(target)))
    for obj in objects:
        if "namespace" in kustomization and obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = kustomization["namespace"]
        for pod in pod_specs(obj):
            for container in pod["containers"]:
                for image in kustomization.get("images", []):
                    if container["image"].split(":")[0] == image["name"]:
                        container["image"] = f"{image['newName']}:{image['newTag']}"
    for entry in kustomization.get("patches", []):
        patch = yaml.safe_load(entry["patch"])
        matches = [
            o
            for o in objects
            if (o["kind"], o["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        assert len(matches) == 1, (
            f"patch target {patch['kind']}/{patch['metadata']['name']} not found"
        )
        assert patch["kind"] == "ConfigMap" and set(patch) <= {
            "apiVersion",
            "kind",
            "metadata",
            "data",
        }
        matches[0]["data"].update(patch["data"])
    return objects


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if obj["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        yield obj["spec"]["template"]["spec"]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return build(K8S)


@pytest.fixture(scope="module")
def staging() -> list[dict[str, Any]]:
    return build(K8S / "staging")


@pytest.fixture(scope="module")
def migrations() -> list[dict[str, Any]]:
    return build(K8S / "migrations")


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_manifest_validates_strictly(version):
    documents = [(path, doc) for path in manifest_files() for doc in load_manifests(path)]
    assert len(documents) >= 25
    failures = []
    for path, doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except (
            kubernetes_validate.ValidationError,
            kubernetes_validate.SchemaNotFoundError,
        ) as error:
            failures.append(
                f"{path.relative_to(ROOT)} {doc['kind']}/{doc['metadata']['name']}: {error}"
            )
    assert failures == []


def test_strict_validation_rejects_misspelt_and_mistyped_fields():
    deployment = copy.deepcopy(load_manifests(K8S / "base" / "intake.yaml")[0])
    kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    job = copy.deepcopy(load_manifests(K8S / "migrations" / "jobs.yaml")[0])
    job["spec"]["backoffLimit"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[0], strict=True)


def test_kustomizations_list_every_manifest_once(production, staging, migrations):
    listed: list[Path] = []
    for directory, kustomization in kustomizations().items():
        assert kustomization["kind"] == "Kustomization"
        for resource in kustomization["resources"]:
            target = (directory / resource).resolve()
            assert target.exists(), f"{directory}: {resource}"
            if target.is_file():
                listed.append(target)
            else:
                assert (target / "kustomization.yaml").exists(), f"{directory}: {resource}"
    assert sorted(listed) == manifest_files()

    images = {
        (i["name"], i["newName"], i["newTag"])
        for k in kustomizations().values()
        for i in k.get("images", [])
    }
    assert len(images) == 1, "every kustomization ships the same image"
    ((_, registry_name, tag),) = images
    for objects in (production, staging, migrations):
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == "benefits", obj["metadata"]["name"]
            for pod in pod_specs(obj):
                assert {c["image"] for c in pod["containers"]} == {f"{registry_name}:{tag}"}

    # Production holds neither the sandbox nor the migration Jobs (they run first, apart).
    assert not [
        o
        for o in production
        if o["metadata"].get("labels", {}).get("benefits.example.vn/non-production")
    ]
    assert not [o for o in production if o["kind"] == "Job"]
    assert {o["kind"] for o in migrations} == {"Job"}
    assert {(o["kind"], o["metadata"]["name"]) for o in production} < {
        (o["kind"], o["metadata"]["name"]) for o in staging
    }


def all_manifests() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in load_manifests(path)]


def parse_quantity(value: str) -> float:
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "m": 10**-3,
        "": 1,
    }
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()
    return float(number) * units[unit]


def test_pods_meet_the_restricted_pod_security_standard_and_budgets(docker_stages):
    image_user = int(commands(docker_stages[-1], "USER")[-1].value[0].split(":")[0])
    pods = [(obj["metadata"]["name"], pod) for obj in all_manifests() for pod in pod_specs(obj)]
    assert len(pods) == 10  # 3 APIs, 3 workers, 3 migrations, the sandbox
    for name, pod in pods:
        assert pod["automountServiceAccountToken"] is False, name
        # Service links would put e.g. SANDBOX_PORT=tcp://… into the settings' environment.
        assert pod["enableServiceLinks"] is False, name
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == image_user, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert any(
                m["mountPath"] == "/tmp" and m["name"] in tmp_volumes
                for m in container["volumeMounts"]
            ), name
            resources = container["resources"]
            for kind in ("cpu", "memory"):
                assert parse_quantity(resources["requests"][kind]) <= parse_quantity(
                    resources["limits"][kind]
                ), name
            assert parse_quantity(resources["limits"]["memory"]) <= MEMORY_CEILING, name


def container_env(
    objects: list[dict[str, Any]], container: dict[str, Any], replace: dict[str, str]
) -> dict[str, str]:
    """The environment a container gets from its envFrom and env references."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(find(objects, "Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = find(objects, "Secret", ref["name"])["stringData"][ref["key"]]
    return {key: replace.get(key, value) for key, value in env.items()}


def real_secrets(service: str) -> dict[str, str]:
    prefix = service.upper()
    return {
        f"{prefix}_WEBHOOK_SECRETS": OPERATOR_ENV["BANK_WEBHOOK_SECRETS"],
        f"{prefix}_DATABASE_URL": f"postgresql+asyncpg://{service}:pw@db.internal:5432/{service}",
    }


def http_probe(container: dict[str, Any], probe: str) -> tuple[str, int]:
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return get["path"], ports[get["port"]] if isinstance(get["port"], str) else get["port"]


def test_each_service_has_its_api_worker_autoscaler_and_migration(
    production, migrations, monkeypatch
):
    for service, factory in SETTINGS.items():
        port = default_port(factory)
        app = app_of(service)

        api = find(production, "Deployment", f"{service}-api")
        pod_labels = api["spec"]["template"]["metadata"]["labels"]
        assert api["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        (container,) = api["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [f"services.{service}", "api"]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        assert http_probe(container, "livenessProbe") == ("/healthz", port)
        assert http_probe(container, "readinessProbe") == ("/readyz", port)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert serves(app, http_probe(container, probe)[0]), (service, probe)
        annotations = api["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == port and serves(
            app, annotations["prometheus.io/path"]
        )

        svc = find(production, "Service", f"{service}-api")
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        (service_port_,) = svc["spec"]["ports"]
        assert service_port_["port"] == port and service_port_["targetPort"] in {
            p["name"] for p in container["ports"]
        }
        budget = find(production, "PodDisruptionBudget", f"{service}-api")
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["spec"]["minAvailable"] < api["spec"]["replicas"]

        worker = find(production, "Deployment", f"{service}-worker")
        worker_labels = worker["spec"]["template"]["metadata"]["labels"]
        assert worker["spec"]["selector"]["matchLabels"].items() <= worker_labels.items()
        assert not svc["spec"]["selector"].items() <= worker_labels.items(), (
            "the Service must not reach workers"
        )
        assert "replicas" not in worker["spec"], "the autoscaler owns the worker's replica count"
        (worker_container,) = worker["spec"]["template"]["spec"]["containers"]
        assert worker_container["args"] == [f"services.{service}", "worker"]
        assert worker_container["resources"]["requests"]["cpu"]

        hpa = find(production, "HorizontalPodAutoscaler", f"{service}-worker")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"{service}-worker",
        }
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] == 1

        job = find(migrations, "Job", f"{service}-migrate")
        (job_container,) = job["spec"]["template"]["spec"]["containers"]
        assert job_container["args"] == [f"services.{service}", "migrate"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}

        # Consumers scale out to one per partition of the topics the service creates.
        settings = settings_from_env(
            monkeypatch, container_env(production, worker_container, real_secrets(service)), factory
        )
        assert hpa["spec"]["maxReplicas"] == settings.topic_partitions == 6


def test_kubernetes_settings_load_and_the_placeholders_cannot_go_live(
    production, migrations, monkeypatch, tmp_path
):
    objects = production + migrations
    for service, factory in SETTINGS.items():
        containers = [
            c
            for name in (f"{service}-api", f"{service}-worker")
            for c in find(production, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        ] + find(migrations, "Job", f"{service}-migrate")["spec"]["template"]["spec"]["containers"]
        for container in containers:
            assert not any(i["name"].endswith("_JWT_SECRET") for i in container.get("env", []))
            # As shipped, payout's placeholder webhook secrets make it refuse to start.
            if service == "payout":
                with pytest.raises(ValueError, match="development placeholder"):
                    settings_from_env(monkeypatch, container_env(objects, container, {}), factory)

            settings = settings_from_env(
                monkeypatch, container_env(objects, container, real_secrets(service)), factory
            )
            assert settings.environment == "production" and not settings.embedded
            assert settings.host == "0.0.0.0" and settings.port == default_port(factory)
            assert urlsplit(settings.database_url).scheme == "postgresql+asyncpg"
            placeholder_url = urlsplit(
                container_env(objects, container, {})[f"{service.upper()}_DATABASE_URL"]
            )
            assert placeholder_url.path == f"/{service}" and "REPLACE" in (
                placeholder_url.password or ""
            )
            assert all(
                re.fullmatch(r"[\w.-]+:\d+", s) for s in settings.kafka_bootstrap_servers.split(",")
            )
            if service != "intake":
                jwks = urlsplit(settings.jwks_url)
                intake_service = find(production, "Service", "intake-api")
                assert jwks.hostname == "intake-api.benefits.svc.cluster.local"
                assert jwks.port == intake_service["spec"]["ports"][0]["port"]
                assert jwks.path == WELL_KNOWN_JWKS and settings.jwks_file is None

    # Intake's API alone mounts the signing key, where INTAKE_SIGNING_KEY_FILE says.
    mounts = {}
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        secret_volumes = {
            v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v
        }
        for container in pod["containers"]:
            for mount in container.get("volumeMounts", []):
                if secret_volumes.get(mount["name"]) == "intake-signing-key":
                    mounts[obj["metadata"]["name"]] = (mount, pod)
    assert set(mounts) == {"intake-api"}, "no other process holds a key that can sign"
    mount, pod = mounts["intake-api"]
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    api = find(production, "Deployment", "intake-api")["spec"]["template"]["spec"]["containers"][0]
    settings = settings_from_env(monkeypatch, container_env(objects, api, {}), IntakeSettings)
    key_path = settings.signing_key_file
    assert key_path is not None and str(key_path.parent) == mount["mountPath"]
    # The shipped placeholder is no key: intake refuses to start with it; a real key is taken.
    secret = find(production, "Secret", "intake-signing-key")["stringData"]
    assert set(secret) == {key_path.name}
    placeholder = tmp_path / key_path.name
    placeholder.write_text(secret[key_path.name])
    with pytest.raises(RuntimeError, match="INTAKE_SIGNING_KEY_FILE"):
        IntakeSettings(environment="production", signing_key_file=placeholder).signing_key()
    real = tmp_path / "real.pem"
    real.write_bytes(tokens.KEY.to_pem())
    assert (
        IntakeSettings(environment="production", signing_key_file=real).signing_key().kid
        == tokens.KEY.kid
    )


def test_the_sandbox_is_non_production_and_wired_to_payout(staging, production, monkeypatch):
    sandbox_objects = load_manifests(K8S / "sandbox" / "sandbox.yaml")
    assert {o["kind"] for o in sandbox_objects} == {"ConfigMap", "Secret", "Deployment", "Service"}
    for obj in sandbox_objects:
        assert obj["metadata"]["labels"]["benefits.example.vn/non-production"] == "true", obj[
            "kind"
        ]
    deployment = find(staging, "Deployment", "sandbox")
    assert deployment["spec"]["replicas"] == 1, "its ledgers live in memory"
    assert (
        deployment["spec"]["template"]["metadata"]["labels"]["benefits.example.vn/non-production"]
        == "true"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    module, *args = container["args"]
    assert module == "services.sandbox"
    env = container_env(staging, container, {})
    settings = settings_from_env(monkeypatch, env, lambda: SandboxSettings(**sandbox_args(args)))
    assert (
        settings.host == "0.0.0.0"
        and settings.port == SANDBOX_PORT == container["ports"][0]["containerPort"]
    )
    app = app_of("sandbox")
    for probe in ("livenessProbe", "readinessProbe"):
        path, port = http_probe(container, probe)
        assert port == SANDBOX_PORT and serves(app, path), probe

    callback = urlsplit(settings.callback_base)
    payout_service = find(staging, "Service", callback.hostname)
    assert payout_service["spec"]["ports"][0]["port"] == callback.port

    sandbox_service = find(staging, "Service", "sandbox")
    bank = urlsplit(find(staging, "ConfigMap", "payout-config")["data"]["PAYOUT_BANK_BASE_URL"])
    assert (bank.hostname, bank.port) == ("sandbox", sandbox_service["spec"]["ports"][0]["port"])
    production_bank = urlsplit(
        find(production, "ConfigMap", "payout-config")["data"]["PAYOUT_BANK_BASE_URL"]
    )
    assert production_bank.hostname != "sandbox"

    payout_secrets = json.loads(
        find(staging, "Secret", "payout-secrets")["stringData"]["PAYOUT_WEBHOOK_SECRETS"]
    )
    assert settings.webhook_secrets == payout_secrets, (
        "the sandbox signs with the secrets payout checks"
    )


# ---- Prometheus and Grafana -----------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "benefits.json").read_text(encoding="utf-8"))


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${datasource}": "prometheus",
    "$service": ".*",
}


def promql(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return promql_parser.parse(expr)


def selected_metrics(expr: Any) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(expr, visit)
    return names


def test_grafana_dashboard_is_a_valid_model_with_a_query_on_every_panel(dashboard):
    assert {"uid", "title", "schemaVersion", "panels", "templating", "time"} <= set(dashboard)
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource"
        and variables["datasource"]["query"] == "prometheus"
    )
    promql(
        variables["service"]["query"]["query"]
        .replace("label_values(", "count by (service) (")
        .replace(", service)", ")")
    )

    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    metrics: set[str] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            metrics |= selected_metrics(promql(target["expr"]))
    # Every metric the brief names is charted, and nothing else (a misspelt name charts nothing).
    assert metrics == BUSINESS_METRICS | HTTP_METRICS

    broken = "sum(rate(http_requests_total[$__rate_interval])"
    with pytest.raises(ValueError):
        promql(broken)


def test_dashboard_http_metrics_are_the_ones_the_services_export():
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry, "intake")
    metrics.requests.labels("GET", "/healthz", "200").inc()
    metrics.latency.labels("GET").observe(0.01)
    samples = {s.name for family in registry.collect() for s in family.samples}
    assert HTTP_METRICS <= samples


def test_prometheus_scrapes_each_service_metrics_with_a_service_label(compose, dashboard):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SETTINGS)
    services = compose["services"]
    for service, job in jobs.items():
        assert serves(app_of(service), job.get("metrics_path", "/metrics"))
        (static,) = job["static_configs"]
        (target,) = static["targets"]
        host, port = target.split(":")
        assert host == f"{service}-api" and host in services
        assert int(port) == default_port(SETTINGS[service])
        assert static["labels"]["service"] == service
    assert any("by (service" in t["expr"] for p in dashboard["panels"] for t in p["targets"])

    prometheus = services["prometheus"]
    assert any(v.startswith("./prometheus/prometheus.yml:") for v in prometheus["volumes"])


def test_grafana_provisioning_points_at_the_prometheus_and_the_dashboard(compose):
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    url = urlsplit(datasource["url"])
    assert (
        datasource["type"] == "prometheus"
        and url.hostname == "prometheus"
        and url.hostname in compose["services"]
    )
    assert any(p.endswith(f":{url.port}") for p in compose["services"]["prometheus"]["ports"])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "benefits.yaml").read_text())[
        "providers"
    ]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1)
        for v in compose["services"]["grafana"]["volumes"]
        if v.startswith(".")
    )
    assert mounts["./grafana/benefits.json"] == f"{provider['options']['path']}/benefits.json"
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
