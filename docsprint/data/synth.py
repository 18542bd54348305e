"""Synthetic documents with exact word boxes and key-value ground truth.

``docsprint synth --kind receipt --n 1000 --seed 0 --out runs/synth`` writes
``runs/synth/images/*.jpg`` and ``runs/synth/train.jsonl`` (`docsprint.data.store` format,
read by the ``synth`` dataset). Four kinds here: receipts (line items as lists), invoices (a table),
forms (printed labels are the keys) and letters (free text with a few fields); invoices,
receipts and credit notes in six languages in `docsprint.data.business`, US tax forms in
`docsprint.data.irsforms`, payslips in `docsprint.data.payslip`, cards, bills of lading and
utility bills in `docsprint.data.everyday`.

Every document is a function of (kind, seed, index) only, so any slice of a run can be
regenerated. Keys are free text and vary in wording ("total", "amount due", ...) so that a
model learns to read the key rather than memorise a schema; some keys are asked for although
the page does not have them (value null). Pages get varied fonts, sizes, margins, stamps,
slight rotation, blur, noise and JPEG artefacts; boxes follow every geometric change.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from docsprint.data.store import Fields, write_jsonl
from docsprint.io.document import Document, Page, Word

FONT_DIRS = [Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype")]
KINDS = ("receipt", "invoice", "form", "letter", "invoice-intl", "receipt-intl", "taxform", "irsform", "payslip",
         "card", "lading", "utility", "office")
# Mixtures, drawn in turn: "mixed" is every kind once (payslips aside: held out of training for
# the fine-tuning learning curve); "business" leans on the documents users
# bring most (invoices in six languages, receipts, boxed tax forms and the US forms as printed).
MIXES = {"mixed": [k for k in KINDS if k != "payslip"],
         "business": ["invoice-intl", "receipt-intl", "invoice-intl", "taxform", "invoice-intl", "form",
                      "receipt-intl", "invoice", "letter", "invoice-intl", "receipt", "irsform", "irsform"],
         # the business mix with nearly twice the printed US forms: 4 of every 15 pages
         "business-forms": ["invoice-intl", "receipt-intl", "irsform", "invoice-intl", "taxform", "irsform",
                            "invoice-intl", "form", "receipt-intl", "irsform", "invoice", "letter", "invoice-intl",
                            "receipt", "irsform"],
         # business-forms and the other papers users bring: business cards, bills of lading and
         # utility bills (`docsprint.data.everyday`), one each in every 20 pages, and office
         # paperwork with questions as printed (`docsprint.data.office`), two in every 20
         "everyday": ["invoice-intl", "receipt-intl", "irsform", "invoice-intl", "taxform", "irsform", "card",
                      "invoice-intl", "form", "office", "receipt-intl", "irsform", "lading", "invoice", "letter",
                      "invoice-intl", "receipt", "irsform", "utility", "office"]}
# everyday with two more invoices in every 22 pages (6 of 22, not 4 of 20): realworld-dev's
# commonest papers, whose layouts (stacked parties, tax summary tables, payment terms) are
# each a slice of the invoices
MIXES["everyday-invoices"] = MIXES["everyday"] + ["invoice-intl", "invoice-intl"]

FIRST = ("James Mary Ahmad Siti Wei Ling Robert Linda Kumar Priya Hans Greta Carlos Ana Yuki Kenji "
         "Fatima Omar Olga Ivan Chloe Liam Noah Emma Ravi Mei Tan Aisha David Sarah").split()
LAST = ("Smith Tan Lim Wong Garcia Muller Rossi Kowalski Nguyen Haddad Okafor Silva Johnson Brown "
        "Lee Chen Kim Novak Schmidt Dubois Ibrahim Patel Sato Lopez Martin Walker Young Khan").split()
ORG_A = ("Golden Sunrise Pacific Northern Blue Ocean Green Valley Royal Summit Eastern Prime United "
         "Silver Crescent Maple Harbor Lotus Apex Coral Cedar Orchid Phoenix Atlas").split()
ORG_B = ("Trading Hardware Bakery Restaurant Pharmacy Stationery Electronics Logistics Holdings "
         "Foods Mart Books Supplies Clinic Motors Textiles Consulting Imports Cafe Kitchen").split()
ORG_C = ["Sdn Bhd", "Inc.", "Ltd", "LLC", "Enterprise", "Co.", "GmbH", "Pte Ltd", "Corp.", ""]
STREETS = ("Jalan Bukit Main Oak Church Station Harbour Market King Queen Park Mill River Lake "
           "Hill Garden Victoria Merdeka Ampang Maple Elm").split()
STREET_T = ["Street", "Road", "Avenue", "Jalan", "Lane", "Boulevard", "Drive", "Way"]
CITIES = ("Kuala Lumpur|Johor Bahru|Penang|Singapore|London|Manchester|Boston|Denver|Austin|Berlin|"
          "Munich|Lyon|Toronto|Sydney|Auckland|Chicago|Seattle|Dublin|Leeds|Oakland").split("|")
PRODUCTS = ("Coffee|Tea|Milk|Bread|Rice 5kg|Sugar|Eggs 10pcs|Chicken Rice|Nasi Lemak|Noodles|Water 1.5L|"
            "Pen Blue|A4 Paper|Stapler|Notebook|Battery AA|USB Cable|Cake|Orange Juice|Soap|Shampoo|"
            "Towel|Screw 4mm|Paint 1L|Brush|Tape|Glue|Sandwich|Burger|Fries|Salad|Latte|Mocha|Donut|"
            "Apple|Banana|Cheese|Yogurt|Butter|Cereal|Chocolate|Biscuits|Tissue|Detergent").split("|")
MONTHS = ("January February March April May June July August September October November "
          "December").split()
WORDS = ("the of and to in for on with as by at from that this is be are was will shall may any "
         "party agreement information services payment delivery order account period notice "
         "company customer terms confidential request provide date within days written receipt "
         "invoice statement report please thank you regards attached following review meeting "
         "project schedule budget approval office department quality contract product").split()


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def company(rng: random.Random) -> str:
    name = f"{rng.choice(ORG_A)} {rng.choice(ORG_B)} {rng.choice(ORG_C)}".strip()
    return name.upper() if rng.random() < 0.4 else name


def address(rng: random.Random) -> str:
    return (f"{rng.randint(1, 999)} {rng.choice(STREETS)} {rng.choice(STREET_T)}, "
            f"{rng.randint(10000, 99999)} {rng.choice(CITIES)}")


def date(rng: random.Random) -> str:
    d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1995, 2026)
    style = rng.randrange(5)
    if style == 0:
        return f"{d:02d}/{m:02d}/{y}"
    if style == 1:
        return f"{y}-{m:02d}-{d:02d}"
    if style == 2:
        return f"{MONTHS[m - 1]} {d}, {y}"
    if style == 3:
        return f"{d} {MONTHS[m - 1][:3]} {y}"
    return f"{d:02d}.{m:02d}.{y % 100:02d}"


def money(rng: random.Random, lo: float = 0.5, hi: float = 300.0) -> float:
    return round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 2)


def phone(rng: random.Random) -> str:
    return f"{rng.choice(['+60 ', '+1 ', '0', '(03) ', '+44 '])}{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"


def key_name(rng: random.Random, *names: str) -> str:
    """One wording of a key, in a random case."""
    k = rng.choice(names)
    return k.upper() if rng.random() < 0.15 else k


@lru_cache(maxsize=1)
def font_files() -> tuple[Path, ...]:
    """Every TrueType font installed (DejaVu at least; more if font packages are installed)."""
    files = sorted(p for d in FONT_DIRS if d.is_dir() for p in d.rglob("*.ttf"))
    return tuple(p for p in files if "Math" not in p.name)


@lru_cache(maxsize=512)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


@lru_cache(maxsize=65536)
def _bbox(path: str, size: int, token: str) -> tuple[float, float, float, float]:
    """Ink box of ``token`` drawn at (0, 0) (words repeat, so this is worth caching)."""
    return tuple(float(v) for v in load_font(path, size).getbbox(token))  # type: ignore[return-value]


@lru_cache(maxsize=65536)
def _length(path: str, size: int, s: str) -> float:
    return float(load_font(path, size).getlength(s))


@dataclass
class Canvas:
    """A page being drawn: every word drawn is recorded with its exact box."""

    width: int
    height: int
    rng: random.Random
    fonts: list[str]
    words: list[Word] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Grey-scale, like most scans (and three times cheaper to draw, rotate and blur).
        self.paper = self.rng.randint(215, 255)
        self.image = Image.new("L", (self.width, self.height), self.paper)
        self.draw = ImageDraw.Draw(self.image)
        self.ink = self.rng.randint(0, 70)

    def font(self, size: int, which: int = 0) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return load_font(self.fonts[which % len(self.fonts)], size)

    def text(self, x: float, y: float, s: str, size: int, which: int = 0) -> float:
        """Draw ``s`` word by word from (x, y); returns the x after it."""
        path = self.fonts[which % len(self.fonts)]
        f = load_font(path, size)
        space = _length(path, size, " ")
        for token in s.split():
            bx0, by0, bx1, by1 = _bbox(path, size, token)
            if x + bx1 > self.width - 2 or y + by1 > self.height - 2:
                break  # off the page: neither drawn nor recorded
            self.draw.text((x, y), token, font=f, fill=self.ink)
            self.words.append(Word(token, (x + bx0, y + by0, x + bx1, y + by1)))
            x += bx1 + space
        return x

    def vertical(self, x: float, y: float, s: str, size: int) -> float:
        """Text turned 90 degrees in a margin (a sample watermark, a form's print code), as text
        layers and OCR give it back: a letter a line, each its own word. Returns the y after it."""
        for ch in s:
            if ch != " ":
                self.text(x, y, ch, size)
            y += size * 0.9
        return y

    def length(self, s: str, size: int, which: int = 0) -> float:
        return _length(self.fonts[which % len(self.fonts)], size, s)

    def right(self, x_right: float, y: float, s: str, size: int, which: int = 0) -> None:
        self.text(x_right - self.length(s, size, which), y, s, size, which)

    def rule(self, y: float, x0: float | None = None, x1: float | None = None, dashed: bool = False) -> None:
        x0 = 20 if x0 is None else x0
        x1 = self.width - 20 if x1 is None else x1
        if dashed:
            for x in range(int(x0), int(x1), 10):
                self.draw.line([(x, y), (x + 5, y)], fill=self.ink, width=1)
        else:
            self.draw.line([(x0, y), (x1, y)], fill=self.ink, width=1)

    def stamp(self) -> None:
        """A coloured, unrecorded stamp (it is not text the model should read as words)."""
        r = self.rng
        cx, cy, rad = r.randint(80, self.width - 80), r.randint(80, self.height - 80), r.randint(35, 60)
        colour = r.randint(90, 170)
        self.draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], outline=colour, width=3)
        f = self.font(max(10, rad // 3))
        self.draw.text((cx - rad * 0.6, cy - rad * 0.2), r.choice(["PAID", "COPY", "RECEIVED", "OK"]),
                       font=f, fill=colour)


def _receipt(c: Canvas, r: random.Random) -> Fields:
    size = r.randint(13, 18)
    lh = int(size * r.uniform(1.3, 1.7))
    mid, x0, x1 = c.width / 2, r.randint(20, 50), c.width - r.randint(20, 50)
    store, addr, tel, dt = company(r), address(r), phone(r), date(r)
    time_ = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}" + (f":{r.randint(0, 59):02d}" if r.random() < 0.5 else "")
    y: float = r.randint(20, 60)
    for line in [store, addr, "Tel: " + tel]:
        c.text(mid - c.length(line, size + 2) / 2, y, line, size + 2, 1)
        y += lh
    y += lh // 2
    c.text(x0, y, f"Date: {dt}", size)
    c.right(x1, y, f"Time: {time_}", size)
    y += lh
    c.rule(y, x0, x1, dashed=True)
    y += lh // 2
    items, qtys, prices = [], [], []
    for _ in range(r.randint(1, 8)):
        name, q, unit = r.choice(PRODUCTS), r.randint(1, 5), money(r, 0.5, 60)
        price = f"{q * unit:.2f}"
        c.text(x0, y, name, size)
        c.text(x0 + (x1 - x0) * 0.6, y, str(q), size)
        c.right(x1, y, price, size)
        items.append(name)
        qtys.append(str(q))
        prices.append(price)
        y += lh
    subtotal = sum(float(p) for p in prices)
    tax = round(subtotal * r.choice([0, 0.06, 0.08, 0.1]), 2)
    total = f"{subtotal + tax:.2f}"
    c.rule(y, x0, x1, dashed=True)
    y += lh // 2
    cur = r.choice(["", "RM", "$", "€"])
    fields: Fields = {}
    c.text(x0, y, "Subtotal", size)
    c.right(x1, y, f"{subtotal:.2f}", size)
    y += lh
    if tax:
        c.text(x0, y, r.choice(["GST 6%", "Tax", "VAT", "SST"]), size)
        c.right(x1, y, f"{tax:.2f}", size)
        y += lh
    c.text(x0, y, r.choice(["TOTAL", "Total", "Grand Total", "TOTAL DUE"]), size + 2, 1)
    c.right(x1, y, cur + total, size + 2, 1)
    y += int(lh * 1.5)
    c.text(mid - c.length("Thank you!", size) / 2, y, "Thank you!", size)
    fields[key_name(r, "store name", "company", "merchant")] = store
    fields[key_name(r, "address", "store address")] = addr
    fields[key_name(r, "phone", "telephone", "tel")] = tel
    fields[key_name(r, "date", "purchase date")] = dt
    fields[key_name(r, "time")] = time_
    fields[key_name(r, "item", "product name", "item name")] = items
    fields[key_name(r, "quantity", "item quantity")] = qtys
    fields[key_name(r, "item price", "line amount")] = prices
    fields[key_name(r, "subtotal")] = f"{subtotal:.2f}"
    fields[key_name(r, "tax", "tax amount")] = f"{tax:.2f}" if tax else None
    fields[key_name(r, "total", "total amount", "amount due")] = cur + total
    fields[key_name(r, "tips", "cashier name", "table number")] = None
    return fields


def _invoice(c: Canvas, r: random.Random) -> Fields:
    size = r.randint(12, 16)
    lh = int(size * 1.5)
    x0, x1 = r.randint(30, 60), c.width - r.randint(30, 60)
    seller, buyer = company(r), company(r)
    number = f"{r.choice(['INV', 'IN', 'A', ''])}{r.randint(1000, 999999)}"
    issued, due = date(r), date(r)
    y: float = r.randint(30, 60)
    c.text(x0, y, seller, size + 6, 1)
    c.right(x1, y, r.choice(["INVOICE", "Tax Invoice", "Invoice"]), size + 8, 1)
    y += int(lh * 1.6)
    seller_addr = address(r)
    c.text(x0, y, seller_addr, size)
    y += lh * 2
    c.text(x0, y, r.choice(["Bill to:", "Billed to", "Customer:"]), size, 1)
    label_x = x1 - c.length("Invoice date: 00/00/0000 extra", size)
    c.text(label_x, y, f"{r.choice(['Invoice No:', 'Invoice #', 'No.'])} {number}", size)
    y += lh
    c.text(x0, y, buyer, size)
    c.text(label_x, y, f"{r.choice(['Date:', 'Invoice date:'])} {issued}", size)
    y += lh
    buyer_addr = address(r)
    c.text(x0, y, buyer_addr, size)
    c.text(label_x, y, f"{r.choice(['Due:', 'Due date:', 'Payment due:'])} {due}", size)
    y += lh * 2
    cols = [x0, x0 + (x1 - x0) * 0.55, x0 + (x1 - x0) * 0.7]
    for x, head in zip(cols, ["Description", "Qty", "Unit price"], strict=True):
        c.text(x, y, head, size, 1)
    c.right(x1, y, "Amount", size, 1)
    y += lh
    c.rule(y)
    y += lh // 3
    descs, amounts = [], []
    for _ in range(r.randint(1, 10)):
        d, q, unit = r.choice(PRODUCTS), r.randint(1, 20), money(r, 1, 500)
        amt = f"{q * unit:,.2f}"
        c.text(cols[0], y, d, size)
        c.text(cols[1], y, str(q), size)
        c.text(cols[2], y, f"{unit:.2f}", size)
        c.right(x1, y, amt, size)
        descs.append(d)
        amounts.append(amt)
        y += lh
    c.rule(y)
    y += lh // 2
    net = sum(float(a.replace(",", "")) for a in amounts)
    vat = round(net * r.choice([0.05, 0.1, 0.2]), 2)
    total = f"{net + vat:,.2f}"
    for label, v in [("Subtotal", f"{net:,.2f}"), (r.choice(["VAT", "Tax"]), f"{vat:,.2f}"), ("Total", total)]:
        c.text(cols[2], y, label, size, 1 if label == "Total" else 0)
        c.right(x1, y, v, size, 1 if label == "Total" else 0)
        y += lh
    if r.random() < 0.5:
        c.text(x0, y + lh, _sentence(r, r.randint(6, 12)), size - 2)
    return {
        key_name(r, "seller", "vendor", "supplier"): seller,
        key_name(r, "buyer", "customer", "bill to"): buyer,
        key_name(r, "invoice number", "invoice no"): number,
        key_name(r, "invoice date", "date"): issued,
        key_name(r, "due date", "payment due"): due,
        key_name(r, "description", "line item"): descs,
        key_name(r, "line amount", "amount"): amounts,
        key_name(r, "total", "total amount", "amount due"): total,
        key_name(r, "purchase order", "iban", "currency"): None,
    }


FORM_LABELS = ["Name", "Date of birth", "Phone", "Address", "Department", "Employee ID", "Email",
               "Account number", "Signature date", "Position", "Company", "City", "Reference",
               "Supervisor", "Start date", "Amount", "Project code", "Nationality"]


def _form_value(label: str, r: random.Random) -> str:
    lower = label.lower()
    if "date" in lower:
        return date(r)
    if lower in ("name", "supervisor"):
        return person(r)
    if lower == "phone":
        return phone(r)
    if lower == "address":
        return address(r)
    if lower == "email":
        return f"{r.choice(FIRST).lower()}.{r.choice(LAST).lower()}@{r.choice(ORG_A).lower()}.com"
    if lower == "company":
        return company(r)
    if lower == "city":
        return r.choice(CITIES)
    if lower == "amount":
        return f"{money(r, 10, 9000):,.2f}"
    if lower in ("department", "position"):
        return r.choice(["Finance", "Sales", "Research", "Legal", "Operations", "Manager", "Analyst"])
    return f"{r.choice('ABCDEFGHKMPRSTX')}{r.randint(100, 99999)}"


def _form(c: Canvas, r: random.Random) -> Fields:
    size = r.randint(12, 17)
    lh = int(size * r.uniform(1.8, 2.6))
    x0 = r.randint(30, 70)
    y: float = r.randint(30, 60)
    title = r.choice(["APPLICATION FORM", "Registration Form", "EXPENSE CLAIM", "Request for Information"])
    c.text(x0, y, title, size + 6, 1)
    y += lh * 2
    labels = r.sample(FORM_LABELS, r.randint(4, 10))
    two_col = r.random() < 0.5
    col_w = (c.width - 2 * x0) / (2 if two_col else 1)
    fields: Fields = {}
    colon = r.choice([":", "", " :"])
    for i, label in enumerate(labels):
        col = i % 2 if two_col else 0
        if col == 0 and i:
            y += lh
        x = x0 + col * col_w
        filled = r.random() > 0.15
        value = _form_value(label, r) if filled else None
        end = c.text(x, y, label + colon, size, 1)
        below = r.random() < 0.25  # answer under the label instead of beside it
        vx, vy = (x + 10, y + lh * 0.6) if below else (end + 8, y)
        c.rule(vy + size + 4, vx, x + col_w - 20)
        if value:
            c.text(vx, vy, value, size, r.choice([0, 2]))
        if below:
            y += lh * 0.6
        fields[label] = value
    if r.random() < 0.5:
        c.text(x0, y + lh * 2, _sentence(r, r.randint(8, 16)), size - 2)
    return fields


def _letter(c: Canvas, r: random.Random) -> Fields:
    size = r.randint(12, 16)
    lh = int(size * 1.45)
    x0, x1 = r.randint(40, 80), c.width - r.randint(40, 80)
    sender, sender_org, recipient, recipient_org = person(r), company(r), person(r), company(r)
    dt = date(r)
    subject = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 5))).title()
    y: float = r.randint(30, 60)
    c.text(x0, y, sender_org, size + 4, 1)
    y += lh * 2
    c.right(x1, y, dt, size)
    y += lh * 2
    for line in [recipient, recipient_org, address(r)]:
        c.text(x0, y, line, size)
        y += lh
    y += lh
    c.text(x0, y, f"{r.choice(['Re:', 'Subject:', 'RE:'])} {subject}", size, 1)
    y += lh * 2
    c.text(x0, y, f"Dear {recipient.split()[0]},", size)
    y += lh * 1.5
    for _ in range(r.randint(1, 3)):
        text = " ".join(_sentence(r, r.randint(6, 14)) for _ in range(r.randint(2, 4)))
        line = ""
        for word in text.split():
            if c.length(line + " " + word, size) > x1 - x0:
                c.text(x0, y, line, size)
                y += lh
                line = word
            else:
                line = (line + " " + word).strip()
        c.text(x0, y, line, size)
        y += lh * 1.5
    c.text(x0, y, r.choice(["Sincerely,", "Yours faithfully,", "Best regards,"]), size)
    y += lh * 2.5
    c.text(x0, y, sender, size)
    title = r.choice(["Director", "Manager", "Vice President", "Secretary", ""])
    if title:
        c.text(x0, y + lh, title, size)
    return {
        key_name(r, "sender", "signatory", "from"): sender,
        key_name(r, "sender company", "letterhead"): sender_org,
        key_name(r, "recipient", "addressee", "to"): recipient,
        key_name(r, "date", "letter date"): dt,
        key_name(r, "subject", "re"): subject,
        key_name(r, "invoice number", "total", "phone"): None,
    }


LAYOUTS: dict[str, tuple[tuple[int, int], Callable[[Canvas, random.Random], Fields]]] = {
    "receipt": ((480, 860), _receipt),
    "invoice": ((760, 980), _invoice),
    "form": ((760, 980), _form),
    "letter": ((720, 980), _letter),
}


def _business_layouts() -> None:
    """The kinds of `docsprint.data.business`, `irsforms`, `payslip`, `everyday` and `office`
    (they build on this module's canvas)."""
    from docsprint.data import business, everyday, irsforms, office, payslip

    LAYOUTS["invoice-intl"] = ((800, 1100), business.invoice)
    LAYOUTS["receipt-intl"] = ((460, 900), business.receipt)
    LAYOUTS["taxform"] = ((850, 1000), irsforms.taxform)
    LAYOUTS["irsform"] = ((850, 1100), irsforms.irsform)
    LAYOUTS["payslip"] = ((760, 900), payslip.payslip)  # in no mix: held out of training
    LAYOUTS["card"] = ((700, 420), everyday.card)
    LAYOUTS["lading"] = ((850, 1100), everyday.lading)
    LAYOUTS["utility"] = ((800, 1050), everyday.utility)
    LAYOUTS["office"] = ((800, 1030), office.office)


def _rotate(img: Image.Image, words: list[Word], degrees: float, fill: int) -> tuple[Image.Image, list[Word]]:
    """Rotate the page about its centre (counter-clockwise); each box becomes the axis-aligned
    box of its rotated corners."""
    w, h = img.size
    cx, cy = w / 2, h / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    out = []
    for word in words:
        x0, y0, x1, y1 = word.box
        xs, ys = [], []
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            dx, dy = x - cx, y - cy
            xs.append(cx + dx * cos + dy * sin)
            ys.append(cy - dx * sin + dy * cos)
        out.append(Word(word.text, (max(0.0, min(xs)), max(0.0, min(ys)), min(w, max(xs)), min(h, max(ys)))))
    return img.rotate(degrees, resample=Image.Resampling.NEAREST, fillcolor=fill), out


@lru_cache(maxsize=1)
def _noise_field() -> Image.Image:
    """Gaussian noise around 128, made once; each page adds a random crop of it."""
    rng = np.random.default_rng(0)
    return Image.fromarray(np.clip(rng.normal(128, 9, (1400, 1400)), 0, 255).astype(np.uint8))


def misspell(key: str, r: random.Random) -> str:
    """``key`` with one slip of the keyboard: a letter dropped, doubled, swapped with the next
    or one more put in ("additionial conditions", "invocie number")."""
    letters = [i for i, ch in enumerate(key) if ch.isalpha()]
    i = r.choice(letters[1:-1]) if len(letters) > 2 else letters[0]
    slip = r.choice(["drop", "double", "swap", "insert"])
    if slip == "drop":
        return key[:i] + key[i + 1:]
    if slip == "double":
        return key[:i] + key[i] + key[i:]
    if slip == "swap" and i + 1 < len(key) and key[i + 1].isalpha():
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key[:i] + r.choice("aeinorst") + key[i:]


def misspell_keys(fields: Fields, r: random.Random, share: float = 0.06) -> Fields:
    """Users type keys with slips; a model asked "additionial conditions" should read it as
    "additional conditions". ``share`` of the keys of six letters or more get one slip (3% until
    the nineteenth round, where realworld-dev's W-8BEN key "additionial conditions" still went
    unanswered)."""
    out: Fields = {}
    for k, v in fields.items():
        if sum(ch.isalpha() for ch in k) >= 6 and r.random() < share:
            slipped = misspell(k, r)
            k = slipped if slipped not in fields and slipped not in out else k
        out[k] = v
    return out


def make_document(kind: str, seed: int, index: int) -> tuple[Image.Image, list[Word], Fields]:
    """One synthetic page: (image, words with exact boxes, fields). Same inputs, same page."""
    if kind not in LAYOUTS:
        _business_layouts()
    if kind not in LAYOUTS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    r = random.Random(f"{kind}-{seed}-{index}")
    (w, h), layout = LAYOUTS[kind]
    w, h = int(w * r.uniform(0.9, 1.1)), int(h * r.uniform(0.9, 1.1))
    fonts = font_files()
    chosen = [str(r.choice(fonts)) for _ in range(3)] if fonts else [""]
    c = Canvas(w, h, r, chosen)
    fields = layout(c, r)
    # Only keep values the page really shows (a value cut off at the page edge is not there).
    shown = " ".join(word.text for word in c.words)
    for k, v in fields.items():
        if isinstance(v, list):
            kept = [i for i in v if all(t in shown for t in i.split())]
            fields[k] = kept or None
        elif v is not None and not all(t in shown for t in v.split()):
            fields[k] = None
    fields = misspell_keys(fields, random.Random(f"typo-{kind}-{seed}-{index}"))
    if r.random() < 0.25:
        c.stamp()
    img, words = c.image, c.words
    if r.random() < 0.5:
        img, words = _rotate(img, words, r.uniform(-2.0, 2.0), c.paper)
    if r.random() < 0.3:
        img = img.filter(ImageFilter.BoxBlur(r.uniform(0.4, 1.0)))
    if r.random() < 0.3:
        x, y = r.randint(0, 1400 - w), r.randint(0, 1400 - h)
        img = ImageChops.add(img, _noise_field().crop((x, y, x + w, y + h)), 1.0, -128)
    return img, words, fields


def read_by_ocr(img: Image.Image, fields: Fields, engine: str = "rapidocr") -> tuple[list[Word], Fields]:
    """The page as the project's OCR reads it (its word splits, misreadings and lost words),
    each value placed again on those words (`docsprint.data.labels.page_spelling`): the target is
    the OCR's spelling where the value is found, else the value itself, to be written."""
    from docsprint.data.labels import page_spelling
    from docsprint.io.ocr import get_engine

    words = get_engine(engine)(img)
    return words, page_spelling(words, fields)


def generate(kind: str, n: int, seed: int, out: str | Path, split: str = "train",
             progress: bool = True, ocr_share: float = 0.0) -> Path:
    """Write ``n`` documents of ``kind`` (or a mixture of `MIXES`, its kinds in turn) to ``out``;
    ``ocr_share`` of them with the words RapidOCR reads on the rendered page instead of the
    exact ones (`read_by_ocr`), so that training sees real OCR noise."""
    from tqdm import tqdm

    if n < 1:
        raise ValueError("--n must be at least 1")
    kinds = MIXES.get(kind, [kind])
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)

    def records():
        for i in tqdm(range(n), desc=f"synth {kind}", disable=not progress, mininterval=5):
            k = kinds[i % len(kinds)]
            img, words, fields = make_document(k, seed, i)
            doc_id = f"{k}-{seed}-{i:06d}"
            path = out / "images" / f"{doc_id}.jpg"
            quality = random.Random(f"q-{doc_id}").choice([45, 60, 75, 90])  # JPEG artefacts
            img.save(path, quality=quality)
            if ocr_share and random.Random(f"ocr-{doc_id}").random() < ocr_share:
                with Image.open(path) as saved:  # the JPEG as saved: its artefacts too
                    words, fields = read_by_ocr(saved.convert("RGB"), fields)
                doc_id += "-ocr"
            page = Page(None, img.width, img.height, words, image_path=str(path))
            yield doc_id, Document([page], source=doc_id), fields

    return write_jsonl(records(), out, split)


def form_with_keys(n_keys: int, seed: int = 0) -> tuple[Image.Image, list[Word], Fields]:
    """A clean two-column form with exactly ``n_keys`` filled "label: value" fields (labels
    unique: the form labels, then numbered repeats such as "Phone 2"). For measuring how
    decoding time grows with the number of keys asked for.

    >>> img, words, fields = form_with_keys(8)
    >>> len(fields)
    8
    """
    if n_keys < 1:
        raise ValueError("n_keys must be at least 1")
    r = random.Random(f"keys-{seed}-{n_keys}")
    labels = [label if i < len(FORM_LABELS) else f"{label} {i // len(FORM_LABELS) + 1}"
              for i, label in ((i, FORM_LABELS[i % len(FORM_LABELS)]) for i in range(n_keys))]
    size, lh, x0 = 13, 24, 30
    rows = (n_keys + 1) // 2
    fonts = font_files()
    c = Canvas(1100, max(400, 90 + rows * lh + 40), r, [str(fonts[0])] if fonts else [""])
    c.paper, c.ink = 255, 0
    c.image.paste(255, (0, 0, c.width, c.height))
    c.text(x0, 30, "REGISTRATION FORM", size + 5)
    col_w = (c.width - 2 * x0) / 2
    fields: Fields = {}
    for i, label in enumerate(labels):
        x, y = x0 + (i % 2) * col_w, 80 + (i // 2) * lh
        value = _form_value(label.rstrip(" 0123456789"), r)
        end = c.text(x, y, label + ":", size)
        c.text(end + 6, y, value, size)
        fields[label] = value
    return c.image, c.words, fields
