"""Bytes to text for plain-text formats: BOMs, UTF-8, then detected legacy encodings (GB18030, Big5, …)."""

from __future__ import annotations

import codecs

from rag.errors import ParseError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# charset-normalizer reports GBK/GB2312 for simplified Chinese; GB18030 is their superset and
# decodes every byte sequence they do, so prefer it.
_WIDEN = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "ascii": "utf-8"}


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return controls / len(sample) > 0.05


def decode_text(data: bytes) -> tuple[str, str]:
    """Return (text, encoding used).  Raises ParseError for bytes that are not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = _detect(data)
    if "\x00" in text or _looks_binary(text):
        raise ParseError("the file looks binary, not text",
                         hint="Check that the file extension matches its content.")
    return text, encoding


def _detect(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise ParseError("could not determine the text encoding: the file may be binary",
                         hint="Save the file as UTF-8 and ingest again.")
    encoding = _WIDEN.get(best.encoding.replace("_", "").lower(), best.encoding)
    try:
        return data.decode(encoding), encoding
    except (UnicodeDecodeError, LookupError):
        return str(best), best.encoding
