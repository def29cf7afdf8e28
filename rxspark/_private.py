"""Private files and directories: what only the current user may read."""

from __future__ import annotations

import os


def make_private_dirs(path: str) -> None:
    """Create ``path`` and its missing parents, each one created with mode 0700 whatever the umask."""
    missing = []
    head = path
    while head and not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
