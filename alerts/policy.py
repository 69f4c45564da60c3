"""Who is told what, and when: a venue's notification policy and the decisions made from it.

Pure functions over plain values; `alerts.store` applies them. The defaults are meant to be
right without configuration: every warning and critical alert reaches the owner by e-mail and
every webhook of the venue, grouped over `group_wait_s` so a failing cooler with six warm taps
is one message; an alert nobody acknowledged is repeated every `repeat_after_s` and escalated to
the organisation's operators after `escalate_after_s`. Checks about what is poured (warm beer,
foam, a keg running low) matter only while the venue is open: raised while it is closed, they
are told when it opens, if they are still open then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.lifecycle import SEVERITY_RANK, Change
from timeseries.events import Check, Level

DEFAULT_ONLY_WHEN_OPEN = frozenset(
    {Check.WARM_BEER, Check.WARMING_TREND, Check.FOAMY, Check.KEG_LOW}
)

# The changes a person hears of; the others (lowered, recovering, relapsed, acknowledged) only
# change what the display and the API show.
TOLD = frozenset({Change.OPENED, Change.RAISED, Change.RESOLVED, Change.REMINDER, Change.ESCALATED})


@dataclass(frozen=True, slots=True)
class Policy:
    min_severity: Level = Level.WARNING
    group_wait_s: float = 30.0
    repeat_after_s: float = 4 * 3600.0
    escalate_after_s: float = 3600.0
    email_owner: bool = True
    only_when_open: frozenset[str] = field(default=DEFAULT_ONLY_WHEN_OPEN)
    also_email: tuple[str, ...] = ()  # told with the owner, in the owner's language


def relevant(policy: Policy, check: str, severity: Level, venue_open: bool) -> bool:
    """Whether an alert of this check and severity is worth telling someone about now."""
    if SEVERITY_RANK[severity] < SEVERITY_RANK[policy.min_severity]:
        return False
    return venue_open or check not in policy.only_when_open


def tell(change: Change, relevant_now: bool, told_before: bool) -> bool:
    """Whether a change is sent. A resolution is told exactly when the alert was: nobody
    wants to hear that something they never heard of is over."""
    if change is Change.RESOLVED:
        return told_before
    if change not in TOLD:
        return False
    return relevant_now


def reminder_due(policy: Policy, last_told_ms: int | None, now_ms: int) -> bool:
    """An unacknowledged alert is told again `repeat_after_s` after it was last told."""
    return last_told_ms is not None and now_ms - last_told_ms >= policy.repeat_after_s * 1000


def escalation_due(policy: Policy, first_told_ms: int | None, now_ms: int) -> bool:
    """Operators hear of an alert the owner has not acknowledged `escalate_after_s` after the
    owner was first told."""
    return first_told_ms is not None and now_ms - first_told_ms >= policy.escalate_after_s * 1000
