from pathlib import Path

import pytest

from rag.core.errors import ConfigError
from rag.core.settings import load_settings


def test_defaults():
    s = load_settings()
    assert s.data_dir == Path("data") and s.index_dir == Path(".archivist")
    assert s.llm.llm_model is None and s.query.top_k == 4 and s.llm.n_gpu_layers == -1


def test_toml_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "archivist.toml").write_text('top_k = 7\nn_gpu_layers = 20\ndata_dir = "docs"\n')
    assert load_settings().query.top_k == 7
    monkeypatch.setenv("ARCHIVIST_TOP_K", "9")
    monkeypatch.setenv("ARCHIVIST_LLM_MODEL", "/models/x.gguf")
    s = load_settings()
    assert (s.query.top_k, s.llm.n_gpu_layers, s.data_dir, s.llm.llm_model) == (9, 20, Path("docs"), Path("/models/x.gguf"))
    assert load_settings(top_k=2).query.top_k == 2


def test_config_file_from_environment(tmp_path, monkeypatch):
    (tmp_path / "other.toml").write_text("top_k = 3\n")
    monkeypatch.setenv("ARCHIVIST_CONFIG", str(tmp_path / "other.toml"))
    assert load_settings().query.top_k == 3
    monkeypatch.setenv("ARCHIVIST_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


@pytest.mark.parametrize("env, value, message", [
    ("ARCHIVIST_TOP_K", "many", "top_k"),
    ("ARCHIVIST_CHUNK_OVERLAP_TOKENS", "500", "chunk_overlap_tokens"),
    ("ARCHIVIST_N_GPU_LAYERS", "-5", "n_gpu_layers"),
    ("ARCHIVIST_OCR", "sometimes", "ocr"),
    ("ARCHIVIST_OCR_TIMEOUT_S", "0", "ocr_timeout_s"),
])
def test_invalid_values_explain_themselves(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings()
    assert "archivist doctor" in err.value.hint


def test_a_misspelt_variable_is_named_with_the_setting_it_resembles(monkeypatch, caplog):
    from rag.core.settings import misspelt_variables

    monkeypatch.setenv("ARCHIVIST_CHROMA_ULR", "http://chroma:8001")
    monkeypatch.setenv("ARCHIVIST_STRESS", "1")  # another tool's variable: not a near miss
    assert misspelt_variables() == {"ARCHIVIST_CHROMA_ULR": "ARCHIVIST_CHROMA_URL"}
    with caplog.at_level("WARNING"):
        assert load_settings().store.chroma_url is None  # ignored, but not silently
    assert "ARCHIVIST_CHROMA_ULR is not a setting and is ignored: did you mean " \
           "ARCHIVIST_CHROMA_URL?" in caplog.text


def test_typos_in_the_config_file_are_rejected(tmp_path):
    (tmp_path / "archivist.toml").write_text("topk = 3\n")
    with pytest.raises(ConfigError, match="topk"):
        load_settings()


def test_sections_can_be_toml_tables_and_flat_keys_win(tmp_path, monkeypatch):
    (tmp_path / "archivist.toml").write_text("[retrieval]\nmin_score = 0.4\nrrf_k = 20\n\n"
                                             "[server]\nallowed_hosts = ['docs.example.org']\n")
    s = load_settings()
    assert (s.retrieval.min_score, s.retrieval.rrf_k) == (0.4, 20)
    assert s.server.allowed_hosts == ["docs.example.org"]
    monkeypatch.setenv("ARCHIVIST_MIN_SCORE", "0.6")
    monkeypatch.setenv("ARCHIVIST_ALLOWED_HOSTS", "a.example, b.example")
    s = load_settings()
    assert (s.retrieval.min_score, s.retrieval.rrf_k) == (0.6, 20)
    assert s.server.allowed_hosts == ["a.example", "b.example"]


def test_a_typo_inside_a_section_is_rejected(tmp_path):
    (tmp_path / "archivist.toml").write_text("[retrieval]\nmin_scor = 0.4\n")
    with pytest.raises(ConfigError, match="min_scor"):
        load_settings()


def test_components_default_to_the_tuned_settings():
    """One source of truth: a component built without arguments runs what users get."""
    from rag.core.retrieval_section import RetrievalConfig
    from rag.core.sections import SamplingParams
    from rag.core.settings import Settings

    s = Settings()
    assert RetrievalConfig() == s.retrieval and SamplingParams() == s.sampling
    tuned = RetrievalConfig()
    assert (tuned.min_score, tuned.lexical_weight, tuned.min_lexical_cjk) == (0.52, 0.5, 0.45)


def test_ocr_settings_from_the_environment(monkeypatch):
    assert (load_settings().ingest.ocr, load_settings().ingest.ocr_max_pages) == ("auto", 200)
    monkeypatch.setenv("ARCHIVIST_OCR", "off")
    monkeypatch.setenv("ARCHIVIST_OCR_MAX_PAGES", "5")
    monkeypatch.setenv("ARCHIVIST_OCR_TIMEOUT_S", "30")
    ingest = load_settings().ingest
    assert (ingest.ocr, ingest.ocr_max_pages, ingest.ocr_timeout_s) == ("off", 5, 30.0)


def test_db_url_picks_where_the_shared_state_lives(monkeypatch, tmp_path):
    s = load_settings(index_dir=tmp_path)
    assert s.db_url is None  # the default: SQLite files in the index folder
    assert s.records_db == tmp_path / "answers.sqlite3" and s.keys_db == tmp_path / "keys.sqlite3"
    url = "postgresql://archivist:secret@db:5432/archivist"
    monkeypatch.setenv("ARCHIVIST_DB_URL", url)
    s = load_settings()
    assert s.db_url == s.records_db == s.keys_db == url
    assert "secret" not in repr(s.store)  # the password stays out of logs and `doctor`
    monkeypatch.setenv("ARCHIVIST_DB_URL", "")
    assert load_settings().db_url is None
    monkeypatch.setenv("ARCHIVIST_DB_URL", "mysql://db/archivist")
    with pytest.raises(ConfigError, match="postgresql://"):
        load_settings()
