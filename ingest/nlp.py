"""Keep unstructured's text classification offline.

unstructured 0.27 classifies elements (title vs narrative) with spaCy's `en_core_web_sm`, which it
downloads from GitHub on first use: impossible offline and not on PyPI.  We hand it a blank
multilingual spaCy pipeline with a rule-based sentencizer instead.  That pipeline has no POS tagger,
so unstructured's "contains a verb" test is always false and it over-eagerly labels short lines as
titles; `parsers.is_heading` compensates by accepting only heading-shaped titles.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_installed = False


def use_offline_pipeline() -> None:
    """Point unstructured's tokenizer at a local pipeline (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        import spacy
        from unstructured.nlp import tokenize

        if not hasattr(tokenize, "_get_nlp"):
            raise RuntimeError(
                "unstructured.nlp.tokenize._get_nlp is gone: this unstructured version is not the "
                "one pinned in pyproject.toml. Reinstall with `make install`."
            )
        nlp = spacy.blank("xx")
        nlp.add_pipe("sentencizer")
        tokenize._get_nlp = lambda: nlp
        _installed = True
