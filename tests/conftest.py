from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from .client import KernelClient

pytest_plugins = ["jupyter_server.pytest_plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def relay_config() -> dict[str, Any]:
    """Override in a test module to change c.WidgetRelay.*"""
    return {}


@pytest.fixture
def server_app_config() -> dict[str, Any]:
    """Override in a test module to add c.ServerApp.* (the relay is always enabled)."""
    return {}


@pytest.fixture
def jp_server_config(
    relay_config: dict[str, Any], server_app_config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_widget_relay": True}, **server_app_config},
        "WidgetRelay": relay_config,
    }


@pytest.fixture
def relay_app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[Any]:
    """The server with the relay started (jp_serverapp alone does not start extensions)."""
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    yield jp_serverapp
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.stop_all_extensions())


@pytest.fixture
def relay_manager(relay_app: Any) -> Any:
    return relay_app.web_app.settings["widget_relay_manager"]


KernelFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def start_kernel(relay_app: Any, jp_fetch: Any, jp_asyncio_loop: Any) -> Iterator[KernelFactory]:
    started: list[str] = []

    async def start(env: dict[str, str] | None = None, name: str = "python3") -> str:
        body: dict[str, Any] = {"name": name}
        if env:
            body["env"] = env
        response = await jp_fetch("api", "kernels", method="POST", body=json.dumps(body))
        kernel_id = json.loads(response.body)["id"]
        started.append(kernel_id)
        return str(kernel_id)

    yield start
    for kernel_id in started:
        if kernel_id in relay_app.kernel_manager:
            jp_asyncio_loop.run_until_complete(
                relay_app.kernel_manager.shutdown_kernel(kernel_id, now=True)
            )


ClientFactory = Callable[..., Awaitable[KernelClient]]


@pytest.fixture
def connect(jp_ws_fetch: Any) -> Iterator[ClientFactory]:
    clients: list[KernelClient] = []

    async def open_client(kernel_id: str, protocol: str = "v1", **kwargs: Any) -> KernelClient:
        client = await KernelClient.open(jp_ws_fetch, kernel_id, protocol=protocol, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()
