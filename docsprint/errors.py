"""The one error type of docsprint's API.

Every failure a user can cause (a file that is not a document, a document over a limit, a
checkpoint that is not one, an output path that cannot be written) raises a subclass of
`DocsprintError`; ``str(e)`` is one line naming what is wrong. The command line prints it as
``docsprint: error: ...``, the service answers it with a 4xx status and the same message.
"""

from __future__ import annotations

from pathlib import Path


def one_line(e: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (its type's name if it has none), cut at ``limit``."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


class DocsprintError(ValueError):
    """Bad input: ``str(e)`` is one line that names the file (or option) and what is wrong."""


class CheckpointError(DocsprintError):
    """A folder that is not a loadable docsprint checkpoint."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: not a docsprint checkpoint ({reason})")
        self.path, self.reason = str(path), reason


class OutputError(DocsprintError):
    """An output path that cannot be written (a directory, or a folder under a file)."""
