"""Answering questions over an index of documents, and the index's storage.

Sub-packages, lowest first; a module imports only from its own sub-package and those above it in
this list (tests/test_layers.py enforces it, and that no import cycle appears):

    core/       settings, errors, data shapes, collection folders, offline switches
    language/   text: scripts and sentences, search terms, checkable facts
    storage/    Chroma, the keyword indexes, index generations and views, answer records, sealing
    audit/      the audit log: hash chain, signed checkpoints, verification, bundles, upkeep
    models/     model files and repository, embedders, chat generators, the generation queue
    retrieval/  hybrid search, query expansion, sentence scoring
    answering/  the assistant: evidence test, prompts, verification, quotes, evaluation
    library.py  Library and Collection: what ingest/ and service/ use

docs/architecture.md draws the tree with one line per module.
"""
