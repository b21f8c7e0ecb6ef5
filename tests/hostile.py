"""A corpus of hostile and broken files, written by the tests themselves.

`write_hostile(root, outside)` fills `root` and returns what each file must produce: the words
its chunks must contain (ingested), or a phrase its failure reason must contain (reported as
failed).  `outside` is a folder outside the data folder that links point into.
"""

from __future__ import annotations

import os
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.corpus import write_docx, write_pdf

SECRET = "outsidesecretword"  # only in files outside the data folder: must never be indexed
BIG_FILE_BYTES = 2_000_000  # over the 1 MB limit the hostile tests ingest with
BOMB_UNZIPPED = 200 * 1024 * 1024


@dataclass(frozen=True)
class Expect:
    words: tuple[str, ...] = ()  # ingested, and its text contains these
    failure: str | None = None  # failed, and the reason contains this

    @property
    def ok(self) -> bool:
        return self.failure is None


def zip_bomb(path: Path, unzipped: int = BOMB_UNZIPPED) -> None:
    """A .docx-shaped zip (about 200 KB) whose document.xml inflates to `unzipped` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with zf.open("word/document.xml", "w", force_zip64=True) as member:
            block = b" " * (1 << 20)
            for _ in range(unzipped // len(block)):
                member.write(block)


def encrypted_pdf(path: Path, source: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    with path.open("wb") as fh:
        writer.write(fh)


def write_hostile(root: Path, outside: Path) -> dict[str, Expect]:
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text(f"The {SECRET} lives outside.", encoding="utf-8")
    expect: dict[str, Expect] = {}

    # Empty and broken files.
    for name in ("empty.txt", "empty.md", "empty.csv", "empty.pdf", "empty.docx"):
        (root / name).write_bytes(b"")
        expect[name] = Expect(failure="the file is empty")
    (root / "blank.txt").write_bytes(b" \n\n\t \n")
    expect["blank.txt"] = Expect(failure="no text")
    (root / "not-a-zip.docx").write_bytes(b"This is plain text, not a Word document.")
    expect["not-a-zip.docx"] = Expect(failure="not a valid DOCX")

    write_pdf(root / "good.pdf")
    pdf = (root / "good.pdf").read_bytes()
    expect["good.pdf"] = Expect(words=("megawatts",))
    (root / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])
    expect["truncated.pdf"] = Expect(failure="damaged")
    rng = random.Random(7)
    corrupted = bytearray(pdf)
    for i in range(200, len(corrupted), 97):
        corrupted[i] = rng.randrange(256)
    (root / "corrupted.pdf").write_bytes(bytes(corrupted))
    expect["corrupted.pdf"] = Expect(failure="")  # either reason is fine: reported, not crashed
    encrypted_pdf(root / "encrypted.pdf", root / "good.pdf")
    expect["encrypted.pdf"] = Expect(failure="encrypted with a password")

    (root / "binary.txt").write_bytes(rng.randbytes(20_000))
    expect["binary.txt"] = Expect(failure="binary")
    (root / "elf.md").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(1000) + rng.randbytes(3000))
    expect["elf.md"] = Expect(failure="binary")
    zip_bomb(root / "bomb.docx")
    expect["bomb.docx"] = Expect(failure="zip bomb")
    (root / "big.txt").write_bytes(b"big file line\n" * (BIG_FILE_BYTES // 14))
    expect["big.txt"] = Expect(failure="over the 1 MB limit")

    # Legacy encodings, no BOM.
    enc = root / "encodings"
    enc.mkdir()
    texts = {
        "gbk.txt": ("gbk", "年假制度\n\n公司员工每年享有十五天带薪年假，未使用的年假可以顺延到下一年度。", ("十五天", "年假")),
        "big5.txt": ("big5", "報銷規定\n\n差旅費用必須在出差結束後三十日內提交報銷申請，逾期不予受理。", ("三十日", "報銷")),
        "utf16le.txt": ("utf-16-le", "Parking\n\nVisitors park in the blue zone behind building C.", ("blue zone",)),
        "utf16be.md": ("utf-16-be", "# Lunch\n\nThe canteen serves lunch from noon until two.", ("canteen",)),
        "latin1.txt": ("latin-1", "Le garçon a mangé une crème brûlée à la fenêtre. Grüße aus Köln.", ("crème brûlée", "Grüße", "Köln")),
    }
    for name, (codec, text, words) in texts.items():
        (enc / name).write_bytes(text.encode(codec))
        expect[f"encodings/{name}"] = Expect(words=words)

    # Links: a loop, and links leading out of the data folder.  None is followed.
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "up")
    os.symlink(root / "loop", root / "loop" / "self")
    os.symlink(outside, root / "outside-dir")
    os.symlink(outside / "secret.txt", root / "outside-file.txt")
    os.symlink(root / "missing.txt", root / "dangling.txt")

    # Awkward names: a newline, dots, bytes that are not UTF-8, deep nesting.
    (root / "new\nline.txt").write_text("Newline name: the ferry leaves at dawn.", encoding="utf-8")
    expect["new\\nline.txt"] = Expect(words=("ferry",))
    (root / "x..y.md").write_text("Dots in the name: the lighthouse keeper.", encoding="utf-8")
    expect["x..y.md"] = Expect(words=("lighthouse",))
    raw = os.path.join(os.fsencode(root), b"caf\xe9-\xff.txt")
    with open(raw, "wb") as fh:
        fh.write("Latin-1 name: the harbour master.".encode())
    expect["caf\\xe9-\\xff.txt"] = Expect(words=("harbour master",))
    deep = root.joinpath(*[f"level{i}" for i in range(1, 11)])
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("# Deep\n\nTen folders down: the anchor chain.", encoding="utf-8")
    expect["/".join(f"level{i}" for i in range(1, 11)) + "/deep.md"] = Expect(words=("anchor chain",))

    # The same file twice.
    (root / "dup").mkdir()
    write_docx(root / "dup" / "one.docx")
    (root / "dup" / "two.docx").write_bytes((root / "dup" / "one.docx").read_bytes())
    expect["dup/one.docx"] = expect["dup/two.docx"] = Expect(words=("18 tonnes",))
    return expect


def write_tiny_files(root: Path, count: int) -> None:
    """`count` two-line CSV files, 100 to a folder.  CSV because its parser is the cheapest: the
    test is about the pipeline at scale, and unstructured costs about 7 ms per text file."""
    for i in range(count):
        folder = root / f"batch{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note{i:05d}.csv").write_text(f"item,shelf\nitem{i},{i % 37}\n", encoding="utf-8")
