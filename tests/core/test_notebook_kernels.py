"""Which kernel's state a notebook path takes: sessions on the exact path, renames followed
without stale links (pure core)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_widget_relay.core.notebook_kernels import NotebookKernels, api_path


def test_drive_prefix_is_only_the_collaboration_one() -> None:
    assert api_path("RTC:dir/a.ipynb") == "dir/a.ipynb"
    assert api_path("notes:c.ipynb") == "notes:c.ipynb"
    assert api_path("/a.ipynb") == "a.ipynb"


def test_rename_with_the_session_left_behind() -> None:
    kernels = NotebookKernels()
    sessions = [("a.ipynb", "k1")]
    kernels.renamed("a.ipynb", "b.ipynb", sessions)
    sessions.append(("a.ipynb", "k2"))  # a new a.ipynb with its own kernel
    assert kernels.kernels_for("b.ipynb", sessions) == ["k1"]
    assert kernels.kernels_for("a.ipynb", sessions) == ["k2"]
    kernels.renamed("b.ipynb", "c.ipynb", sessions)  # a chain
    assert kernels.kernels_for("c.ipynb", sessions) == ["k1"]
    assert kernels.kernels_for("b.ipynb", sessions) == []
    moved = [("c.ipynb", "k1"), ("a.ipynb", "k2")]  # the session follows at last
    assert kernels.kernels_for("c.ipynb", moved) == ["k1"]
    assert kernels.kernels_for("a.ipynb", moved) == ["k2"]
    assert not kernels._links, "the link ended with the session's move"


def test_folder_rename_and_delete() -> None:
    kernels = NotebookKernels()
    sessions = [("d/x.ipynb", "k1"), ("d/e/y.ipynb", "k2")]
    kernels.renamed("d", "f", sessions)
    assert kernels.kernels_for("f/x.ipynb", sessions) == ["k1"]
    assert kernels.kernels_for("f/e/y.ipynb", sessions) == ["k2"]
    kernels.deleted("f")
    assert kernels.kernels_for("f/x.ipynb", sessions) == []


def test_a_session_on_the_new_path_wins_over_the_link() -> None:
    kernels = NotebookKernels()
    sessions = [("a.ipynb", "k1")]
    kernels.renamed("a.ipynb", "b.ipynb", sessions)
    sessions.append(("b.ipynb", "k3"))  # opened again under its new name
    assert kernels.kernels_for("b.ipynb", sessions) == ["k3"]


PATHS = ["a.ipynb", "b.ipynb", "c.ipynb"]
NO_FILE = -1  # a session whose file was deleted: the next file on its path gets it


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 2)), max_size=30))
def test_a_file_never_gets_a_kernel_that_was_not_its_own(ops: list[tuple[int, int, int]]) -> None:
    """Random opens, renames (session moved along or left behind), new files, deletes,
    session ends and saves: every kernel a save would take state from has a session that
    was opened for the very file now at that path."""
    kernels = NotebookKernels()
    identities = itertools.count()
    files: dict[str, int] = {}  # path -> file identity
    sessions: dict[str, tuple[str, int]] = {}  # kernel -> (session path, file it serves)
    kernel_ids = (f"k{n}" for n in itertools.count())

    def rows() -> list[tuple[str, str]]:
        return [(path, kernel) for kernel, (path, _) in sessions.items()]

    for op, x, y in ops:
        src, dst = PATHS[x], PATHS[y]
        if op == 0:  # a new file, or a session opened on one
            if src not in files:
                files[src] = next(identities)
                for kernel, (path, owner) in list(sessions.items()):
                    if path == src and owner == NO_FILE:  # the server reuses that session
                        sessions[kernel] = (path, files[src])
            else:
                sessions[next(kernel_ids)] = (src, files[src])
        elif op in (1, 2) and src in files and dst not in files:  # rename
            kernels.renamed(src, dst, rows())
            files[dst] = files.pop(src)
            for kernel, (path, owner) in list(sessions.items()):
                if path == dst and owner == NO_FILE:  # a file arrives on its path
                    sessions[kernel] = (path, files[dst])
            if op == 2:  # JupyterLab moves the open notebook's session along
                for kernel, (path, owner) in list(sessions.items()):
                    if path == src:
                        sessions[kernel] = (dst, owner)
        elif op == 3 and src in files:  # delete (sessions stay, as the server keeps them)
            kernels.deleted(src)
            gone = files.pop(src)
            for kernel, (path, owner) in list(sessions.items()):
                # also a session left behind by a rename: its file is gone, and the server
                # reuses it for the file on its path (now, or the next one there)
                if owner == gone:
                    sessions[kernel] = (path, files.get(path, NO_FILE))
        elif op == 4 and sessions:  # a session ends
            del sessions[sorted(sessions)[x % len(sessions)]]
        for path, identity in files.items():  # every file is saved after every step
            for kernel in kernels.kernels_for(path, rows()):
                assert sessions[kernel][1] == identity, (path, kernel, ops)
