"""What every other part of rag/ (and ingest/, service/) builds on: the settings object and its
sections, the errors a user can act on, the shapes of chunks, hits and answers, collection
folders, the offline switches and a background-call helper.

Imports nothing else from rag/.
"""
