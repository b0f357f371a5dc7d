"""monitoring: monitors, their evaluations, alerts and alert events, leases, reference profiles

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:45:00

Written by hand to match ``modelyard/monitoring/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Only new tables: nothing
existing is altered, so there is nothing to carry over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("window_s", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment"],
            ["deployments.name"],
            name=op.f("fk_monitors_deployment_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_monitors")),
    )
    op.create_index("ix_monitors_deployment", "monitors", ["deployment"])
    op.create_table(
        "reference_profiles",
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_name", "model_version"],
            ["model_versions.name", "model_versions.version"],
            name=op.f("fk_reference_profiles_model_name_model_versions"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "model_name", "model_version", "kind", name=op.f("pk_reference_profiles")
        ),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("rule", sa.String(length=256), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("open_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("breaches", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=256), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor"],
            ["monitors.name"],
            name=op.f("fk_alerts_monitor_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_fingerprint", name=op.f("uq_alerts_open_fingerprint")),
    )
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_index("ix_alerts_monitor_state", "alerts", ["monitor", "state"])
    op.create_table(
        "monitor_evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("observations", sa.Text(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("drift", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor"],
            ["monitors.name"],
            name=op.f("fk_monitor_evaluations_monitor_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_evaluations")),
        sa.UniqueConstraint(
            "monitor",
            "window_start",
            "window_end",
            name=op.f("uq_monitor_evaluations_monitor_window_start_window_end"),
        ),
    )
    op.create_table(
        "monitor_leases",
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor"],
            ["monitors.name"],
            name=op.f("fk_monitor_leases_monitor_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("monitor", name=op.f("pk_monitor_leases")),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("previous", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_events_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_index("ix_alert_events_monitor_at", "alert_events", ["monitor", "at"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_monitor_at", table_name="alert_events")
    op.drop_index("ix_alert_events_alert_id", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("monitor_leases")
    op.drop_table("monitor_evaluations")
    op.drop_index("ix_alerts_monitor_state", table_name="alerts")
    op.drop_index("ix_alerts_fingerprint", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("reference_profiles")
    op.drop_index("ix_monitors_deployment", table_name="monitors")
    op.drop_table("monitors")
