"""Who may see what over REST: widget state needs ``execute`` on kernels, like the kernel
websocket that carries it; ``read`` sees counts, not who is connected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from .helpers import SLIDER, AllowByHeader


@pytest.fixture
def server_app_config() -> dict[str, Any]:
    return {"authorizer_class": AllowByHeader}


async def get(jp_fetch: Any, allow: str, *path: str) -> Any:
    """The JSON body, or the HTTP status code of a refusal."""
    try:
        response = await jp_fetch("api", "widget-relay", *path, headers={"X-Allow": allow})
    except HTTPClientError as error:
        return error.code
    return json.loads(response.body)


async def test_rest_answers_by_right(
    start_kernel: Any, connect: Any, jp_fetch: Any, jp_ws_fetch: Any, relay_manager: Any
) -> None:
    kernel_id = await start_kernel()
    a, b = await connect(kernel_id), await connect(kernel_id, "json")
    await a.execute(SLIDER)
    model_id = await a.evaluate("s.model_id")
    names = {port.username for port in relay_manager.link_for(kernel_id).relay.ports()}
    assert names and all(names), "the test users have names"
    state_paths = [
        ("kernels", kernel_id, "state"),
        ("kernels", kernel_id, "models"),
        ("kernels", kernel_id, "models", model_id),
    ]
    summary_paths = [("kernels",), ("kernels", kernel_id)]

    # execute (and read): everything, with who is connected
    for path in state_paths:
        assert isinstance(await get(jp_fetch, "read,execute", *path), dict), path
    kernels = await get(jp_fetch, "read,execute", "kernels")
    [mine] = [k for k in kernels["kernels"] if k["kernel_id"] == kernel_id]
    assert {c["username"] for c in mine["clients"]} == names

    # read only: counts, no names and no state
    for path in state_paths:
        assert await get(jp_fetch, "read", *path) == 403, path
    for path in summary_paths:
        body = await get(jp_fetch, "read", *path)
        [summary] = [k for k in body.get("kernels", [body]) if k["kernel_id"] == kernel_id]
        assert summary["models"] >= 1 and len(summary["clients"]) == 2
        assert all(not c["username"] and not c["display_name"] for c in summary["clients"])
    events = await jp_ws_fetch(
        "api", "widget-relay", "kernels", kernel_id, "events", headers={"X-Allow": "read"}
    )
    pushed = json.loads(await events.read_message())
    events.close()
    assert len(pushed["kernel"]["clients"]) == 2
    assert all(not c["username"] for c in pushed["kernel"]["clients"])

    # neither: nothing
    for path in [*state_paths, *summary_paths, ("status",)]:
        assert await get(jp_fetch, "", *path) == 403, path
    assert b.view[model_id]["value"] == 5, "the clients were not disturbed"
