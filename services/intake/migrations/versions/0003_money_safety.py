"""Money-safety guards: ownership, one active entitlement per person and scheme, contract-wide
columns, fenced leases and exact reconciliation.

Revision ID: intake_0003
Revises: intake_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- one active open-ended entitlement per person and scheme ---------------------------------
    _refuse_duplicate_open_entitlements()
    op.create_index(
        "uq_entitlements_one_open_per_scheme",
        "entitlements",
        ["beneficiary_id", "scheme"],
        unique=True,
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    # --- end: one active open-ended entitlement per person and scheme ----------------------------


def downgrade() -> None:
    # --- one active open-ended entitlement per person and scheme ---------------------------------
    op.drop_index("uq_entitlements_one_open_per_scheme", table_name="entitlements")
    # --- end: one active open-ended entitlement per person and scheme ----------------------------


_OPEN = "status = 'ACTIVE' AND schedule_kind = 'OPEN_MONTHLY'"


def _refuse_duplicate_open_entitlements() -> None:
    """People already granted a scheme twice are the agency's to resolve (stop one of them):
    the upgrade names how many and stops rather than choose for it."""
    duplicated = (
        op.get_bind()
        .execute(
            sa.text(
                f"SELECT COUNT(*) FROM (SELECT beneficiary_id, scheme FROM entitlements WHERE {_OPEN} "
                "GROUP BY beneficiary_id, scheme HAVING COUNT(*) > 1) AS twice"
            )
        )
        .scalar_one()
    )
    if duplicated:
        raise RuntimeError(
            f"{duplicated} person-scheme pairs hold more than one active open-ended entitlement; "
            "stop the extra ones (POST /v1/entitlements/{id}/stop) and upgrade again"
        )
