"""docsprint: fast document understanding.

>>> from docsprint import Extractor                                   # doctest: +SKIP
>>> Extractor().extract("receipt.jpg", keys=["company", "total"]).to_dict()  # doctest: +SKIP
"""

from docsprint.io.document import Document, Page, Word
from docsprint.pipeline import Extraction, Extractor

__all__ = ["Document", "Extraction", "Extractor", "Page", "Word"]
