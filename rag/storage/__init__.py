"""Where an index lives: Chroma (chunk_store.py, the only chromadb user), the keyword (BM25)
indexes in SQLite or PostgreSQL, the database connection they share, the generations of a
collection's index and the views readers open on one, the answer records, and the encryption at
rest of what they hold (sealing.py).

May import rag.core and rag.language.  Knows nothing of models: vectors come in ready-made.
"""
