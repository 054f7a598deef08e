"""The demo week (tools/demo_week.py) has eight days of complaints whatever the time of day: the
dashboard's test and the demo both expect the week and today on every chart (a run just after
midnight UTC once found only seven)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.intake import ComplaintFiled
from tools.demo_week import week_of_traffic


@pytest.mark.parametrize("clock", ["00:05", "06:59", "12:00", "23:59"])
def test_the_week_has_complaints_on_eight_days_and_none_after_now(clock):
    hour, minute = map(int, clock.split(":"))
    now = datetime(2026, 12, 7, hour, minute, tzinfo=UTC)
    filed = [e.filed_at for _, e in week_of_traffic(now, seed=11, per_day=10) if isinstance(e, ComplaintFiled)]
    assert len({f.date() for f in filed}) == 8
    assert max(filed) <= now
