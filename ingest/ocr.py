"""Text from pictures of text: scanned PDF pages and image files, on the CPU, offline.

rapidocr-onnxruntime runs the PP-OCRv4 detection and recognition models (Chinese and English in one
model) that ship inside its wheel, so nothing is downloaded at run time; `model_files()` names them
for `archivist doctor`.  Pages are recognised in a pool of worker processes, one per usable core,
each with a single-threaded ONNX session: whole pages in parallel scale better than threads inside
one page, and a worker that crashes on a hostile image takes only that page with it.

Workers are started with "spawn": the ingesting process holds threads (torch, Chroma, SQLite) that
a forked child could inherit mid-lock.  A task names the file and page rather than carrying the
image, so pages are rendered in the workers too.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from rag.models.gpu import usable_cpus

log = logging.getLogger(__name__)

# Chosen with bench/ocr.py on generated A4 scans: English character accuracy 0.988 / 0.994 /
# 0.997 at 150 / 200 / 300 dpi for 11.5 pt text, 0.919 / 0.935 / 0.952 for 8.6 pt (Chinese 1.0 at
# all three), for 1.6 / 2.0 / 2.0 CPU seconds per page: RapidOCR scales every page down to 2000 px
# on its long side, so a finer rendering costs little more and gives it a smoother image.
RENDER_DPI = 300
# A large-format page (a drawing, a poster) is rendered at a lower resolution so that its long side
# stays within this: the recogniser would scale it down anyway, and memory stays bounded.
MAX_RENDER_PX = 4000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
# Boxes recognised with less confidence than this are dropped: below it they are mostly specks,
# stamps and rules read as stray characters.
MIN_BOX_SCORE = 0.5


@dataclass(frozen=True)
class OcrPage:
    number: int  # 1-based page (PDF page or TIFF frame)
    text: str  # lines top to bottom, boxes of one line left to right
    confidence: float | None  # mean recogniser score of the kept boxes; None when nothing was read


@dataclass
class OcrResult:
    pages: dict[int, OcrPage] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # why some pages were not read, for the report


def model_files() -> list[Path]:
    """The ONNX model files the recogniser loads (they ship in the rapidocr-onnxruntime wheel)."""
    import importlib.util

    import yaml

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        return []
    root = Path(spec.origin).parent
    config = yaml.safe_load((root / "config.yaml").read_text())
    return [root / config[part]["model_path"] for part in ("Det", "Cls", "Rec")]


# --- inside a worker process ------------------------------------------------------------------

_ENGINE = None


def _engine():
    global _ENGINE
    if _ENGINE is None:
        from rapidocr_onnxruntime import RapidOCR

        # One thread per worker: the pool already has one worker per core.
        _ENGINE = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    return _ENGINE


def load_page_image(path: Path, index: int, dpi: int = RENDER_DPI):
    """Page `index` (0-based) of a PDF rendered at `dpi`, or frame `index` of an image, as RGB."""
    if path.suffix.lower() == ".pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(path))
        try:
            page = pdf[index]
            scale = min(dpi / 72, MAX_RENDER_PX / max(page.get_size()))
            return page.render(scale=scale).to_pil().convert("RGB")
        finally:
            pdf.close()
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.seek(index)
        # A phone photo is stored sideways with an EXIF note to turn it: the recogniser only
        # turns lines upside down, not by 90 degrees.
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((MAX_RENDER_PX, MAX_RENDER_PX))  # the recogniser scales it down anyway
        return upright.convert("RGB")


def recognise(image) -> tuple[str, float | None]:
    """Text of a PIL image in reading order, and the mean confidence of what was read."""
    import numpy as np

    result, _ = _engine()(np.asarray(image)[:, :, ::-1])  # RapidOCR wants OpenCV's BGR
    boxes = [(box, text.strip(), float(score)) for box, text, score in (result or [])
             if text.strip() and float(score) >= MIN_BOX_SCORE]
    if not boxes:
        return "", None
    return "\n".join(reading_order([(b, t) for b, t, _ in boxes])), sum(s for *_, s in boxes) / len(boxes)


def reading_order(boxes: list[tuple[list, str]]) -> list[str]:
    """Lines of text from (quadrilateral, text) boxes: boxes whose vertical centres fall within
    half a line height of a line's first box join it, left to right; lines run top to bottom.

    A box belongs to the line whose centre it overlaps, not the one its top edge is nearest: a
    slightly rotated scan makes the right end of a line sit lower than its left end."""
    items = []
    for box, text in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text))
    items.sort(key=lambda item: (item[0], item[2]))
    lines: list[list[tuple]] = []
    for item in items:
        line = lines[-1] if lines else None
        if line and abs(item[0] - line[0][0]) <= max(line[0][1], item[1]) / 2:
            line.append(item)
        else:
            lines.append([item])
    return [_join([text for *_, text in sorted(line, key=lambda i: i[2])]) for line in lines]


def _join(parts: list[str]) -> str:
    """Boxes of one line: a space between Latin words, none between Chinese characters."""
    out = parts[0]
    for part in parts[1:]:
        out += part if _is_cjk(out[-1]) and _is_cjk(part[0]) else " " + part
    return out


def _is_cjk(ch: str) -> bool:
    return "\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def _task(path: str, index: int, dpi: int) -> tuple[int, str, float | None]:
    text, confidence = recognise(load_page_image(Path(path), index, dpi))
    return index, text, confidence


# --- in the ingesting process ------------------------------------------------------------------

class Ocr:
    """Reads pages of files with a pool of worker processes, started on first use.

    `max_pages` and `timeout_s` bound the cost of one file: pages past the limit, or not started
    before the time runs out, are skipped and said so in OcrResult.skipped.  A page already being
    read when the time runs out may finish within `grace_s` (stopping a worker mid-page costs
    starting a new one and loading its models again); a page stuck past that is given up and the
    workers are killed."""

    def __init__(self, max_pages: int, timeout_s: float, workers: int | None = None,
                 dpi: int = RENDER_DPI, grace_s: float = 30.0) -> None:
        self.max_pages = max_pages
        self.timeout_s = timeout_s
        self.workers = workers or usable_cpus()
        self.dpi = dpi
        self.grace_s = grace_s
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _kill(self) -> None:
        """Stop the workers now, whatever they are doing; the next page starts a new pool."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Python 3.14 has terminate_workers(); before it, the pool's processes are only reachable
        # through its private table.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def read(self, path: Path, indexes: list[int]) -> OcrResult:
        """OCR these 0-based pages of `path`, in parallel, within the file's limits."""
        result = OcrResult()
        wanted, over = indexes[:self.max_pages], indexes[self.max_pages:]
        if over:
            result.skipped.append(
                f"{len(over)} page(s) not OCRed ({_pages(over)}): over the limit of "
                f"{self.max_pages} OCR pages per file (ARCHIVIST_OCR_MAX_PAGES)")
        if not wanted:
            return result
        pool = self._executor()
        deadline = time.monotonic() + self.timeout_s
        queue = list(wanted)
        running: dict[Future, int] = {}
        late: list[int] = []
        # Submit one page per worker at a time, so that pages not yet started can be skipped
        # when the time runs out instead of waiting in the pool's queue.
        while queue or running:
            while queue and len(running) < self.workers:
                if time.monotonic() >= deadline:
                    late.extend(queue)
                    queue.clear()
                    break
                index = queue.pop(0)
                running[pool.submit(_task, str(path), index, self.dpi)] = index
            if not running:
                break
            done, _ = wait(running, timeout=max(0.0, deadline + self.grace_s - time.monotonic()),
                           return_when=FIRST_COMPLETED)
            if not done:  # past the deadline and its grace, a page is still being read: give up
                late.extend(running.values())
                late.extend(queue)
                running.clear()
                queue.clear()
                self._kill()
                break
            for future in done:
                index = running.pop(future)
                try:
                    _, text, confidence = future.result()
                except Exception as exc:  # a page the renderer or recogniser cannot read
                    log.warning("OCR failed on page %d of %s: %s", index + 1, path, exc)
                    result.skipped.append(f"page {index + 1} could not be OCRed ({type(exc).__name__}: {exc})")
                    if type(exc).__name__ == "BrokenProcessPool":  # a worker died (e.g. out of memory)
                        self._kill()
                        pool = self._executor()
                    continue
                result.pages[index + 1] = OcrPage(index + 1, text, confidence)
        if late:
            result.skipped.append(
                f"{len(late)} page(s) not OCRed ({_pages(late)}): the file's OCR time limit of "
                f"{self.timeout_s:g} s ran out (ARCHIVIST_OCR_TIMEOUT_S)")
        return result


def _pages(indexes: list[int]) -> str:
    """'pages 3-7, 9' from 0-based indexes."""
    numbers = sorted(i + 1 for i in indexes)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return ("pages " if len(numbers) > 1 else "page ") + text


def frame_count(path: Path) -> int:
    """Pages of an image file (a multi-page TIFF has several)."""
    from PIL import Image

    with Image.open(path) as image:
        return getattr(image, "n_frames", 1)
