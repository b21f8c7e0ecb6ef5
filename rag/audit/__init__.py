"""The audit log: one hash-chained, append-only record of every question and every change,
sealed at rest, verifiable without the key that seals it.

    events.py        who did what: the Actor, an event's stored form and the hashes of the chain
    log.py           AuditLog: appending (one transaction each, serialised across processes and
                     hosts), reading with filters, the store's key marker
    checkpoints.py   Ed25519 signing keys and the signed checkpoints of the chain's head
    verification.py  walking a chain (a store's or a bundle's): the first bad event, by name
    reading.py       filtered listings (secret parts opened with the key) and the store's check
    bundles.py       `audit export`: events, chain and checkpoints in one file for another machine
    upkeep.py        prune, key rotation, and the start-up check that the right key is in force

May import rag.core and rag.storage.  Knows nothing of models, search or answers: callers hand
it the details of what happened.
"""
