from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.settings import load_settings


def test_defaults():
    s = load_settings()
    assert s.data_dir == Path("data") and s.index_dir == Path(".archivist")
    assert s.llm_model is None and s.top_k == 4 and s.n_gpu_layers == -1


def test_toml_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "archivist.toml").write_text('top_k = 7\nn_gpu_layers = 20\ndata_dir = "docs"\n')
    assert load_settings().top_k == 7
    monkeypatch.setenv("ARCHIVIST_TOP_K", "9")
    monkeypatch.setenv("ARCHIVIST_LLM_MODEL", "/models/x.gguf")
    s = load_settings()
    assert (s.top_k, s.n_gpu_layers, s.data_dir, s.llm_model) == (9, 20, Path("docs"), Path("/models/x.gguf"))
    assert load_settings(top_k=2).top_k == 2


def test_config_file_from_environment(tmp_path, monkeypatch):
    (tmp_path / "other.toml").write_text("top_k = 3\n")
    monkeypatch.setenv("ARCHIVIST_CONFIG", str(tmp_path / "other.toml"))
    assert load_settings().top_k == 3
    monkeypatch.setenv("ARCHIVIST_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


@pytest.mark.parametrize("env, value, message", [
    ("ARCHIVIST_TOP_K", "many", "top_k"),
    ("ARCHIVIST_CHUNK_OVERLAP_TOKENS", "500", "chunk_overlap_tokens"),
    ("ARCHIVIST_N_GPU_LAYERS", "-5", "n_gpu_layers"),
])
def test_invalid_values_explain_themselves(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings()
    assert "archivist doctor" in err.value.hint


def test_typos_in_the_config_file_are_rejected(tmp_path):
    (tmp_path / "archivist.toml").write_text("topk = 3\n")
    with pytest.raises(ConfigError, match="topk"):
        load_settings()
