"""Which kernel a notebook's saved widget state comes from: the sessions on its path.

A notebook path takes state from a kernel only through the session manager's current
sessions for that exact path (with jupyter-collaboration's old ``RTC:`` drive prefix
removed, and no other). JupyterLab moves an open notebook's session along when the file is
renamed; a file renamed while its session stays behind (a notebook that is not open)
keeps that kernel through a link made at rename time, which lasts only while that session
is still where the rename left it, and only while no session is on the new path itself.
The old path then no longer takes state from the kernel that moved away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# jupyter-collaboration before 3.0 named its documents "RTC:<path>" in sessions
DRIVE_PREFIXES = ("RTC:",)
MAX_LINKS = 1000

Session = tuple[str, str]  # (session path as stored, kernel id)


def api_path(session_path: str) -> str:
    """A session's notebook path as the contents API names it."""
    path = session_path.strip("/")
    for prefix in DRIVE_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :].strip("/")
    return path


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + "/")


@dataclass(frozen=True, slots=True)
class _LeftBehind:
    """A session that stayed on ``old_path`` when its file was renamed."""

    old_path: str
    kernel_id: str


class NotebookKernels:
    def __init__(self) -> None:
        self._links: dict[str, set[_LeftBehind]] = {}  # new path -> sessions left behind

    def renamed(self, old: str, new: str, sessions: Iterable[Session]) -> None:
        """The file (or folder) ``old`` is now ``new``; ``sessions`` are the current ones.

        A session already left behind by an earlier rename serves the file that moved
        then, not the one on its path now: it does not follow this one."""
        left_behind = {
            (link.old_path, link.kernel_id) for links in self._links.values() for link in links
        }
        for path in [p for p in self._links if _under(p, old)]:
            self._links.setdefault(new + path[len(old) :], set()).update(self._links.pop(path))
        for session_path, kernel_id in sessions:
            path = api_path(session_path)
            if _under(path, old) and (path, kernel_id) not in left_behind:
                target = new + path[len(old) :]
                self._links.setdefault(target, set()).add(_LeftBehind(path, kernel_id))
        while len(self._links) > MAX_LINKS:
            del self._links[next(iter(self._links))]

    def deleted(self, path: str) -> None:
        for linked in [p for p in self._links if _under(p, path)]:
            del self._links[linked]

    def kernels_for(self, path: str, sessions: Iterable[Session]) -> list[str]:
        """The kernels whose state belongs in ``path`` now (more than one: ambiguous)."""
        live = {(api_path(session_path), kernel_id) for session_path, kernel_id in sessions}
        self._prune(live)
        moved_away = {
            link.kernel_id
            for target, links in self._links.items()
            if target != path
            for link in links
            if link.old_path == path
        }
        exact = {kernel_id for p, kernel_id in live if p == path} - moved_away
        if exact:
            return sorted(exact)
        return sorted({link.kernel_id for link in self._links.get(path, ())})

    def _prune(self, live: set[Session]) -> None:
        """Links whose session moved on, ended or changed kernel are gone."""
        for target in list(self._links):
            kept = {link for link in self._links[target] if (link.old_path, link.kernel_id) in live}
            if kept:
                self._links[target] = kept
            else:
                del self._links[target]
