"""Scanned pages made on the spot: text drawn with Pillow, slightly rotated and speckled, saved as
image-only PDFs, PNGs and TIFFs.  Used by the OCR tests and bench/ocr.py; no binary fixtures."""

from __future__ import annotations

import random
from pathlib import Path

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")  # Debian fonts-wqy-zenhei (CJK + Latin)

# One topic per page, so a question finds exactly one page.
ENGLISH_PAGES = [
    ["Quarterly maintenance report", "The cooling pump in hall B was replaced on 12 March.",
     "Vibration stayed below 4 mm/s after the repair.", "Next inspection is due in September."],
    ["Visitor badge policy", "Visitors must wear a red badge at all times.",
     "Badges are returned to the front desk before leaving.", "Lost badges cost 25 euros."],
    ["Canteen opening hours", "The canteen opens at 7:30 and closes at 15:00.",
     "On Fridays soup is served until 14:00 only.", "Payment is by staff card."],
]
CHINESE_PAGES = [
    ["设备维护报告", "二号车间的冷却水泵已于三月更换。", "维修后振动值保持在正常范围内。"],
    ["访客管理规定", "所有访客必须全程佩戴红色胸卡。", "离开前请将胸卡交还前台。"],
    ["食堂开放时间", "食堂每天早上七点半开门。", "周五的汤只供应到下午两点。"],
]


def draw_page(lines: list[str], *, seed: int = 0, width: int = 1240, size: int = 34,
              angle: float = 0.8, noise: float = 0.002):
    """A page of text as a greyscale scan: rotated by `angle` degrees, with salt-and-pepper
    specks on `noise` of its pixels.  1240 px wide is A4 at 150 dpi."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), size)
    height = int(width * 1.414)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = 120
    for i, line in enumerate(lines):
        draw.text((100, y), line, font=font, fill=0)
        y += int(size * (2.4 if i == 0 else 1.7))
    page = page.rotate(angle, resample=Image.BICUBIC, fillcolor=255)
    rng = random.Random(seed)
    pixels = page.load()
    for _ in range(int(width * height * noise)):
        pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 255))
    return page


def save_pdf(path: Path, pages: list[list[str]], dpi: int = 150, **kw) -> Path:
    """An image-only PDF, one scanned page per entry (Pillow writes no text layer)."""
    images = [draw_page(lines, seed=i, **kw).convert("RGB") for i, lines in enumerate(pages)]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def save_tiff(path: Path, pages: list[list[str]], **kw) -> Path:
    images = [draw_page(lines, seed=i, **kw) for i, lines in enumerate(pages)]
    images[0].save(path, save_all=True, append_images=images[1:], compression="tiff_deflate")
    return path


def save_png(path: Path, lines: list[str], **kw) -> Path:
    draw_page(lines, **kw).save(path)
    return path
