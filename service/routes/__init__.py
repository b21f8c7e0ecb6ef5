"""One router per feature.  A route validates its input, calls rag/ or ingest/, shapes the reply."""
