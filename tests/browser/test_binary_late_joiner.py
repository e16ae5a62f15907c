"""A late joiner's binary widget: B opens A's notebook and its Image shows the kernel's
picture. The relay's snapshot must put each buffer where jupyterlab_widgets'
``_loadFromKernel`` puts it back (``[model_id, "state", ...path]``, as the kernel's own
``update_states`` has it); elsewhere the bytes are lost and the image is empty."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .lab import LabServer, LabUser, current_notebook
from .scenarios import require_relay

pytestmark = pytest.mark.browser

#: A 3 x 2 red PNG.
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGP4z8AAQQxwFgBB0gX7h/C5SAAA"
    "AABJRU5ErkJggg=="
)
IMAGE_SOURCE = (
    "import base64, ipywidgets as W\n"
    f"img = W.Image(value=base64.b64decode('{PNG_BASE64}'), format='png')\n"
    "img"
)


def image_width(user: LabUser) -> Callable[[], int]:
    selector = f"{current_notebook(user.page)} img.widget-image"

    def width() -> int:
        script = (
            "(s) => { const i = document.querySelector(s);"
            " return i && i.complete ? i.naturalWidth : -1; }"
        )
        return int(user.page.evaluate(script, selector))

    return width


@pytest.mark.lab(relay_enabled=True, collaborative=True)
def test_late_joiner_sees_the_kernels_image(lab: LabServer, users: Callable[..., LabUser]) -> None:
    require_relay(lab)
    path = lab.write_notebook("image.ipynb", [IMAGE_SOURCE])
    a = users("A")
    a.open_notebook(path)
    a.run_cell(0)
    a.wait_for_widget(0, "img.widget-image")
    width_a = image_width(a)
    deadline = 100
    while width_a() != 3 and deadline:
        a.page.wait_for_timeout(100)
        deadline -= 1
    assert width_a() == 3, "A shows the kernel's picture"

    b = users("B")
    b.open_lab(path)
    expect(b.page.locator(f"{current_notebook(b.page)} img.widget-image")).to_have_count(
        1, timeout=60_000
    )
    width_b = image_width(b)
    deadline = 100
    while width_b() != 3 and deadline:
        b.page.wait_for_timeout(100)
        deadline -= 1
    assert width_b() == 3, "the late joiner shows the kernel's picture, from the relay"
    a.assert_no_console_errors()
    b.assert_no_console_errors()
