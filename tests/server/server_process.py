"""Starting a real ``jupyter server`` process with command-line options (for settings that
must stop it)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time


def run_server(*options: str) -> subprocess.CompletedProcess[str]:
    """Run ``jupyter server`` with ``options``; returns once it exits (or after 60 s)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--port=0",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def server_log_until(text: str, *options: str, linger: float = 0, timeout: float = 60) -> str:
    """Start ``jupyter server`` with ``options`` and return its log once a line holds
    ``text`` and ``linger`` more seconds have passed (or it exited, or ``timeout`` seconds
    passed); then stop it."""
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root"]
    server = subprocess.Popen([*command, "--port=0", *options], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if text in line:
                seen.set()
        seen.set()  # exited

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if seen.wait(timeout):
            time.sleep(linger)
    finally:
        server.kill()
        server.wait()
        reader.join(5)
    return "".join(lines)
