"""The one settings object: defaults < archivist.toml < ARCHIVIST_* environment < explicit arguments.

Built once by the entry point (CLI or app factory) and passed down; nothing here reads the
environment at import time.  The environment variable names (ARCHIVIST_DATA_DIR, ...) are a
public interface that outside tools rely on: keep them stable.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.core import model_defaults
from rag.core.collection_folders import COLLECTION_NAME, DEFAULT as DEFAULT_COLLECTION
from rag.core.errors import ConfigError
from rag.core.retrieval_section import RetrievalConfig
from rag.core.sections import (AnswerConfig, AuditConfig, ChunkingConfig, EmbeddingConfig,
                               IngestConfig, LlmConfig, QueryConfig, RemoteServers, SamplingParams,
                               Section, ServerConfig, StoreConfig)

SECTIONS: dict[str, type[Section]] = {
    "embedding": EmbeddingConfig, "chunking": ChunkingConfig, "ingest": IngestConfig,
    "store": StoreConfig, "audit": AuditConfig,
    "query": QueryConfig, "retrieval": RetrievalConfig, "answer": AnswerConfig,
    "llm": LlmConfig, "sampling": SamplingParams, "server": ServerConfig,
}

log = logging.getLogger(__name__)

CONFIG_ENV = "ARCHIVIST_CONFIG"
DEFAULT_CONFIG_FILE = "archivist.toml"
ENV_PREFIX = "ARCHIVIST_"



@dataclass(frozen=True)
class ChromaTarget:
    """Where the vectors live: the embedded store's folder, or a Chroma server's URL."""

    path: Path
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    ef_search: int | None = None  # HNSW's search breadth (StoreConfig.hnsw_ef_search); None: Chroma's

    @property
    def remote(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        return self.url if self.url else str(self.path)


class FlatEnvSource(PydanticBaseSettingsSource):
    """ARCHIVIST_<FIELD> for every field, top-level or inside a section: the environment names
    users know (ARCHIVIST_MIN_SCORE, not ARCHIVIST_RETRIEVAL__MIN_SCORE).  Values stay strings;
    the fields' validators convert them."""

    def get_field_value(self, field, field_name):  # unused: __call__ reads everything at once
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        return {name: env[f"{ENV_PREFIX}{name.upper()}"] for name in _flat_names()
                if f"{ENV_PREFIX}{name.upper()}" in env}


def _flat_names() -> list[str]:
    top = [name for name in Settings.model_fields if name not in SECTIONS]
    return top + list(_PATH_OF)


def _paths() -> dict[str, tuple[str, ...]]:
    """Flat field name -> where it lives: "min_score" -> ("retrieval", "min_score"), and a nested
    section's fields after its prefix: "embed_url" -> ("embedding", "servers", "url")."""
    paths: dict[str, tuple[str, ...]] = {}
    for section, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            nested = info.annotation
            if isinstance(nested, type) and issubclass(nested, RemoteServers):
                paths.update({nested.FLAT_PREFIX + sub: (section, name, sub)
                              for sub in nested.model_fields})
            else:
                paths[name] = (section, name)
    return paths


_PATH_OF = _paths()


def _put(data: dict, path: tuple[str, ...], value: Any) -> None:
    """data[path[0]][path[1]]... = value, each level a dict (a given section object is dumped)."""
    *parents, last = path
    for key in parents:
        given = data.get(key) or {}
        data[key] = given = dict(given.model_dump() if isinstance(given, BaseModel) else given)
        data = given
    data[last] = value


class Settings(BaseSettings):
    """Everything configurable, in sections (rag/core/sections.py).  Each field maps to the
    environment variable ARCHIVIST_<NAME> and to a flat archivist.toml key of the same name; a TOML
    table per section ([retrieval] min_score = 0.5) works too."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True, frozen=True)

    data_dir: Path = Field(Path("data"), description="Folder whose files are indexed.")
    index_dir: Path = Field(
        Path(".archivist"), description="Folder holding the Chroma store and the ingest manifest.")
    models_dir: Path = Field(
        Path("models"), description="Folder of chat models (.gguf): `archivist models list` "
        "shows them, `models use` chooses one (models/active.json), `models pull` adds "
        "catalogued ones.")
    collection: str = Field(
        DEFAULT_COLLECTION, pattern=COLLECTION_NAME,
        description="Collection used when a request or command names none: 'default' is the data "
        "folder itself, any other a marked sub-folder (see rag/core/collection_folders.py).")

    embedding: EmbeddingConfig = EmbeddingConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    ingest: IngestConfig = IngestConfig()
    store: StoreConfig = StoreConfig()
    audit: AuditConfig = AuditConfig()
    query: QueryConfig = QueryConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    answer: AnswerConfig = AnswerConfig()
    llm: LlmConfig = LlmConfig()
    sampling: SamplingParams = SamplingParams()
    server: ServerConfig = ServerConfig()

    @model_validator(mode="before")
    @classmethod
    def _into_sections(cls, data: Any) -> Any:
        """Flat keys (environment, archivist.toml, keyword arguments) go to their section; a flat
        key overrides the same key given in a section table.  Then the embedding model's tuned
        defaults fill what is not given (rag/core/model_defaults.py)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section in SECTIONS:  # [embedding] embed_url = ...: flat names inside a section table
            given = data.get(section)
            if isinstance(given, dict):
                for name in [key for key in given if _PATH_OF.get(key, ())[:1] == (section,)
                             and len(_PATH_OF[key]) > 2]:
                    given = dict(given)
                    value = given.pop(name)
                    data[section] = given
                    _put(data, _PATH_OF[name], value)
        for name in [key for key in data if key in _PATH_OF]:
            _put(data, _PATH_OF[name], data.pop(name))
        return model_defaults.apply(data, EmbeddingConfig.model_fields["embed_model"].default)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE)
        return (init_settings, FlatEnvSource(settings_cls),
                TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    def for_collection(self, name: str, embed_model: str | None = None) -> Settings:
        """The settings of one collection: its name, and, where it chose an embedding model of
        its own, that model with its tuned defaults (rag/core/model_defaults.py) in place of the
        configured model's; settings given explicitly stay as given."""
        update: dict[str, Any] = {"collection": name}
        configured = self.embedding.embed_model
        if embed_model and embed_model != configured:
            update["embedding"] = self.embedding.model_copy(update={"embed_model": embed_model})
            for section, values in model_defaults.retuned(self, configured, embed_model).items():
                update[section] = values
        return self.model_copy(update=update)

    @property
    def chroma_dir(self) -> Path:
        """The embedded Chroma store's folder (unused when a Chroma server holds the vectors)."""
        return self.index_dir / "chroma"

    @property
    def chroma(self) -> ChromaTarget:
        token = self.store.chroma_token
        return ChromaTarget(self.chroma_dir, self.store.chroma_url,
                            token.get_secret_value() if token else None, self.store.hnsw_ef_search)

    @property
    def shares_state(self) -> bool:
        """Vectors on a Chroma server and everything else in PostgreSQL: several `archivist
        serve` processes (replicas) and CLI commands may then work on the index at once."""
        return bool(self.store.chroma_url and self.store.db_url)

    @property
    def db_url(self) -> str | None:
        """The PostgreSQL database holding the shared state, if one does
        (rag/storage/database.py)."""
        url = self.store.db_url
        return url.get_secret_value() if url else None

    @property
    def keys_path(self) -> Path:
        return self.index_dir / "keys.sqlite3"

    @property
    def records_path(self) -> Path:
        return self.index_dir / "answers.sqlite3"

    @property
    def keys_db(self) -> Path | str:
        """Where the API keys and sessions live: the SQLite file, or the database URL."""
        return self.db_url or self.keys_path

    @property
    def records_db(self) -> Path | str:
        """Where answer records, conversations and the response cache live."""
        return self.db_url or self.records_path

    @property
    def audit_db(self) -> Path | str:
        """Where the audit log lives (rag/audit/log.py)."""
        return self.db_url or self.index_dir / "audit.sqlite3"


def misspelt_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """ARCHIVIST_* variables that are no setting but look like one: {given: meant}.  A typo in
    archivist.toml is an error; one in the environment would otherwise be silently ignored (say,
    ARCHIVIST_CHROMA_ULR, and the index quietly stays local).  Other ARCHIVIST_* names are left
    alone: tools may have their own."""
    import difflib

    known = [f"{ENV_PREFIX}{name.upper()}" for name in _flat_names()] + [CONFIG_ENV]
    found = {}
    for key in (os.environ if environ is None else environ):
        key = key.upper()
        if key.startswith(ENV_PREFIX) and key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
            if close:
                found[key] = close[0]
    return found


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable ConfigError."""
    for given, meant in misspelt_variables().items():
        log.warning("%s is not a setting and is ignored: did you mean %s?", given, meant)
    config_file = os.environ.get(CONFIG_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{CONFIG_ENV} points at {config_file}, which does not exist.",
                          hint=f"Create the file or unset {CONFIG_ENV}.")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"Invalid configuration: {problems}.",
            hint="Fix archivist.toml or the ARCHIVIST_* environment variables "
            "(`archivist doctor` shows what is in effect).",
        ) from exc
