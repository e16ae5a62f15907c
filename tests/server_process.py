"""Starting a real ``jupyter server`` process with command-line options (for settings that
must stop it)."""

from __future__ import annotations

import subprocess
import sys


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
