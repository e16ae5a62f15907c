"""The package users install: sdist and wheel built as a release builds them, installed in a
clean virtual environment.

From a copy of this checkout's files (git's list: no node_modules, no build output), the test
builds an sdist (which runs the JupyterLab extension build), then a wheel from that sdist
(which must not need Node.js: the sdist carries the built extension) and a wheel straight
from the tree. It proves that:

- the sdist holds every file of the checkout, the built labextension and the license;
- both wheels have the same files with the same contents (RECORD included): the server
  extension, ``py.typed``, the license, the prebuilt labextension, the file that enables
  the server extension, and metadata with the SPDX license and the project URLs;
- the wheel installs with pip into a new venv (no system site packages; dependencies from
  the package index), and there ``jupyter server extension list`` shows
  ``jupyter_widget_relay`` enabled and OK, ``jupyter labextension list`` shows
  ``jupyter-widget-relay`` enabled and OK, the package imports with its ``py.typed``, and
  a ``jupyter server`` started from that venv serves the relay's status endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LABEXTENSION = "share/jupyter/labextensions/jupyter-widget-relay"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/jupyter_widget_relay.json"
VERSION = re.findall(r'"(.+)"', (ROOT / "jupyter_widget_relay" / "_version.py").read_text())[0]


def checkout_files() -> list[str]:
    """The checkout's files as git lists them: tracked plus new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(
        name
        for name in set(listed.split("\0"))
        if name and "node_modules" not in Path(name).parts and (ROOT / name).is_file()
    )


def copy_tree(files: list[str], target: Path) -> Path:
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    return target


def run(
    command: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run ``command`` to completion, its output kept in ``log``; fail with the log's end."""
    with open(log, "wb") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    text = ANSI.sub("", log.read_text(errors="replace"))
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{text[-6000:]}"
    return text


def build(kind: str, source: Path, outdir: Path, log: Path) -> Path:
    run([sys.executable, "-m", "build", f"--{kind}", "--outdir", str(outdir), str(source)], log)
    (built,) = outdir.iterdir()
    return built


def wheel_contents(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: hashlib.sha256(archive.read(info)).hexdigest()
            for info in archive.infolist()
            if not info.is_dir()
        }


def sections(listing: str) -> dict[str, str]:
    """``jupyter ... list`` output split at its path headers (config dirs, labextension dirs)."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in listing.splitlines():
        header = re.fullmatch(r"(?:Config dir: )?(/\S+)", line.strip())
        if header:
            current = header.group(1)
        found.setdefault(current, []).append(line.strip())
    return {path: "\n".join(lines) for path, lines in found.items()}


def serve_status(venv_bin: Path, workdir: Path, env: dict[str, str]) -> dict[str, object]:
    """Start ``jupyter server`` from the venv, GET the relay's status, stop the server."""
    token = secrets.token_hex(16)
    server = subprocess.Popen(
        [
            str(venv_bin / "jupyter"),
            "server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            f"--IdentityProvider.token={token}",
        ],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    url: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if match and not url:
                url.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(120) and url, "jupyter server did not start:\n" + "".join(lines)
        request = urllib.request.Request(
            url[0] + "api/widget-relay/status", headers={"Authorization": f"token {token}"}
        )
        # The server prints its URL before its loop runs and binds the port.
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status: dict[str, object] = json.loads(response.read())
                break
            except urllib.error.URLError as error:
                refused = isinstance(error.reason, ConnectionRefusedError)
                if not refused or time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        reader.join(10)
    log = "".join(lines)
    assert "jupyter_widget_relay | extension was successfully loaded" in log, log
    assert "widget relay: enabled" in log, log
    return status


@pytest.mark.timeout(1200)
def test_sdist_and_wheel_build_install_and_enable(tmp_path: Path) -> None:
    began = time.monotonic()
    files = checkout_files()
    assert "pyproject.toml" in files and "LICENSE" in files
    assert "jupyter_widget_relay/py.typed" in files

    # A clean venv, with JupyterLab (for `jupyter labextension list`), made meanwhile.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    venv_bin = venv / "bin"
    venv_python = venv_bin / "python"
    with open(tmp_path / "venv-jupyterlab.log", "wb") as venv_log:
        lab_install = subprocess.Popen(
            [str(venv_python), "-m", "pip", "install", "--quiet", "jupyterlab>=4.2,<5"],
            stdout=venv_log,
            stderr=subprocess.STDOUT,
        )

    # The sdist from a fresh copy: this runs `jlpm install` and the labextension build.
    source = copy_tree(files, tmp_path / "source")
    sdist = build("sdist", source, tmp_path / "dist-sdist", tmp_path / "sdist.log")

    # The sdist: the checkout's files, the built labextension, the metadata.
    assert sdist.name == f"jupyter_widget_relay-{VERSION}.tar.gz"
    prefix = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as archive:
        names = {member.name.removeprefix(prefix + "/") for member in archive.getmembers()}
        if hasattr(tarfile, "data_filter"):
            archive.extractall(tmp_path / "unpacked", filter="data")
        else:  # Python before 3.10.12 / 3.11.4
            archive.extractall(tmp_path / "unpacked")
    built = {name for name in names if name.startswith("jupyter_widget_relay/labextension/")}
    assert names - built - {"PKG-INFO"} == set(files)
    assert {
        "jupyter_widget_relay/labextension/package.json",
        "jupyter_widget_relay/labextension/static/style.js",
    } <= built
    assert any(re.fullmatch(r".*/static/remoteEntry\.[0-9a-f]+\.js", name) for name in built)

    # The wheel from the sdist, which needs no Node.js (no `jlpm install` runs), and
    # meanwhile the wheel straight from the tree the sdist was made from.
    unpacked = tmp_path / "unpacked" / prefix
    results: dict[str, Path] = {}
    failures: list[BaseException] = []

    def build_tree_wheel() -> None:
        try:
            results["tree"] = build("wheel", source, tmp_path / "dist-tree", tmp_path / "tree.log")
        except BaseException as error:
            failures.append(error)

    tree_build = threading.Thread(target=build_tree_wheel)
    tree_build.start()
    try:
        from_sdist = build("wheel", unpacked, tmp_path / "dist-wheel", tmp_path / "wheel.log")
    finally:
        tree_build.join()
    if failures:
        raise failures[0]
    assert not (unpacked / "labextension" / "node_modules").exists()
    assert "Skipping build" in (tmp_path / "wheel.log").read_text()

    # The same wheel both ways.
    wheel_name = f"jupyter_widget_relay-{VERSION}-py3-none-any.whl"
    assert from_sdist.name == results["tree"].name == wheel_name
    contents = wheel_contents(from_sdist)
    tree_contents = wheel_contents(results["tree"])
    assert contents == tree_contents, {
        name: (contents.get(name), tree_contents.get(name))
        for name in contents.keys() | tree_contents.keys()
        if contents.get(name) != tree_contents.get(name)
    }
    data = f"jupyter_widget_relay-{VERSION}.data/data/"
    dist_info = f"jupyter_widget_relay-{VERSION}.dist-info/"
    for expected in (
        "jupyter_widget_relay/__init__.py",
        "jupyter_widget_relay/core/relay.py",
        "jupyter_widget_relay/py.typed",
        dist_info + "licenses/LICENSE",
        data + SERVER_CONFIG,
        data + LABEXTENSION + "/package.json",
        data + LABEXTENSION + "/install.json",
        data + LABEXTENSION + "/static/style.js",
    ):
        assert expected in contents, expected
    with zipfile.ZipFile(from_sdist) as wheel:
        metadata = HeaderParser().parsestr(wheel.read(dist_info + "METADATA").decode())
        license_text = wheel.read(dist_info + "licenses/LICENSE").decode()
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert license_text.startswith("BSD 3-Clause License")
    assert license_text == (ROOT / "LICENSE").read_text()
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues"}, urls
    assert all(url.startswith("https://") for url in urls.values())

    # Installed into the clean venv.
    assert lab_install.wait(600) == 0, (tmp_path / "venv-jupyterlab.log").read_text()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "user-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "user-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "user-runtime"),
        PATH=os.pathsep.join([str(venv_bin), env.get("PATH", "")]),
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    install = [str(venv_python), "-m", "pip", "install", str(from_sdist)]
    run(install, tmp_path / "install.log", cwd=workdir, env=env)
    (site_packages,) = (venv / "lib").glob("python*/site-packages")

    imported = run(
        [
            str(venv_python),
            "-c",
            "import jupyter_widget_relay as r, importlib.metadata as m; "
            "print(r.__file__); print(r.__version__, m.version('jupyter-widget-relay'))",
        ],
        tmp_path / "import.log",
        cwd=workdir,
        env=env,
    ).splitlines()
    package = Path(imported[0]).parent
    assert package == site_packages / "jupyter_widget_relay"
    assert imported[1] == f"{VERSION} {VERSION}"
    assert (package / "py.typed").is_file()

    server_list = run(
        [str(venv_bin / "jupyter"), "server", "extension", "list"],
        tmp_path / "server-extensions.log",
        cwd=workdir,
        env=env,
    )
    venv_config = sections(server_list).get(str(venv / "etc" / "jupyter"), "")
    assert "jupyter_widget_relay enabled" in venv_config, server_list
    assert f"jupyter_widget_relay {VERSION} OK" in venv_config, server_list
    assert not re.search(r"jupyter_widget_relay.*(disabled|X)", server_list), server_list

    lab_list = run(
        [str(venv_bin / "jupyter"), "labextension", "list"],
        tmp_path / "labextensions.log",
        cwd=workdir,
        env=env,
    )
    venv_labextensions = sections(lab_list).get(str(venv / "share/jupyter/labextensions"), "")
    assert re.search(
        rf"^jupyter-widget-relay v{re.escape(VERSION)} enabled OK "
        r"\(python, jupyter-widget-relay\)$",
        venv_labextensions,
        re.MULTILINE,
    ), lab_list

    status = serve_status(venv_bin, workdir, env)
    assert status == {"enabled": True, "version": VERSION}, status
    print(f"built and installed in {time.monotonic() - began:.0f} s")
