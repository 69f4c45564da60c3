"""A launched campaign's codes, e-mailed to each reached venue's owner as the printable sheet,
in the owner's language. Once per campaign and venue: the row is claimed (a conditional update)
before the e-mail goes, as a monthly report's is; the reports service sends them, having the
SMTP settings and the PDF libraries already."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from sqlalchemy import Engine, select, update

from alerts.delivery import claim_email, email_settlement, send_email
from alerts.settings import SmtpSettings
from coupons import sheet, store
from registry.coupon_models import Campaign, CouponDelivery
from registry.db import transaction
from registry.models import Venue
from texts import Texts

_LOGGER = logging.getLogger(__name__)


def email_message(made: sheet.Sheet, language: str, pdf: bytes, to: str,
                  campaign_id: int, venue_id: str) -> EmailMessage:  # fmt: skip
    t = Texts(language, made.timezone)
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = t._("Tasting coupons for %(beer)s at %(venue)s", beer=made.beer,
                             venue=made.venue_name)  # fmt: skip
    message["Message-ID"] = f"<coupons-{campaign_id}-{venue_id}@tapsense>"
    body = t._("For %(festival)s: %(n)s tasting coupons for %(beer)s, for %(venue)s, are "
               "attached to print and hand to your guests. Each is valid once, until %(when)s.",
               festival=made.festival, n=len(made.codes), beer=made.beer,
               venue=made.venue_name, when=t.datetime(made.valid_until_ms))  # fmt: skip
    message.set_content(f"{body}\n\n{made.message}\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=f"coupons-{venue_id}-{campaign_id}.pdf")  # fmt: skip
    return message


def send_sheets(engine: Engine, smtp: SmtpSettings, now_ms: int, lease_ms: int,
                retry_s: float) -> int:  # fmt: skip
    """E-mail the sheets due; how many went out."""
    d = CouponDelivery
    with transaction(engine) as db:
        waiting = (d.emailed_ms.is_(None), d.next_email_ms <= now_ms)
        due = db.execute(select(d.campaign_id, d.venue_id, d.next_email_ms).where(*waiting)).all()
    sent = 0
    for campaign_id, venue_id, next_ms in due:
        key = (d.campaign_id == campaign_id, d.venue_id == venue_id)
        with transaction(engine) as db:
            if not claim_email(db, d, key, next_ms, now_ms + lease_ms):
                continue  # another service has it
            row = db.get_one(d, (campaign_id, venue_id))
            venue, campaign = db.get_one(Venue, venue_id), db.get_one(Campaign, campaign_id)
            made = store.sheet_for(db, venue, campaign, row.language)
            to, language, attempts = row.email_to, row.language, row.email_attempts
        pdf = sheet.to_pdf(made, language)
        outcome = send_email(smtp, email_message(made, language, pdf, to, campaign_id, venue_id))
        with transaction(engine) as db:
            db.execute(update(d).where(*key)
                       .values(**email_settlement(outcome, attempts, now_ms, retry_s)))  # fmt: skip
        if outcome.sent:
            sent += 1
            _LOGGER.info("coupons of campaign %d e-mailed to %s (%s)", campaign_id, to, venue_id)
        else:
            _LOGGER.warning("coupons of campaign %d for %s not sent to %s: %s", campaign_id,
                            venue_id, to, outcome.error)  # fmt: skip
    return sent
