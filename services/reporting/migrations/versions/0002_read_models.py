"""Read models (facts, people, cubes), targets and projection state.

Revision ID: reporting_0002
Revises: reporting_0001
"""

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = "reporting_0002"
down_revision = "reporting_0001"
branch_labels = None
depends_on = None

MONTHLY_SCHEMES = "PENSION,SI_ALLOWANCE,MERITORIOUS,SOCIAL_PROTECTION"


def _area_columns() -> list[sa.Column]:
    return [
        sa.Column("area_commune", sa.String(16), nullable=False),
        sa.Column("area_list", sa.Date, nullable=False),
        sa.Column("area_district", sa.String(16), nullable=False),
        sa.Column("area_province", sa.String(8), nullable=False),
        sa.Column("area_type", sa.String(8), nullable=False),
    ]


def _counter(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Consumers look up hundreds of ids at once (`id IN (...)`, the inbox's too). After five runs
        # PostgreSQL may switch such a prepared statement to a generic plan that filters the ids row
        # by row instead of using the index: hundreds of milliseconds per batch once the inbox is large.
        op.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', "
            "current_database()); END $$"
        )
    state = op.create_table(
        "projection_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("events_applied", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rebuild_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(
        state, [{"name": "projections", "generation": 1, "state": "ACTIVE", "events_applied": 0}]
    )

    op.create_table(
        "payment_facts",
        sa.Column("installment_id", sa.String(64), primary_key=True),
        sa.Column("beneficiary_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("commune_code", sa.String(16), nullable=False),
        sa.Column("list_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_payment_facts_person", "payment_facts", ["period", "beneficiary_id", "scheme"]
    )

    op.create_table(
        "payment_people",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("beneficiary_id", sa.String(64), primary_key=True),
        sa.Column("scheme", sa.String(32), primary_key=True),
        sa.Column("commune_code", sa.String(16), nullable=True),
        sa.Column("list_date", sa.Date, nullable=True),
        sa.Column("agency", sa.String(16), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
    )

    op.create_table(
        "claim_facts",
        sa.Column("claim_id", sa.String(64), primary_key=True),
        sa.Column("received_period", sa.String(7), nullable=True),
        sa.Column("received_commune", sa.String(16), nullable=True),
        sa.Column("received_list", sa.Date, nullable=True),
        sa.Column("received_scheme", sa.String(32), nullable=True),
        sa.Column("received_agency", sa.String(16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_period", sa.String(7), nullable=True),
        sa.Column("decided_commune", sa.String(16), nullable=True),
        sa.Column("decided_list", sa.Date, nullable=True),
        sa.Column("decided_scheme", sa.String(32), nullable=True),
        sa.Column("decided_agency", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    )

    op.create_table(
        "payment_cube",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("commune_code", sa.String(16), primary_key=True),
        sa.Column("list_date", sa.Date, primary_key=True),
        sa.Column("scheme", sa.String(32), primary_key=True),
        sa.Column("agency", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        *_area_columns(),
        *[
            _counter(n)
            for n in (
                "people_paid",
                "paid_count",
                "paid_amount",
                "pending_count",
                "pending_amount",
                "failed_count",
                "failed_amount",
                "returned_count",
                "returned_amount",
                "cancelled_count",
                "cancelled_amount",
            )
        ],
    )
    op.create_index("ix_payment_cube_scheme_period", "payment_cube", ["scheme", "period"])

    op.create_table(
        "claim_cube",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("commune_code", sa.String(16), primary_key=True),
        sa.Column("list_date", sa.Date, primary_key=True),
        sa.Column("scheme", sa.String(32), primary_key=True),
        sa.Column("agency", sa.String(16), primary_key=True),
        *_area_columns(),
        *[_counter(n) for n in ("received", "approved", "rejected")],
    )

    op.create_table(
        "payment_rollup",
        *[
            sa.Column(n, sa.String(size), primary_key=True)
            for n, size in (
                ("period", 7),
                ("area_province", 8),
                ("area_district", 16),
                ("area_type", 8),
                ("scheme", 32),
                ("agency", 16),
                ("channel", 32),
            )
        ],
        *[
            _counter(n)
            for n in (
                "people_paid",
                "paid_count",
                "paid_amount",
                "pending_count",
                "pending_amount",
                "failed_count",
                "failed_amount",
                "returned_count",
                "returned_amount",
                "cancelled_count",
                "cancelled_amount",
            )
        ],
    )
    op.create_table(
        "claim_rollup",
        *[
            sa.Column(n, sa.String(size), primary_key=True)
            for n, size in (
                ("period", 7),
                ("area_province", 8),
                ("area_district", 16),
                ("area_type", 8),
                ("scheme", 32),
                ("agency", 16),
            )
        ],
        *[_counter(n) for n in ("received", "approved", "rejected")],
    )

    targets = op.create_table(
        "targets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("title_vi", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("area_type", sa.String(8), nullable=False),
        sa.Column("area_level", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(16), nullable=True),
        sa.Column("schemes", sa.Text, nullable=False),
        sa.Column("target_bp", sa.Integer, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        targets,
        [
            {
                "id": "5b0f3c1e-2023-4c25-9a25-000000002023",
                "code": "vinh-phuc-2023-urban-pension-si",
                "title_vi": "Đô thị: 25% người hưởng lương hưu, trợ cấp BHXH nhận không dùng tiền mặt (Công văn 2695/UBND)",
                "title_en": "Urban areas: 25% of pension and social-insurance-allowance recipients paid without cash "
                "(Official Letter 2695)",
                "area_type": "URBAN",
                "area_level": "province",
                "area_code": None,
                "schemes": "PENSION,SI_ALLOWANCE",
                "target_bp": 2500,
                "deadline": date(2023, 12, 31),
                "created_at": now,
                "updated_at": now,
            },
            {
                "id": "5b0f3c1e-2025-4c25-9a25-000000002025",
                "code": "example-national-2025-urban",
                "title_vi": "Ví dụ mục tiêu quốc gia: đô thị, 50% người hưởng chính sách hằng tháng nhận không dùng "
                "tiền mặt đến cuối 2025",
                "title_en": "Example national target: urban areas, 50% of monthly beneficiaries paid without cash by "
                "the end of 2025",
                "area_type": "URBAN",
                "area_level": "province",
                "area_code": None,
                "schemes": MONTHLY_SCHEMES,
                "target_bp": 5000,
                "deadline": date(2025, 12, 31),
                "created_at": now,
                "updated_at": now,
            },
            {
                "id": "5b0f3c1e-2025-4c25-9a25-000000012025",
                "code": "example-national-2025-rural",
                "title_vi": "Ví dụ mục tiêu quốc gia: nông thôn, 30% người hưởng chính sách hằng tháng nhận không dùng "
                "tiền mặt đến cuối 2025",
                "title_en": "Example national target: rural areas, 30% of monthly beneficiaries paid without cash by "
                "the end of 2025",
                "area_type": "RURAL",
                "area_level": "province",
                "area_code": None,
                "schemes": MONTHLY_SCHEMES,
                "target_bp": 3000,
                "deadline": date(2025, 12, 31),
                "created_at": now,
                "updated_at": now,
            },
        ],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET plan_cache_mode', current_database()); END $$"
        )
    op.drop_table("targets")
    op.drop_table("claim_rollup")
    op.drop_table("payment_rollup")
    op.drop_table("claim_cube")
    op.drop_index("ix_payment_cube_scheme_period", table_name="payment_cube")
    op.drop_table("payment_cube")
    op.drop_table("claim_facts")
    op.drop_table("payment_people")
    op.drop_index("ix_payment_facts_person", table_name="payment_facts")
    op.drop_table("payment_facts")
    op.drop_table("projection_state")
