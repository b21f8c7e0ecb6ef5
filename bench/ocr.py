"""OCR figures for scanned documents: character accuracy per language and render resolution,
seconds per page on this machine, and retrieval hit rate on questions about scanned pages with
OCR (ARCHIVIST_OCR=auto) against without it (=off, what Archivist did before).

    .venv/bin/python bench/ocr.py            # about two minutes on 2 cores

The pages are drawn like tests/scans.py draws them (English and Chinese, rotated 0.8 degrees,
speckled), as a 300 dpi scan in an image-only PDF, then rendered back at each resolution.
Accuracy is 1 - (Levenshtein distance / reference length), whitespace runs counted as one space.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import ocr  # noqa: E402
from rag.models.gpu import usable_cpus  # noqa: E402
from tests.scans import CHINESE_PAGES, ENGLISH_PAGES, save_pdf, save_png, save_tiff  # noqa: E402

DPIS = (100, 150, 200, 300)
# 48 px at 300 dpi is 11.5 pt: body text of an ordinary letter or report.
SCAN = {"dpi": 300, "width": 2480, "size": 48}

# Two more pages, so that every page of the retrieval set is about its own topic.
PARKING = ["Parking rules", "Staff park in the north lot behind the warehouse.",
           "Bicycles go in the covered racks next to gate 2.", "Cars left overnight are towed."]
PARKING_ZH = ["停车规定", "员工车辆请停在仓库北侧停车场。", "自行车请停放在二号门旁的车棚内。"]
QUESTIONS = [
    ("When was the cooling pump replaced?", "scan.pdf", 1),
    ("How high was the vibration after the repair?", "scan.pdf", 1),
    ("When does the canteen close?", "scan.pdf", 2),
    ("Where do staff park their cars?", "scan.pdf", 3),
    ("What does a lost badge cost?", "fax.tif", 1),
    ("冷却水泵什么时候更换的？", "scan-zh.pdf", 1),
    ("自行车停在哪里？", "scan-zh.pdf", 2),
    ("访客离开前要把胸卡交给谁？", "fax.tif", 2),
    ("访客必须佩戴什么颜色的胸卡？", "fax.tif", 2),
    ("周五的汤供应到几点？", "note.png", None),
]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def accuracy(reference: str, recognised: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = _norm(reference), _norm(recognised)
    return max(0.0, 1 - Levenshtein.distance(ref, hyp) / len(ref))


def measure_resolutions(folder: Path) -> None:
    print("OCR character accuracy and seconds per page (one core) by render resolution")
    # CPU seconds as well as wall seconds: on a machine shared with other work, the CPU time is
    # what a page costs on an idle core (the recogniser runs one thread here, as in the workers).
    print(f"{'dpi':>4} {'English':>8} {'Chinese':>8} {'s/page':>7} {'CPU s/page':>10}")
    sets = {"English": ENGLISH_PAGES + [PARKING], "Chinese": CHINESE_PAGES + [PARKING_ZH]}
    pdfs = {lang: save_pdf(folder / f"{lang}.pdf", pages, **SCAN) for lang, pages in sets.items()}
    ocr.recognise(ocr.load_page_image(pdfs["English"], 0, 100))  # load the models first
    for dpi in DPIS:
        scores, seconds, cpu, count = {}, 0.0, 0.0, 0
        for lang, pages in sets.items():
            total = 0.0
            for index, lines in enumerate(pages):
                started, started_cpu = time.perf_counter(), time.process_time()
                text, _ = ocr.recognise(ocr.load_page_image(pdfs[lang], index, dpi))
                seconds += time.perf_counter() - started
                cpu += time.process_time() - started_cpu
                count += 1
                total += accuracy("\n".join(lines), text)
            scores[lang] = total / len(pages)
        print(f"{dpi:>4} {scores['English']:>8.3f} {scores['Chinese']:>8.3f} {seconds / count:>7.2f} "
              f"{cpu / count:>10.2f}")


def measure_pool(folder: Path) -> None:
    """Pages per second through the worker pool (one process per usable core), as ingest runs it."""
    pages = (ENGLISH_PAGES + [PARKING] + CHINESE_PAGES + [PARKING_ZH]) * 2
    path = save_pdf(folder / "pool.pdf", pages, **SCAN)
    reader = ocr.Ocr(max_pages=len(pages), timeout_s=3600)
    try:
        started = time.perf_counter()
        reader.read(path, [0])  # starts the workers and loads their models
        warm = time.perf_counter()
        result = reader.read(path, list(range(len(pages))))
        done = time.perf_counter()
    finally:
        reader.close()
    print(f"\nPool of {reader.workers} workers: start {warm - started:.1f} s, then {len(result.pages)} "
          f"pages in {done - warm:.1f} s ({(done - warm) / len(pages):.2f} s per page)")


def write_scans(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_pdf(folder / "scan.pdf", [ENGLISH_PAGES[0], ENGLISH_PAGES[2], PARKING], **SCAN)
    save_pdf(folder / "scan-zh.pdf", [CHINESE_PAGES[0], PARKING_ZH], **SCAN)
    save_tiff(folder / "fax.tif", [ENGLISH_PAGES[1], CHINESE_PAGES[1]])
    save_png(folder / "note.png", CHINESE_PAGES[2], angle=-1.2)


def measure_retrieval(root: Path) -> None:
    from rag.core.offline import enforce_offline
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.files import resolve_embed_model
    from tests.workspace import Workspace

    enforce_offline()
    embedder = SentenceTransformerEmbedder(resolve_embed_model("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2")
    write_scans(root / "scans")
    pages = 3 + 2 + 2 + 1
    print(f"\nRetrieval over {pages} scanned pages in 4 files, {len(QUESTIONS)} questions "
          f"({sum(1 for q in QUESTIONS if q[0].isascii())} English)")
    for mode in ("off", "auto"):
        shutil.copytree(root / "scans", root / mode / "data")
        ws = Workspace.make(root / mode, embedder=embedder, ocr=mode)
        started = time.perf_counter()
        report = ws.indexer.ingest()
        took = time.perf_counter() - started
        hit1 = hit3 = 0
        for question, source, page in QUESTIONS:
            try:
                found = [(c.source, c.page) for c in ws.assistant.search(question, top_k=3)]
            except Exception:  # an empty index
                found = []
            hit1 += found[:1] == [(source, page)]
            hit3 += (source, page) in found
            if mode == "auto" and found[:1] != [(source, page)]:
                print(f"  miss: {question!r} wanted {source} p.{page}, got {found}")
        n = len(QUESTIONS)
        label = "before (OCR off)" if mode == "off" else "now (OCR auto) "
        print(f"{label}: hit@1 {hit1 / n:.2f}, hit@3 {hit3 / n:.2f}; ingest {took:.1f} s "
              f"({report.added} files indexed, {report.failed} failed)")


def main() -> None:
    print(f"usable cores: {usable_cpus()}, load average {os.getloadavg()[0]:.1f}, "
          f"render resolution in use: {ocr.RENDER_DPI} dpi\n")
    with tempfile.TemporaryDirectory() as tmp:
        measure_resolutions(Path(tmp))
        measure_pool(Path(tmp))
        measure_retrieval(Path(tmp) / "retrieval")


if __name__ == "__main__":
    main()
