"""The general vocabulary the names rule reads, whatever the embedding model."""

from rag.language.terms import names
from rag.language.vocabulary import common


def test_common_words_are_whole_words_of_the_english_vocabulary():
    assert all(common(w) for w in ("christmas", "monday", "ok", "tv", "drill", "vacuum"))
    assert not any(common(w) for w in ("patroni", "netplan", "kerrowan", "pgbouncer", "##s"))


def test_capitalised_common_words_are_not_names_and_rare_ones_are():
    assert names("Is it OK to drill on a Sunday at Christmas?", common) == []
    assert names("Does Patroni manage failover with pgBouncer?", common) == ["patroni", "pgbouncer"]
