"""The alerts' pure core: lifecycle, policy and words, without a server."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts import lifecycle, messages, policy
from alerts.lifecycle import Change, Current, Signal, State
from alerts.messages import Item
from alerts.outbox import render_email
from alerts.policy import Policy
from texts import Texts
from timeseries.events import Check, Level

T0 = 1_772_812_800_000  # 2026-03-06T16:00:00Z, 17:00 in Amsterdam


def sig(level: Level, ts: int) -> Signal:
    return Signal("venue-1", "tap-1", Check.WARM_BEER, level, ts, 8.0, ts)


def play(signals: list[Signal]) -> list[Change]:
    """Run signals through the core as the store does; the changes made."""
    current: Current | None = None
    last_ts: int | None = None
    changes = []
    for s in signals:
        step = lifecycle.on_signal(current, s, last_ts)
        last_ts = s.ts if last_ts is None else max(last_ts, s.ts)
        if step is None:
            continue
        changes.append(step.change)
        recovering = s.ts if step.change is Change.RECOVERING else None
        if step.change is Change.RECOVERING and current is not None:
            current = Current(current.state, current.severity, recovering)
        else:
            current = Current(State.OPEN, step.severity, None)
    return changes


def test_a_warning_opens_rises_recovers() -> None:
    seq = [sig(Level.WARNING, T0), sig(Level.CRITICAL, T0 + 1), sig(Level.OK, T0 + 2)]
    assert play(seq) == [Change.OPENED, Change.RAISED, Change.RECOVERING]


def test_a_flap_while_recovering_is_the_same_alert() -> None:
    seq = [sig(Level.WARNING, T0), sig(Level.OK, T0 + 1), sig(Level.WARNING, T0 + 2)]
    assert play(seq) == [Change.OPENED, Change.RECOVERING, Change.RELAPSED]


def test_a_recovery_with_nothing_open_changes_nothing() -> None:
    assert lifecycle.on_signal(None, sig(Level.OK, T0), None) is None


@given(st.lists(st.tuples(st.sampled_from(list(Level)), st.integers(0, 50)), max_size=30),
       st.lists(st.integers(0, 29), max_size=10))  # fmt: skip
def test_redelivered_and_late_events_change_nothing(
    events: list[tuple[Level, int]], again: list[int]
) -> None:
    """However often a stream's events come again, and whenever, the changes are those of the
    stream once: the newest time per key decides."""
    stream = [sig(level, T0 + i * 1000 + jitter) for i, (level, jitter) in enumerate(events)]
    redelivered = []
    for i, event in enumerate(stream):  # after each event, some that came before it again
        redelivered += [event, *(stream[j] for j in again if j <= i)]
    assert play(redelivered) == play(stream)


def test_hold_off_runs_on_the_service_clock() -> None:
    assert not lifecycle.due_resolution(None, T0, 300)
    assert not lifecycle.due_resolution(T0, T0 + 299_999, 300)
    assert lifecycle.due_resolution(T0, T0 + 300_000, 300)


def test_policy_defaults() -> None:
    p = Policy()
    assert policy.relevant(p, Check.COOLER_FAILURE, Level.WARNING, venue_open=False)
    assert not policy.relevant(p, Check.WARM_BEER, Level.WARNING, venue_open=False)
    assert policy.relevant(p, Check.WARM_BEER, Level.WARNING, venue_open=True)
    assert not policy.relevant(Policy(min_severity=Level.CRITICAL), Check.LEAK, Level.WARNING,
                               venue_open=True)  # fmt: skip
    assert policy.tell(Change.OPENED, relevant_now=True, told_before=False)
    assert not policy.tell(Change.RECOVERING, relevant_now=True, told_before=True)
    assert policy.tell(Change.RESOLVED, relevant_now=False, told_before=True)
    assert not policy.tell(Change.RESOLVED, relevant_now=True, told_before=False)
    assert not policy.reminder_due(p, None, T0)
    assert policy.reminder_due(p, T0, T0 + 4 * 3600_000)
    assert policy.escalation_due(p, T0, T0 + 3600_000)
    assert not policy.escalation_due(p, T0, T0 + 3599_999)


def item(check: str, value: float, detail: float, change: Change = Change.OPENED) -> Item:
    return Item(1, change, check, Level.WARNING, "3", "IPA", 7.0, T0, value, detail)


def test_the_forecast_in_words() -> None:
    trend = item(Check.WARMING_TREND, T0 + 25 * 60_000, 2.4)
    en, nl = Texts("en", "Europe/Amsterdam"), Texts("nl", "Europe/Amsterdam")
    assert messages.line(en, trend).headline == (
        "IPA on tap 3 is warming by 2.4 °C an hour and will pass 7.0 °C in about 25 minutes."
    )
    assert messages.line(nl, trend).headline == (
        "IPA op tap 3 warmt 2,4 °C per uur op en komt over ongeveer 25 minuten boven de 7,0 °C."
    )


def test_every_check_has_words_and_a_remedy_in_both_languages() -> None:
    for language in ("en", "nl"):
        t = Texts(language, "Europe/Amsterdam")
        for check in lifecycle.ALERT_CHECKS:
            x = messages.line(t, item(check, 5.0, T0 - 600_000))
            assert x.title and x.headline and x.remedy, (language, check)
            resolved = messages.line(t, item(check, 5.0, T0, Change.RESOLVED))
            assert "18:00" in resolved.headline or "17:00" in resolved.headline


def test_a_grouped_email_lists_every_tap() -> None:
    t = Texts("nl", "Europe/Amsterdam")
    lines = [messages.line(t, Item(i, Change.OPENED, Check.WARM_BEER, Level.CRITICAL, str(i),
                                   "Pils", 6.0, T0, 9.5, T0)) for i in range(1, 7)]  # fmt: skip
    mail = render_email(t, "Café <De Dom>", lines)
    assert mail.subject == "Café <De Dom>: 6 meldingen"
    assert mail.text.count("Pils op tap") == 6
    assert "Café &lt;De Dom&gt;" in mail.html  # escaped: a venue's name is not markup
    assert "Wat te doen:" in mail.html and 'lang="nl"' in mail.html
