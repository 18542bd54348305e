"""Render simple receipt pages with Pillow, with exact word boxes: fixtures for tests and the
bundled sample. (Large-scale synthetic documents are a later issue; this is the seed of it.)
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from docsprint.io.document import Page, Word

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(FONT_DIR / name), size)
    except OSError:
        return ImageFont.load_default(size)


def render_lines(lines: list[str], width: int = 600, size: int = 20, margin: int = 30,
                 center: set[int] | None = None) -> Page:
    """Draw ``lines`` top to bottom; returns the page with one `Word` per drawn word."""
    f = font(size, mono=True)
    line_h = int(size * 1.6)
    height = margin * 2 + line_h * len(lines)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    words: list[Word] = []
    space = draw.textlength(" ", font=f)
    for i, line in enumerate(lines):
        y = margin + i * line_h
        total = draw.textlength(line, font=f)
        x = (width - total) / 2 if center and i in center else margin
        for token in line.split(" "):
            if token:
                x0, y0, x1, y1 = draw.textbbox((x, y), token, font=f)
                draw.text((x, y), token, font=f, fill="black")
                words.append(Word(token, (float(x0), float(y0), float(x1), float(y1))))
            x += draw.textlength(token, font=f) + space
    return Page(img, width, height, words)


def receipt_lines(fields: dict[str, str], seed: int = 0) -> list[str]:
    """A plausible Malaysian shop receipt (the SROIE genre) around the given fields."""
    rng = random.Random(seed)
    items = [("MINERAL WATER 500ML", 1.20), ("NOTEBOOK A5", 4.50), ("PEN BLUE 0.5", 2.10),
             ("BREAD WHITE", 3.80), ("TISSUE BOX", 5.90), ("COFFEE 3IN1", 12.40)]
    chosen = rng.sample(items, 3)
    lines = [fields["company"], "(" + str(rng.randint(100000, 999999)) + "-X)"]
    lines += textwrap.wrap(fields["address"], 34)
    lines += ["TEL: 07-" + str(rng.randint(3000000, 3999999)), "", "TAX INVOICE",
              f"DATE: {fields['date']}  TIME: {rng.randint(10, 21)}:{rng.randint(10, 59)}",
              "CASHIER: " + rng.choice(["AMIN", "SITI", "LEE"]), "-" * 36]
    for name, price in chosen:
        lines.append(f"{name:<26}{price:>8.2f}")
    lines += ["-" * 36, f"{'TOTAL':<26}{fields['total']:>8}", f"{'CASH':<26}{'50.00':>8}",
              "", "THANK YOU. PLEASE COME AGAIN."]
    return lines


SAMPLE_FIELDS = {
    "company": "KEDAI BUKU SINAR JAYA SDN BHD",
    "date": "14/03/2018",
    "address": "NO. 12, JALAN MERANTI 3, TAMAN UNIVERSITI, 81300 SKUDAI, JOHOR.",
    "total": "21.80",
}


def render_receipt(fields: dict[str, str] | None = None, seed: int = 0) -> Page:
    """A receipt page showing ``fields`` (company, date, address, total)."""
    fields = fields or SAMPLE_FIELDS
    header = 2 + len(textwrap.wrap(fields["address"], 34))
    return render_lines(receipt_lines(fields, seed), center=set(range(header)))
