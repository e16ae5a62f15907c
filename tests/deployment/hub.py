"""A real JupyterHub for tests: the hub subprocess, its configurable-http-proxy, and
single-user servers of this checkout on loopback ports.

Nothing here is a pytest fixture (see ``tests/conftest.py`` and the test modules);
everything can also be used from a plain script::

    with running_hub(Path("/tmp/hub"), proxy_command()) as hub:
        hub.start_server("alice")
        print(hub.url("user/alice/lab"))

The configuration written by ``hub_config`` is the one documented in
``docs/configuration.md`` (section *JupyterHub*), plus what a test needs: a service
token for the test itself, loopback ports and private directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from ..browser.lab import (
    LABEXTENSION_NAME,
    LOCAL_LABEXTENSION,
    _user_settings,
    free_port,
    notebook_json,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROXY_PACKAGE = "configurable-http-proxy"
#: The users of a test hub. ``alice`` shares her server with ``bob``; ``carol`` may
#: log in but has no access to it.
USERS = ("alice", "bob", "carol")
#: The service the tests act as (hub admin, share management).
SERVICE = "test-driver"


def proxy_command(cache_dir: Path | None = None) -> list[str]:
    """The ``configurable-http-proxy`` command: from ``$PATH``, else installed with npm
    into ``cache_dir`` once (the CI machine starts without it). Raises ``RuntimeError``
    with what to do when neither works: the hub tests need the real proxy."""
    found = shutil.which(PROXY_PACKAGE)
    if found:
        return [found]
    if cache_dir is None:
        raise RuntimeError(f"{PROXY_PACKAGE} not found: npm install -g {PROXY_PACKAGE}")
    local = cache_dir / "node_modules" / ".bin" / PROXY_PACKAGE
    if not local.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                f"{PROXY_PACKAGE} not found and npm is missing to install it: install "
                f"Node.js and npm, then npm install -g {PROXY_PACKAGE}"
            )
        cache_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--no-fund", "--no-audit", "--prefix", str(cache_dir), PROXY_PACKAGE],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0 or not local.exists():
            raise RuntimeError(
                f"npm install {PROXY_PACKAGE} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
    return [str(local)]


def proxy_cache_dir(config: Any, basetemp: Path) -> Path:
    """Where configurable-http-proxy is installed if it is not on $PATH: the pytest cache
    of ``config`` (kept between runs), else ``basetemp``."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir(PROXY_PACKAGE))
    return basetemp / PROXY_PACKAGE


def single_user_args(home_root: Path) -> list[str]:
    """Command-line options of every single-user server (``c.Spawner.args``)."""
    args = [
        # CI and the dev machines run as root.
        "--ServerApp.allow_root=True",
        # Nothing leaves the machine: no update checks, no news feed.
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        "--MappingKernelManager.cull_idle_timeout=0",
    ]
    if (LOCAL_LABEXTENSION / "package.json").exists():
        # This checkout's labextension build ahead of an installed copy.
        extensions = home_root / "labextensions"
        copy = extensions / LABEXTENSION_NAME
        if not copy.exists():
            shutil.copytree(LOCAL_LABEXTENSION, copy)
        args.append(f"--LabApp.extra_labextensions_path={extensions}")
    return args


def hub_config(
    base_dir: Path,
    *,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    proxy: Sequence[str],
    password: str,
    service_token: str,
    users: Sequence[str] = USERS,
    interrupt_timeout: int = 15,
) -> str:
    """The ``jupyterhub_config.py`` of a test hub."""
    homes = base_dir / "homes"
    args = single_user_args(base_dir)
    # Single-user servers import the relay from this checkout.
    environment = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(base_dir / "site")])}
    return f"""
c = get_config()  # noqa

# Loopback only: the public proxy, its REST API and the hub itself.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = {list(proxy)!r}
c.JupyterHub.db_url = {"sqlite:///" + str(base_dir / "jupyterhub.sqlite")!r}
c.JupyterHub.cookie_secret_file = {str(base_dir / "jupyterhub_cookie_secret")!r}
c.JupyterHub.pid_file = {str(base_dir / "jupyterhub.pid")!r}
c.JupyterHub.cleanup_servers = True

# Users log in with a shared password (test only).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {set(users)!r}

# Every user's server is a local process of the current user, home under the test dir.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(homes / "{username}")!r}
c.Spawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.args = {args!r}
c.Spawner.environment = {environment!r}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# A stop sends SIGINT, then SIGTERM, then SIGKILL. A single-user server without a
# terminal that SIGINT leaves hanging (upstream: see docs/compatibility.md) does not
# react to SIGTERM either, so do not wait long for that one.
c.LocalProcessSpawner.interrupt_timeout = {interrupt_timeout}
c.LocalProcessSpawner.term_timeout = 2


def relay_switch(spawner):
    # user_options of POST /hub/api/users/<name>/server: {{"relay": false}} starts that
    # server with the relay off (the baseline the tests compare with).
    off = spawner.user_options.get("relay") is False
    spawner.args = [*{args!r}, *(["--WidgetRelay.enabled=False"] if off else [])]


c.Spawner.pre_spawn_hook = relay_switch

# Sharing (JupyterHub 5+): users may share their own servers, and see who they share
# them with.
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "shares!user", "read:users:name"]}},
    {{
        "name": "test-driver",
        "scopes": ["admin:users", "admin:servers", "shares", "read:users:name", "tokens"],
        "services": [{SERVICE!r}],
    }},
]
c.JupyterHub.services = [{{"name": {SERVICE!r}, "api_token": {service_token!r}}}]
"""


@dataclass
class Hub:
    """A running JupyterHub subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    base_dir: Path
    log_path: Path
    password: str
    service_token: str
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/" + path.lstrip("/")

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/" + path.lstrip("/")

    def home(self, user: str) -> Path:
        return self.base_dir / "homes" / user

    def request(
        self,
        method: str,
        path: str,
        body: Any | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """A request through the hub's proxy with ``Authorization: token ...`` (the
        service's token unless ``token``; ``""`` sends none); returns ``(status, JSON or
        text or None)``. Redirects are not followed."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        token = self.service_token if token is None else token
        if token:
            headers["Authorization"] = f"token {token}"
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed

    def api(self, method: str, path: str, body: Any | None = None) -> tuple[int, Any]:
        """The hub's REST API as the test service."""
        return self.request(method, "hub/api/" + path.lstrip("/"), body)

    # ---- users and servers

    def token(self, user: str) -> str:
        """An API token of ``user`` (made once), with that user's permissions."""
        if user not in self.tokens:
            code, body = self.api("POST", f"users/{user}/tokens", {"note": "test"})
            if code not in (200, 201):
                raise RuntimeError(f"no token for {user}: HTTP {code} {body}")
            self.tokens[user] = body["token"]
        return self.tokens[user]

    def server_model(self, user: str) -> dict[str, Any] | None:
        code, body = self.api("GET", f"users/{user}")
        if code != 200:
            raise RuntimeError(f"GET user {user}: HTTP {code} {body}")
        servers: dict[str, Any] = body.get("servers") or {}
        return servers.get("")

    def start_server(self, user: str, *, relay: bool = True, timeout: float = 120.0) -> None:
        """Start ``user``'s default server and wait until the hub says it is ready."""
        # Always explicit: the hub keeps the last user_options of a server otherwise.
        options = {"relay": relay}
        code, body = self.api("POST", f"users/{user}/server", options)
        if code not in (201, 202):
            raise RuntimeError(f"start {user}: HTTP {code} {body}\n{self.log_tail()}")
        deadline = time.monotonic() + timeout
        while True:
            model = self.server_model(user)
            if model and model.get("ready"):
                break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise TimeoutError(f"{user}'s server not ready: {model}\n{self.log_tail()}")
            time.sleep(0.2)
        # Ready for the hub means its API answers; wait until the proxy routes to it.
        while True:
            code, _ = self.request("GET", f"user/{user}/api/status", token=self.token(user))
            if code == 200:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{user}'s server not reachable: HTTP {code}")
            time.sleep(0.2)

    def stop_server(self, user: str, timeout: float = 120.0) -> float:
        """Stop ``user``'s server through the hub; returns the seconds until the hub no
        longer has it (the hub's own stop: SIGINT, then SIGTERM, then SIGKILL)."""
        started = time.monotonic()
        code, body = self.api("DELETE", f"users/{user}/server")
        if code not in (202, 204):
            raise RuntimeError(f"stop {user}: HTTP {code} {body}")
        while self.server_model(user) is not None:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{user}'s server still there after {timeout} s")
            time.sleep(0.25)
        return time.monotonic() - started

    def share(self, owner: str, with_user: str) -> dict[str, Any]:
        """Share ``owner``'s default server with ``with_user`` (default scope: access)."""
        code, body = self.request(
            "POST", f"hub/api/shares/{owner}/", {"user": with_user}, token=self.token(owner)
        )
        if code != 200:
            raise RuntimeError(f"share {owner} -> {with_user}: HTTP {code} {body}")
        result: dict[str, Any] = body
        return result

    # ---- a user's single-user server

    def user_api(
        self, owner: str, method: str, path: str, body: Any | None = None, *, as_user: str
    ) -> tuple[int, Any]:
        """A request to ``owner``'s server (``/user/<owner>/...``) as ``as_user``."""
        return self.request(
            method, f"user/{owner}/" + path.lstrip("/"), body, token=self.token(as_user)
        )

    def write_notebook(self, owner: str, path: str, sources: Sequence[str]) -> str:
        notebook = notebook_json(sources)
        code, body = self.user_api(
            owner,
            "PUT",
            "api/contents/" + urllib.parse.quote(path),
            {"type": "notebook", "format": "json", "content": notebook},
            as_user=owner,
        )
        if code not in (200, 201):
            raise RuntimeError(f"could not create {path}: HTTP {code} {body}")
        return path

    async def kernel_websocket(
        self, owner: str, kernel_id: str, *, as_user: str, session: str, subprotocols: Any = None
    ) -> WebSocketClientConnection:
        """A kernel websocket to ``owner``'s server through the proxy, as ``as_user``."""
        url = self.ws_url(
            f"user/{owner}/api/kernels/{kernel_id}/channels?"
            + urllib.parse.urlencode({"session_id": session})
        )
        request = HTTPRequest(url, headers={"Authorization": f"token {self.token(as_user)}"})
        return await websocket_connect(request, subprotocols=subprotocols)

    # ---- logs and stop

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the hub (SIGTERM: it stops the single-user servers and the proxy it
        started), then SIGKILL whatever of its process group is left."""
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


#: Loaded by every single-user server (``sitecustomize`` on its ``PYTHONPATH``):
#: ``SIGUSR2`` (jupyter_server takes ``SIGUSR1``) dumps every thread's
#: stack to the server's stderr (the hub log), to see what holds up a stop.
SITECUSTOMIZE = """\
import faulthandler
import signal

faulthandler.register(signal.SIGUSR2, all_threads=True)
"""


def start_hub(
    base_dir: Path, proxy: Sequence[str], *, users: Sequence[str] = USERS, timeout: float = 90.0
) -> Hub:
    """Start JupyterHub on loopback ports with ``users``, and wait until it answers."""
    base_dir.mkdir(parents=True, exist_ok=True)
    for user in users:
        home = base_dir / "homes" / user
        home.mkdir(parents=True, exist_ok=True)
        _user_settings(home / ".jupyter" / "lab" / "user-settings")
    site = base_dir / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    password = uuid.uuid4().hex
    service_token = uuid.uuid4().hex
    config = base_dir / "jupyterhub_config.py"
    config.write_text(
        hub_config(
            base_dir,
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            proxy=proxy,
            password=password,
            service_token=service_token,
            users=users,
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_")) and key != "PYTHONPATH"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["CONFIGPROXY_AUTH_TOKEN"] = uuid.uuid4().hex
    log_path = base_dir / "hub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=base_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        process=process,
        port=port,
        base_dir=base_dir,
        log_path=log_path,
        password=password,
        service_token=service_token,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"jupyterhub exited with {process.returncode}:\n{hub.log_tail()}"
                )
            with contextlib.suppress(OSError):
                code, _ = hub.api("GET", "")
                if code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyterhub not ready after {timeout} s:\n{hub.log_tail()}")
            time.sleep(0.2)
        for user in users:
            code, body = hub.api("POST", f"users/{user}")
            if code not in (201, 409):
                raise RuntimeError(f"could not create user {user}: HTTP {code} {body}")
    except BaseException:
        hub.stop()
        raise
    return hub


@contextlib.contextmanager
def running_hub(base_dir: Path, proxy: Sequence[str], **kwargs: Any) -> Iterator[Hub]:
    hub = start_hub(base_dir, proxy, **kwargs)
    try:
        yield hub
    finally:
        hub.stop()
