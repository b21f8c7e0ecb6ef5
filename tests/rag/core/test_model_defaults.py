"""Settings tuned per embedding model: another model's cosines are on another scale."""

from rag.core.model_defaults import TUNED
from rag.core.retrieval_section import RetrievalConfig
from rag.core.sections import AnswerConfig
from rag.core.settings import Settings


def test_the_default_model_keeps_the_sections_own_defaults():
    settings = Settings(embed_model="all-MiniLM-L6-v2")
    assert settings.retrieval == RetrievalConfig()
    assert settings.answer.support_threshold == AnswerConfig().support_threshold


def test_multilingual_e5_gets_the_values_fitted_on_it(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_EMBED_MODEL", "multilingual-e5-small")
    settings = Settings()
    tuned = TUNED["multilingual-e5-small"]
    assert settings.retrieval.min_score == tuned["retrieval"]["min_score"] > RetrievalConfig().min_score
    assert settings.retrieval.language_offset == tuned["retrieval"]["language_offset"] > 0
    assert settings.answer.support_threshold == tuned["answer"]["support_threshold"]
    assert "file_support" not in tuned["retrieval"]
    assert settings.retrieval.file_support == RetrievalConfig().file_support  # the rest: as given


def test_an_explicit_setting_wins_over_the_tuned_one(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_MIN_SCORE", "0.6")
    settings = Settings(embed_model="multilingual-e5-small")
    assert settings.retrieval.min_score == 0.6
    assert settings.retrieval.rrf_k == TUNED["multilingual-e5-small"]["retrieval"]["rrf_k"]


def test_a_collection_with_its_own_model_gets_that_models_tuning(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_TOP_K", "7")  # given: stays for every collection
    settings = Settings()  # all-MiniLM-L6-v2
    e5 = settings.for_collection("zh", "multilingual-e5-small")
    assert (e5.collection, e5.embedding.embed_model) == ("zh", "multilingual-e5-small")
    assert e5.retrieval == Settings(embed_model="multilingual-e5-small").retrieval
    assert e5.answer.support_threshold_cjk == TUNED["multilingual-e5-small"]["answer"]["support_threshold_cjk"]
    assert e5.query.top_k == 7
    # and back: what e5's tuning filled in returns to the sections' defaults
    back = Settings(embed_model="multilingual-e5-small").for_collection("en", "all-MiniLM-L6-v2")
    assert back.retrieval == RetrievalConfig()
    assert back.answer.support_threshold == AnswerConfig().support_threshold


def test_an_explicit_setting_wins_in_every_collection(monkeypatch):
    monkeypatch.setenv("ARCHIVIST_MIN_SCORE", "0.6")
    monkeypatch.setenv("ARCHIVIST_RRF_K", "30")  # the same value e5's tuning has: reads as tuning
    settings = Settings(embed_model="multilingual-e5-small")
    minilm = settings.for_collection("en", "all-MiniLM-L6-v2")
    assert minilm.retrieval.min_score == 0.6
    assert minilm.retrieval.rrf_k == RetrievalConfig().rrf_k
    assert settings.for_collection("zh").retrieval == settings.retrieval  # no choice: as configured
