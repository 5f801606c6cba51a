"""Who may call what: every route of every service, what it asks of the caller, and the
ownership rule. One table; `tests/security/test_authority_matrix.py` calls every route with
every role below and checks the answer against it, and fails for a route without a row.

The ownership rule: an agency acts only on the beneficiaries and entitlements it pays (a
beneficiary is paid by the agencies of their open entitlements) and on the claims of its
schemes; a client without an agency that may read the registry (`beneficiaries:read`) reaches
every record; any other client (the portal) reaches only the claims it filed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.auth import AGENCY_SCOPE_PREFIX, Principal

REGISTRY_SCOPE = "beneficiaries:read"

Access = Literal["public", "client-credentials", "signed", "token"]
# What a route acts on, when the ownership rule applies to it:
#   beneficiary: the agencies of the person's open entitlements; entitlement: its agency;
#   claim: the agency of its scheme and the client that filed it; upload: the uploading client
#   and its agency; listing: answers only what the caller reaches (filtered, never refused);
#   lookup: like beneficiary, but refused as 404 (a lookup by CCCD must not tell who is registered);
#   decision: the agency of the claim's scheme, never its filer.
Ownership = Literal[
    "beneficiary", "entitlement", "claim", "upload", "listing", "lookup", "decision"
]


@dataclass(frozen=True, slots=True)
class Rule:
    service: str
    method: str
    path: str
    access: Access
    scopes: tuple[str, ...] = ()  # a token holding all of them (access "token")
    owner: Ownership | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who a record belongs to: the agencies that pay (or decide) it, and who filed it."""

    agencies: frozenset[str]
    filed_by: str | None = None


def may_act_on(principal: Principal, owner: Owner) -> bool:
    """The ownership rule (see the module's docstring)."""
    if principal.agency is not None:
        return principal.agency in owner.agencies
    if principal.can(REGISTRY_SCOPE):
        return True
    return owner.filed_by is not None and owner.filed_by == principal.client_id


# --- roles: the development clients and the other kinds of caller -----------------------------

AGENCY_SCOPES = (
    "claims:read",
    "decisions:write",
    "roll:write",
    "payment-methods:write",
    "beneficiaries:read",
)
INTAKE_SCOPES = (
    "claims:write",
    "claims:read",
    "decisions:write",
    "roll:write",
    "payment-methods:write",
    "beneficiaries:read",
    "pii:read",
    "audit:read",
)

# --- people: roles, what each may do, what each is bound to ------------------------------------

AGENCIES = ("BHXH", "DOLISA", "ESC")
# A person's roles -> the scopes of their token (intake's and an external issuer's alike).
PERSON_ROLES: dict[str, frozenset[str]] = {
    "maker": frozenset(
        {
            "claims:read",
            "roll:write",
            "payment-methods:write",
            "beneficiaries:read",
            "payout:read",
            "cycles:prepare",
        }
    ),
    "checker": frozenset(
        {"claims:read", "decisions:write", "beneficiaries:read", "payout:read", "cycles:approve"}
    ),
    "post-office": frozenset({"payout:read", "cash:handover"}),
    "commune-official": frozenset({"beneficiaries:read", "payout:read"}),
    "leader": frozenset({"reports:read", "payout:read"}),
    "administrator": frozenset(
        {
            "users:write",
            "audit:read",
            "envelopes:write",
            "calendar:write",
            "reports:read",
            "reports:write",
            "payout:read",
            "payout:operate",
        }
    ),
}
# Every role but these acts for one agency; these also for a list of communes.
UNBOUND_ROLES = frozenset({"leader", "administrator"})
COMMUNE_ROLES = frozenset({"post-office", "commune-official"})


def scopes_of_roles(roles: frozenset[str] | set[str]) -> frozenset[str]:
    return frozenset().union(*(PERSON_ROLES.get(r, frozenset()) for r in roles))


def binding_problems(
    roles: frozenset[str] | set[str], agency: str | None, communes: frozenset[str] | set[str]
) -> list[str]:
    """Why a person with these roles may not act (empty: they may). Roles bound to an agency need
    one of the agencies; a post office's staff and a commune official need their communes."""
    problems = []
    unknown = sorted(set(roles) - set(PERSON_ROLES))
    if unknown:
        problems.append(f"unknown role(s): {', '.join(unknown)}")
    if agency is not None and agency not in AGENCIES:
        problems.append(f"the agency must be one of {', '.join(AGENCIES)}")
    bound = sorted(set(roles) & set(PERSON_ROLES) - UNBOUND_ROLES)
    if bound and agency is None:
        problems.append(f"the role(s) {', '.join(bound)} act for an agency, and none is given")
    local = sorted(set(roles) & COMMUNE_ROLES)
    if local and not communes:
        problems.append(f"the role(s) {', '.join(local)} act for communes, and none are given")
    return problems


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in caller of the matrix: intake's development users of the same name."""

    roles: frozenset[str]
    agency: str | None = None
    communes: frozenset[str] = frozenset()


VINH_PHUC_COMMUNES = frozenset({"08707", "08710", "08713"})  # Vĩnh Yên's wards (the 2025 list)
PEOPLE: dict[str, Person] = {
    **{
        f"{agency.lower()}-{role}": Person(frozenset({role}), agency)
        for agency in AGENCIES
        for role in ("maker", "checker")
    },
    # A small office's officer prepares some cycles and checks others: payout's four-eyes rule
    # (never one's own part) holds, not a ban on holding both roles.
    "bhxh-officer": Person(frozenset({"maker", "checker"}), "BHXH"),
    "post-office": Person(frozenset({"post-office"}), "BHXH", VINH_PHUC_COMMUNES),
    "commune-official": Person(frozenset({"commune-official"}), "DOLISA", frozenset({"08707"})),
    "leader": Person(frozenset({"leader"})),
    "administrator": Person(frozenset({"administrator"})),
}


def principal_of_role(role: str, scopes: frozenset[str]) -> Principal:
    """The caller `role` of ROLES stands for (a person of PEOPLE, or a client)."""
    person = PEOPLE.get(role)
    if person is None:
        return Principal(role, scopes)
    return Principal(
        role,
        scopes,
        kind="person",
        roles=person.roles,
        agency_claim=person.agency,
        communes=person.communes,
    )


# role -> the scopes of its bearer token; None: no token at all.
ROLES: dict[str, frozenset[str] | None] = {
    "anonymous": None,
    "no-scope": frozenset(),
    "portal": frozenset({"claims:write", "claims:read"}),
    "bhxh": frozenset({*AGENCY_SCOPES, AGENCY_SCOPE_PREFIX + "BHXH"}),
    "dolisa": frozenset({*AGENCY_SCOPES, AGENCY_SCOPE_PREFIX + "DOLISA"}),
    "esc": frozenset({*AGENCY_SCOPES, AGENCY_SCOPE_PREFIX + "ESC"}),
    "admin": frozenset(INTAKE_SCOPES),
    "payout-reader": frozenset({"payout:read"}),
    "payout-operator": frozenset({"payout:read", "payout:operate", "pii:read"}),
    "reports-reader": frozenset({"reports:read"}),
    "reports-editor": frozenset({"reports:read", "reports:write"}),
    # people signed in at intake (their tokens' scopes are their roles')
    **{name: scopes_of_roles(person.roles) for name, person in PEOPLE.items()},
}


def _public(service: str, path: str, note: str = "") -> Rule:
    return Rule(service, "GET", path, "public", note=note)


def _operations(service: str) -> list[Rule]:
    return [
        _public(service, "/healthz", "liveness"),
        _public(service, "/readyz", "readiness: database and bus"),
        _public(service, "/metrics", "Prometheus metrics: counts and latencies, no personal data"),
        _public(service, "/openapi.json"),
        _public(service, "/docs"),
        _public(service, "/docs/oauth2-redirect"),
        _public(service, "/redoc"),
    ]


def _token(
    service: str,
    method: str,
    path: str,
    *scopes: str,
    owner: Ownership | None = None,
    note: str = "",
) -> Rule:
    return Rule(service, method, path, "token", tuple(scopes), owner, note)


RULES: tuple[Rule, ...] = (
    # --- intake ---
    *_operations("intake"),
    Rule(
        "intake",
        "POST",
        "/oauth/token",
        "client-credentials",
        note="a registered client's id and secret (RFC 6749 §4.4), or a person's username and "
        "password (grant_type=password); no bearer token",
    ),
    _public("intake", "/.well-known/openid-configuration", "the issuer's OpenID Connect discovery"),
    _public("intake", "/.well-known/jwks.json", "the public keys that verify intake's tokens"),
    _token("intake", "POST", "/v1/users", "users:write", note="people who sign in; no hashes"),
    _token("intake", "GET", "/v1/users", "users:write"),
    _token("intake", "POST", "/v1/claims", "claims:write"),
    _token(
        "intake",
        "GET",
        "/v1/claims",
        "claims:read",
        owner="listing",
        note="an agency sees its schemes' claims, the portal the claims it filed",
    ),
    _token("intake", "GET", "/v1/claims/{claim_id}", "claims:read", owner="claim"),
    _token("intake", "POST", "/v1/claims/{claim_id}/decision", "decisions:write", owner="decision"),
    _token(
        "intake",
        "GET",
        "/v1/unemployment/benefit",
        "claims:read",
        note="the unemployment rule asked: amount, months and cap for the facts given",
    ),
    _token(
        "intake",
        "GET",
        "/v1/entitlements/{entitlement_id}",
        "beneficiaries:read",
        owner="entitlement",
    ),
    _token(
        "intake",
        "POST",
        "/v1/entitlements/{entitlement_id}/stop",
        "decisions:write",
        owner="entitlement",
    ),
    _token(
        "intake",
        "POST",
        "/v1/roll/uploads",
        "roll:write",
        note="each row only for a scheme of the caller's agency",
    ),
    _token("intake", "GET", "/v1/roll/uploads/{upload_id}", "roll:write", owner="upload"),
    _token(
        "intake", "GET", "/v1/roll/uploads/{upload_id}/rejections.csv", "roll:write", owner="upload"
    ),
    _token(
        "intake",
        "POST",
        "/v1/payment-methods/uploads",
        "payment-methods:write",
        note="a row for a person the caller's agency does not pay is refused",
    ),
    _token(
        "intake",
        "GET",
        "/v1/payment-methods/uploads/{upload_id}",
        "payment-methods:write",
        owner="upload",
    ),
    _token(
        "intake",
        "GET",
        "/v1/payment-methods/uploads/{upload_id}/rejections.csv",
        "payment-methods:write",
        owner="upload",
    ),
    _token(
        "intake",
        "GET",
        "/v1/beneficiaries/{beneficiary_id}",
        "beneficiaries:read",
        owner="beneficiary",
    ),
    _token("intake", "POST", "/v1/beneficiaries/lookup", "beneficiaries:read", owner="lookup"),
    _token(
        "intake",
        "GET",
        "/v1/beneficiaries/{beneficiary_id}/payment-methods",
        "beneficiaries:read",
        owner="beneficiary",
    ),
    _token(
        "intake",
        "PUT",
        "/v1/beneficiaries/{beneficiary_id}/payment-method",
        "payment-methods:write",
        owner="beneficiary",
        note="only the paying agency redirects the money",
    ),
    _token(
        "intake",
        "GET",
        "/v1/stop-proposals",
        "beneficiaries:read",
        owner="listing",
        note="identity revalidation's proposals: an agency sees its own",
    ),
    _token("intake", "GET", "/v1/audit", "audit:read"),
    # --- payout --- (its tokens carry no agency: payout's readers are the province's operators)
    *_operations("payout"),
    _token(
        "payout",
        "POST",
        "/v1/cycles",
        "cycles:prepare",
        note="prepares only (a maker, or an operator client): nothing is sent before approval",
    ),
    _token("payout", "GET", "/v1/status", "payout:read"),
    _token("payout", "GET", "/v1/cycles", "payout:read"),
    _token("payout", "GET", "/v1/cycles/{period}", "payout:read"),
    _token(
        "payout",
        "POST",
        "/v1/cycles/{period}/approvals",
        "cycles:approve",
        note="a person, checker of the part's agency, who prepared none of it (four eyes)",
    ),
    _token("payout", "GET", "/v1/cycles/{period}/approvals", "payout:read"),
    _token("payout", "PUT", "/v1/envelopes", "envelopes:write"),
    _token("payout", "GET", "/v1/envelopes", "payout:read"),
    _token("payout", "PUT", "/v1/calendar", "calendar:write"),
    _token("payout", "GET", "/v1/calendar", "payout:read"),
    _token("payout", "GET", "/v1/installments", "payout:read"),
    _token("payout", "GET", "/v1/installments/{installment_id}", "payout:read"),
    _token("payout", "GET", "/v1/batches", "payout:read"),
    _token("payout", "GET", "/v1/batches/{batch_id}", "payout:read"),
    _token("payout", "GET", "/v1/ledger", "payout:read"),
    _token("payout", "POST", "/v1/reconciliations", "payout:operate"),
    _token("payout", "GET", "/v1/reconciliations", "payout:read"),
    _token("payout", "GET", "/v1/reconciliations/{run_id}", "payout:read"),
    _token("payout", "GET", "/v1/beneficiaries/{beneficiary_id}/payment-method", "payout:read"),
    _token("payout", "GET", "/v1/anomalies", "payout:read"),
    Rule(
        "payout",
        "POST",
        "/v1/webhooks/banks/{bank_bin}",
        "signed",
        note="the bank's HMAC signature (X-Signature over timestamp and body); no bearer token",
    ),
    Rule(
        "payout",
        "POST",
        "/v1/webhooks/iso/{bank_bin}",
        "signed",
        note="the bank's HMAC signature over the camt.054 body; no bearer token",
    ),
    Rule(
        "payout",
        "POST",
        "/v1/webhooks/vnpost",
        "signed",
        note="the post office's HMAC signature; no bearer token",
    ),
    _token(
        "payout",
        "GET",
        "/v1/payment-methods",
        "payout:read",
        note="accounts to fix (verification failed, flagged by a bank); a person sees their "
        "agency's and communes' people",
    ),
    _token(
        "payout",
        "GET",
        "/v1/cash-lists",
        "payout:read",
        note="the post office's cash lists; its staff see their communes' only",
    ),
    _token(
        "payout",
        "POST",
        "/v1/cash-lists/items/{end_to_end_id}/handover",
        "cash:handover",
        note="post-office staff, in their communes only (403 otherwise)",
    ),
    _token(
        "payout",
        "POST",
        "/v1/cash-lists/items/{end_to_end_id}/return",
        "cash:handover",
        note="post-office staff, in their communes only (403 otherwise)",
    ),
    # --- reporting --- (in production every /v1 route asks for reports:read)
    *_operations("reporting"),
    _public("reporting", "/", "redirects to the dashboard"),
    _public("reporting", "/dashboard", "the page; its figures come from the API"),
    _public("reporting", "/static/{path}", "the dashboard's scripts and styles"),
    _token("reporting", "GET", "/v1/kpis", "reports:read"),
    _token("reporting", "GET", "/v1/breakdowns/{dimension}", "reports:read"),
    _token("reporting", "GET", "/v1/timeseries", "reports:read"),
    _token("reporting", "GET", "/v1/periods", "reports:read"),
    _token("reporting", "GET", "/v1/areas", "reports:read"),
    _token("reporting", "GET", "/v1/freshness", "reports:read"),
    _token("reporting", "GET", "/v1/exports/{dimension}.{fmt}", "reports:read"),
    _token("reporting", "GET", "/v1/targets", "reports:read"),
    _token("reporting", "GET", "/v1/targets/progress", "reports:read"),
    _token("reporting", "POST", "/v1/targets", "reports:read", "reports:write"),
    _token("reporting", "GET", "/v1/targets/{target_id}", "reports:read"),
    _token("reporting", "PUT", "/v1/targets/{target_id}", "reports:read", "reports:write"),
    _token("reporting", "DELETE", "/v1/targets/{target_id}", "reports:read", "reports:write"),
    _token("reporting", "GET", "/v1/targets/{target_id}/progress", "reports:read"),
    _token("reporting", "GET", "/v1/envelopes", "reports:read"),
)

RULE_OF: dict[tuple[str, str, str], Rule] = {(r.service, r.method, r.path): r for r in RULES}


def expected(
    rule: Rule, scopes: frozenset[str] | None, owner: Owner | None = None, client_id: str = ""
) -> Literal["allowed", "unauthenticated", "forbidden", "hidden"]:
    """What `rule` answers a caller with these token scopes (None: no token) acting on a record
    of `owner`: allowed, refused for want of credentials (401), refused (403) or hidden (404)."""
    if rule.access == "public":
        return "allowed"
    if rule.access in ("client-credentials", "signed"):
        return "unauthenticated"  # a bearer token is never what these routes ask for
    if scopes is None:
        return "unauthenticated"
    if not set(rule.scopes) <= scopes:
        return "forbidden"
    if rule.owner in (None, "listing") or owner is None:
        return "allowed"
    if may_act_on(principal_of_role(client_id, scopes), owner):
        return "allowed"
    return "hidden" if rule.owner == "lookup" else "forbidden"


def matrix() -> list[tuple[Rule, dict[str, str]]]:
    """The table as rows of route -> {role: answer} (records owned by BHXH, filed by the portal)."""
    owner = Owner(frozenset({"BHXH"}), "portal")
    return [
        (rule, {role: expected(rule, scopes, owner, role) for role, scopes in ROLES.items()})
        for rule in RULES
    ]
