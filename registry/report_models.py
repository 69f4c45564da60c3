"""The reports' part of the registry schema: one run record per venue and month.

The record is what makes a monthly report happen once however many schedulers run: its primary
key is (venue, month), so only one process can insert it; a claim carries a lease, so a
generator killed half-way leaves a claim that expires and is taken over, not a month that never
gets its report. The finished report is archived in the same row: its model as JSON (every
format renders from it) and the PDF that was e-mailed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.alert_models import Base
from registry.models import ID_LENGTH

__all__ = ["Base", "ReportRun"]


class ReportRun(Base):
    __tablename__ = "report_runs"
    venue_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("venues.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    requested_by: Mapped[str] = mapped_column(String(200))  # "schedule" or a user's e-mail
    claimed_ms: Mapped[int]
    lease_until_ms: Mapped[int]
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    generated_ms: Mapped[int | None]
    model: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_language: Mapped[str | None] = mapped_column(String(8))
    # The e-mail to the owner: sent once, retried with backoff until it is.
    email_to: Mapped[str | None] = mapped_column(String(254))
    emailed_ms: Mapped[int | None]
    email_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_email_ms: Mapped[int | None]
