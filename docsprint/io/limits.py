"""Checks before work: one set of limits for the command line, the API, the service and batch.

Each is checked before the costly step it guards, from what the file's header says: the
number of pages and frames before any is decoded, a page's pixels before it is rendered or
decoded, the words of a page before the model sees them, and the time spent reading a
document between its pages. A document over a limit raises `DocumentError` naming the file
and the limit, so the other files of the same call are still answered.

>>> Limits().max_pages
100
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    max_file_mb: float = 100.0  # bytes on disk (the service's upload limit is its own)
    max_pages: int = 100  # PDF pages or image frames
    max_megapixels: float = 50.0  # one page image, decoded or rendered
    max_total_megapixels: float = 200.0  # all page images of a document (~600 MB as RGB)
    max_aspect: float = 50.0  # longest side over shortest: a 10x100000 strip is not a page
    max_words: int = 10_000  # words on one page (a dense contract page has ~1,500)
    max_seconds: float = 60.0  # reading one document (rendering and OCR), checked page by page

    def with_options(self, **options: float | int | None) -> Limits:
        """These limits with the options that are not None replaced (the CLI's flags)."""
        known = {f.name for f in fields(self)}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)} (known: {', '.join(sorted(known))})")
        chosen = {k: v for k, v in options.items() if v is not None}
        for k, v in chosen.items():
            if v <= 0:
                raise ValueError(f"limit {k} must be positive, got {v}")
        return replace(self, **chosen)  # type: ignore[arg-type]

    def deadline(self) -> Deadline:
        return Deadline(self.max_seconds)


DEFAULT_LIMITS = Limits()


class Deadline:
    """The time left to read one document; ``expired()`` is checked between pages."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self.end
