"""Finding the passages for a question: hybrid (dense + keyword) search with de-duplication and
small-to-big widening, query expansion by the chat model, and the sentence scoring that ranking,
quotes and citation checks share.

May import rag.core, rag.language, rag.storage and rag.models.
"""
