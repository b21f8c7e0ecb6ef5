"""Bytes to text for plain-text formats: BOMs, UTF-8, then detected legacy encodings (GB18030, Big5, …)."""

from __future__ import annotations

import codecs

from rag.core.errors import ParseError

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
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return utf16
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = _detect(data)
    if "\x00" in text or _looks_binary(text):
        raise ParseError("the file looks binary, not text",
                         hint="Check that the file extension matches its content.")
    return text, encoding


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 text without a BOM, recognised by its zero bytes.

    Latin-script UTF-16 has a zero high byte in almost every other byte, all on the same side
    (odd offsets for little-endian); UTF-8 text never contains zero bytes, and binary data has
    them at both parities.  It would otherwise decode as "UTF-8" full of NULs and be rejected as
    binary.  (CJK UTF-16 without a BOM has few zeros and is left to charset detection.)"""
    if len(data) < 4 or len(data) % 2 or b"\x00" not in data[:4096]:
        return None
    sample = data[:65536]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    zeros, pairs = even + odd, len(sample) // 2
    if zeros < pairs * 0.2 or max(even, odd) < zeros * 0.95:
        return None
    encoding = "utf-16-le" if odd > even else "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    if "\x00" in text or _looks_binary(text):
        return None
    return text, encoding


# Single-byte code pages that charset-normalizer cannot tell apart on Western European text (it
# scores cp1250, cp1252 and cp1257 equally on "Grüße", and picks cp1250, which turns "crème
# brûlée" into "crčme brűlée").  On a tie, cp1252 (a superset of Latin-1's printable range) is
# by far the more common encoding of such files.
_WESTERN = ("cp1252", "latin_1", "iso8859_1", "iso8859_15")


def _prefer_western(results, best):
    for match in results:
        if (match.encoding in _WESTERN and match.chaos <= best.chaos
                and match.coherence >= best.coherence - 0.01):
            return match
    return best


def _detect(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise ParseError("could not determine the text encoding: the file may be binary",
                         hint="Save the file as UTF-8 and ingest again.")
    best = _prefer_western(results, best)
    encoding = _WIDEN.get(best.encoding.replace("_", "").lower(), best.encoding)
    try:
        return data.decode(encoding), encoding
    except (UnicodeDecodeError, LookupError):
        return str(best), best.encoding
