"""Work in progress: not collected by pytest (the name does not match
``test_*.py``). Run by hand::

    python -m pytest tests/browser/wip_test_multi_user.py -s

Scenario 2 (late joiner while the kernel is busy) without RTC, relay on.
C's view loads the notebook file that A saved (it holds the widget-view
output), so the time from "panel shows cells" to "readout shows 37" includes
C's own kernel connection and widget-manager start-up. Measured 1.45 s,
2.06 s and 1.17 s in three runs on the shared 2-core machine: the 2 s budget
is not met reliably, so it stays out of test_multi_user.py until either the
budget or the measurement start (e.g. from the kernel connection) is settled.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .lab import LabServer, LabUser
from .test_multi_user import late_joiner_scenario

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    "lab", [{"relay_enabled": True, "collaborative": False}], ids=["no-rtc"], indirect=True
)
def test_late_joiner_sees_slider_while_kernel_busy_no_rtc(
    lab: LabServer, users: Callable[..., LabUser], request: pytest.FixtureRequest
) -> None:
    late_joiner_scenario(lab, users, request)
