"""jupyter_server's own kernel tests pass exactly as well with the relay as without it.

The sdist of the installed jupyter_server version is fetched (and kept in pytest's cache),
and its ``tests/services/kernels`` run twice, in parallel subprocesses: once as they are,
once with jupyter-widget-relay loaded into every server they start, enabled by its own
``jupyter_server_config.d`` file as an install enables it, and started as a running server
starts it (``tests/deployment/upstream/widget_relay_upstream_plugin.py``, which also checks every
server). The test proves that both runs pass, fail and skip the same test ids, that the
relay-on run has no failure of its own, and that the relay really was on in every server of
one run and in none of the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ElementTree
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(__file__).resolve().parent / "upstream"
SUITE = "tests/services/kernels"


def upstream_sdist(cache_dir: Path, server_version: str) -> Path:
    """The jupyter_server sdist of ``server_version``, downloaded once into ``cache_dir``."""
    name = f"jupyter_server-{server_version}.tar.gz"
    sdist = cache_dir / name
    if not sdist.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary=jupyter_server",
                f"jupyter_server=={server_version}",
                "--dest",
                str(cache_dir),
            ],
            check=True,
            timeout=600,
        )
    assert sdist.exists(), f"pip download did not leave {name} in {cache_dir}"
    return sdist


def extract_tests(sdist: Path, target: Path) -> Path:
    """Upstream's ``tests/`` and ``pyproject.toml`` (its pytest settings) only: without the
    sdist's ``jupyter_server/`` sources, the tests import the installed jupyter_server."""
    prefix = sdist.name.removesuffix(".tar.gz") + "/"
    with tarfile.open(sdist) as archive:
        members = []
        for member in archive.getmembers():
            relative = member.name.removeprefix(prefix)
            if relative == "pyproject.toml" or relative.startswith("tests/"):
                member.name = relative
                members.append(member)
        if hasattr(tarfile, "data_filter"):
            archive.extractall(target, members=members, filter="data")
        else:  # Python before 3.10.12 / 3.11.4
            archive.extractall(target, members=members)
    assert (target / SUITE).is_dir()
    return target


def start_run(upstream: Path, mode: str, out: Path) -> tuple[subprocess.Popen[bytes], Any]:
    out.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key != "PYTHONPATH"
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(PLUGIN_DIR)]),
        WIDGET_RELAY_UPSTREAM=mode,
        WIDGET_RELAY_UPSTREAM_REPORT=str(out / "servers.jsonl"),
    )
    log = open(out / "pytest.log", "wb")  # noqa: SIM115 (closed by the caller)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            SUITE,
            "-p",
            "widget_relay_upstream_plugin",
            "-p",
            "no:cacheprovider",
            "--color=no",
            f"--junitxml={out / 'junit.xml'}",
        ],
        cwd=upstream,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def outcomes(junit: Path) -> dict[str, str]:
    """Test id -> passed, failed or skipped (an error in setup or teardown is a failure)."""
    result: dict[str, str] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        if result.get(test_id) != "failed":
            result[test_id] = outcome
    return result


def by_outcome(results: dict[str, str]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {"passed": set(), "failed": set(), "skipped": set()}
    for test_id, outcome in results.items():
        grouped[outcome].add(test_id)
    return grouped


def server_records(report: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    header, tests = lines[0], lines[1:]
    return header, {record["nodeid"]: record["servers"] for record in tests}


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.timeout(1500)
def test_upstream_kernel_tests_agree_with_and_without_relay(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    server_version = version("jupyter_server")
    cache = getattr(pytestconfig, "cache", None)
    cache_dir = cache.mkdir("upstream-jupyter-server") if cache is not None else tmp_path
    upstream = extract_tests(upstream_sdist(Path(cache_dir), server_version), tmp_path / "src")

    began = time.monotonic()
    runs = {mode: start_run(upstream, mode, tmp_path / mode) for mode in ("off", "on")}
    for mode, (process, log) in runs.items():
        try:
            process.wait(timeout=1200)
        finally:
            log.close()
        # pytest: 0 all passed, 1 some failed; anything else means the run itself broke.
        assert process.returncode in (0, 1), (
            f"upstream run with the relay {mode} exited {process.returncode}:\n"
            + tail(tmp_path / mode / "pytest.log")
        )
    elapsed = time.monotonic() - began

    results = {mode: by_outcome(outcomes(tmp_path / mode / "junit.xml")) for mode in runs}
    counts = {mode: {k: len(v) for k, v in results[mode].items()} for mode in runs}
    print(f"upstream {SUITE} of jupyter_server {server_version}, {elapsed:.0f} s: {counts}")
    print("failing both ways:", sorted(results["off"]["failed"] & results["on"]["failed"]))

    headers, servers = {}, {}
    for mode in runs:
        headers[mode], servers[mode] = server_records(tmp_path / mode / "servers.jsonl")
        assert headers[mode]["mode"] == mode
        assert headers[mode]["jupyter_server_version"] == server_version
        assert Path(headers[mode]["relay_module"]).is_relative_to(ROOT), headers[mode]
        assert not Path(headers[mode]["jupyter_server_module"]).is_relative_to(upstream)

    only_on = results["on"]["failed"] - results["off"]["failed"]
    assert not only_on, f"upstream tests that fail only with the relay: {sorted(only_on)}\n" + tail(
        tmp_path / "on" / "pytest.log", 200
    )
    for outcome in ("passed", "failed", "skipped"):
        assert results["on"][outcome] == results["off"][outcome], (
            f"{outcome} differs: only with the relay "
            f"{sorted(results['on'][outcome] - results['off'][outcome])}, only without "
            f"{sorted(results['off'][outcome] - results['on'][outcome])}"
        )
    assert counts["on"]["passed"] > 50, counts

    # The same servers started both ways; every one of them with the relay on in one run
    # and off in the other (the plugin fails a test's teardown otherwise, and says why).
    assert {k: len(v) for k, v in servers["on"].items()} == {
        k: len(v) for k, v in servers["off"].items()
    }
    started_on = [s for records in servers["on"].values() for s in records]
    started_off = [s for records in servers["off"].values() for s in records]
    assert len(started_on) > 50, len(started_on)
    assert all(s["relay_started"] and s["relay_connection"] for s in started_on)
    assert not any(s["relay_linked"] or s["relay_connection"] for s in started_off)
