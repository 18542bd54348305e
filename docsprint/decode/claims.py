"""One printed answer for one printed question: on a form, keys whose names the page prints in
full claim their answers' words, the surest first.

Each key's slots read their own value, so two questions of a form can come out with the same
answer: FUNSD's "Contact:" and "Client:" both "Larry Odum", "JAN" and "FEB" both "03/ 91". In
the shipped model's answers to the 15 FUNSD dev forms, 12 groups of questions answered alike
had one answer right, and in each the right one was the surest. So, in a window, the keys the
page names in full (`named_in_full`: the printed question itself) are taken surest first, each
claiming its answer's words; a later key whose answer takes a claimed word is given the best
fitting run of its own slots (`common.typed_runs`) that takes none, nor its own question's
words, or keeps its answer when none of them does (FUNSD dev 55.47 -> 58.34 ANLS).

Keys the page does not print in full stay out of it: an invoice's "grand total" and "amount
due" rightly read its one "529,87".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tokenizers import Tokenizer

from docsprint.data.encode import Encoded, key_name_ids
from docsprint.decode.common import KeyValue
from docsprint.io.document import Box, Page


def _alnum(tok: Tokenizer, i: int) -> bool:
    return any(c.isalnum() for c in tok.id_to_token(i) or "")


def named_in_full(tok: Tokenizer, enc: Encoded, key: str) -> bool:
    """Does the window print the whole of ``key``'s name, as one run of its pieces read
    without punctuation ("Date of Birth:" in "DATE OF BIRTH")? Names of one piece too short
    to be a question ("to", "no") do not count."""
    if enc.doc is None:
        return False
    name = [i for i in key_name_ids(tok, key) if _alnum(tok, i)]
    if not name or (len(name) == 1 and len(key.strip(" :.#")) < 3):
        return False
    text = [i for i in enc.doc.ids if _alnum(tok, i)]
    n = len(name)
    return any(text[a : a + n] == name for a in range(len(text) - n + 1))


def printed_name(enc: Encoded, page: Page, k: int) -> set[Box]:
    """The boxes of the words where the window prints key ``k``'s name (`encode.key_mentions`
    marks them): the question, which is not its own answer."""
    if enc.doc is None:
        return set()
    return {page.words[enc.doc.word_index[j]].box for j, m in enumerate(enc.mention[1 : 1 + len(enc.doc.ids)])
            if m == k + 1}


def claim(answers: list[KeyValue], named: list[bool], candidates: Callable[[int], Iterable[KeyValue]],
          printed: Callable[[int], set[Box]] = lambda i: set()) -> list[KeyValue]:
    """``answers`` (one window's, in key order) where no two keys the page names in full
    (``named``) answer with the same words: surest first, each claims its answer's words; a
    later one that takes a claimed word gets its first candidate that takes none, nor a word of
    its own printed name (``printed(i)``), or keeps its answer when none does.
    ``candidates(i)``: the fitting answers of key ``i``'s best runs, best first."""
    out = list(answers)
    claimed: set[Box] = set()
    order = sorted((i for i, kv in enumerate(answers) if named[i] and isinstance(kv.value, str) and kv.boxes),
                   key=lambda i: -answers[i].confidence)
    for i in order:
        if claimed & _boxes(out[i]):
            taken = claimed | printed(i)
            free = next((kv for kv in candidates(i) if kv.boxes and not taken & _boxes(kv)), None)
            if free is not None:
                out[i] = free
        claimed |= _boxes(out[i])
    return out


def _boxes(kv: KeyValue) -> set[Box]:
    return {tuple(b) for b in kv.boxes}  # type: ignore[misc]
