"""The models of a process: model files on disk and their fingerprints, the chat model repository
and catalog (and `models pull`), where models run (GPU probes), the embedders (sentence-
transformers, ONNX, lean torch, remote servers), the generators (llama.cpp in-process, remote
servers) and the queue in front of the chat model.  loaded.py holds the ones a process has
loaded, shared by every collection.

May import rag.core and rag.language.
"""
