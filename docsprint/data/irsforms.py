"""US tax forms as they are printed: W-9, W-8BEN and 1099-MISC pages, filled in (the kind
``irsform``), and an older grid of captioned boxes (``taxform``).

Real forms are not grids. A W-9 is a column of full-width numbered lines ("1 Name (as shown on
your income tax return). Name is required on this line; do not leave this line blank.") with the
value typed under each, check boxes, a right-hand column of exemption codes, digit cells for
the SSN and the EIN, then a page of certification and instructions. A W-8BEN is numbered lines
in three parts; a 1099-MISC is a payer/recipient column beside numbered money boxes. These
layouts follow the public forms' structure (captions, numbering, reading order), re-drawn at
random sizes, offsets, revisions and fonts, with the values typed in another font, each asked by
the words users use for it.
"""
from __future__ import annotations

import random

from docsprint.data import synth as s
from docsprint.data.business import FIRST_NAMES, ODD_LAST, STREETS, fmt_date
from docsprint.io.document import Word

STATES = ["NY", "CA", "WA", "PA", "TX", "MA", "IL", "CT", "NJ", "OH", "TN", "IN", "CO", "GA"]
FOREIGN = [("Canada", "British Columbia", "V6B 1A1"), ("Germany", "Bayern", "80331 München"),
           ("United Kingdom", "London", "SW1A 2AA"), ("India", "Karnataka", "560001 Bengaluru"),
           ("France", "Ile-de-France", "75008 Paris"), ("Japan", "Tokyo", "100-0001"),
           ("Mexico", "Jalisco", "44100 Guadalajara"), ("Australia", "NSW", "2000 Sydney"),
           ("Brazil", "Sao Paulo", "01310-100"), ("Spain", "Madrid", "28013 Madrid")]
ROMAN = ["V", "VII", "XII", "XIV", "XV", "XXI"]
INCOME = ["Royalties", "Interest", "Dividends", "Services", "Rents", "Scholarship", "Commissions", "Bonuses",
          "Business Profits", "Trading", "Consulting fees", "Pensions"]
COUNTRIES = ["Germany", "France", "Canada", "Japan", "Brazil", "India", "Mexico", "United Kingdom", "Singapore",
             "Australia", "Spain", "Netherlands"]
# The fine print of US tax forms: numbers, phones and form codes that are not answers.
TAX_PRINT = ["Department of the Treasury Internal Revenue Service",
             "Go to www.irs.gov/FormW9 for instructions and the latest information.",
             "Give Form to the requester. Do not send to the IRS.", "(Rev. October 2018)", "Cat. No. 10231X",
             "For Privacy Act and Paperwork Reduction Act Notice, see separate instructions.",
             "If you have questions, call 1-800-829-4059.", "Copy B For Recipient", "Copy 1 For State Tax Department",
             "This is important tax information and is being furnished to the IRS.",
             "Under penalties of perjury, I certify that:", "See What is backup withholding, later.",
             "Print or type. See Specific Instructions on page 3.", "Form W-8BEN (Rev. 10-2021)",
             "Note: If the account is in more than one name, see the instructions for line 1."]


def treaty_conditions(r: random.Random, country: str, income: str) -> str:
    """What an owner writes on a W-8BEN's line 10: the treaty's conditions in the words of the
    form itself ("beneficial owner", "permanent establishment"), which a page of instructions
    also prints, or a placeholder; sometimes in capitals, as written by hand."""
    owner = r.choice(["The beneficial owner", "Beneficial owner", "The owner", "I"])
    verb_has = "have" if owner == "I" else "has"
    verb_does = "do" if owner == "I" else "does"
    verb_is = "am" if owner == "I" else "is"
    text = r.choice([
        f"{owner} {verb_does} not {r.choice(['have a permanent establishment', 'carry on business activities through a permanent establishment or a fixed base'])} in the United States.",
        f"{owner} only {verb_has} a permanent establishment in {country}.",
        f"{owner} {verb_is} a {r.choice(['permanent resident', 'resident', 'tax resident'])} of {country} within the meaning of Article {r.randint(3, 30)}.",
        f"{owner} {r.choice(['meets', 'satisfies'])} the limitation on benefits provision of Article {r.randint(16, 30)} of the treaty.",
        f"The {income.lower()} {r.choice(['are', 'is'])} not effectively connected with a trade or business in the United States.",
        f"{owner} {r.choice(['performs', 'performed'])} the services outside the United States and {verb_has} no fixed base there.",
        r.choice(["See attached statement", "Statement attached", "See the attached letter", "N/A"]),
        s._sentence(r, r.randint(4, 22)),
    ])
    if text.endswith(".") and r.random() < 0.3:  # a second clause: explanations run long
        clause = r.choice([f" and all work is performed in {country}", f" as per Article {r.choice(ROMAN)}",
                           " and the income is not attributable to it", f" under Article {r.randint(5, 25)} of the treaty"])
        if len(text) + len(clause) <= 110:  # still one typed line
            text = text[:-1] + clause + r.choice([".", ""])
    return text.upper() if r.random() < 0.15 else text


def us_street(r: random.Random) -> str:
    street = f"{r.randint(1, 9999)} {r.choice(STREETS['en'])}"
    if r.random() < 0.25:
        street += r.choice([f", APT {r.randint(1, 999)}", f" Suite {r.randint(100, 999)}", f" APT {r.randint(1, 99)}"])
    return street if r.random() < 0.8 else f"P.O. Box {r.randint(100, 99999)}"


def us_city(r: random.Random) -> str:
    comma = r.choice([", ", " "])
    return f"{r.choice(s.CITIES)}{comma}{r.choice(STATES)}{r.choice([', ', ' '])}{r.randint(10000, 99999)}"


def _name(r: random.Random, business: bool = False) -> str:
    name = s.company(r) if business else s.person(r)
    if not business and r.random() < 0.3:  # a long or rare first name ("Maybelle"), an odd surname
        name = f"{r.choice(FIRST_NAMES['en'])} {r.choice(ODD_LAST['en'] + s.LAST)}"
    if not business and r.random() < 0.2:
        first, last = name.split(" ", 1)
        name = f"{first} {r.choice('ABCDEFGHJKLMPRSTW')}{r.choice(['.', ''])} {last}"
    return name.upper() if r.random() < 0.15 else name


def _digits(r: random.Random, groups: list[int], cells: bool) -> str:
    """A TIN as typed: in cells, one digit a word with the dashes printed between groups
    ("1 2 3 - 4 5 - 6 7 8 9"), or as one string per group ("123 – 45 – 6789")."""
    parts = ["".join(str(r.randint(0, 9)) for _ in range(n)) for n in groups]
    if cells:
        return " - ".join(" ".join(p) for p in parts) if r.random() < 0.5 else " ".join("".join(parts))
    return r.choice([" – ", "-", " - "]).join(parts)


def _tin(r: random.Random) -> str:
    """An EIN as printed ("12-3456789"), or, one time in four, the made-up numbers of sample
    and test forms, grouped any way ("82-383-2342", "121-2312-45"): a TIN is read from its box,
    not recognised by its shape (the form's "OMB No. 1545-0115" has a TIN-like shape too)."""
    if r.random() < 0.75:
        return f"{r.randint(10, 99)}-{r.randint(1000000, 9999999)}"
    return _digits(r, r.choice([[2, 3, 4], [3, 4, 2], [3, 3, 3], [2, 2, 5]]), False)


class _Form:
    """The page in points of a US letter form (612 wide), drawn at the canvas's scale."""

    def __init__(self, c: s.Canvas, r: random.Random):
        self.c, self.r = c, r
        self.k = c.width / 612
        self.dx, self.dy = r.uniform(-6, 6), r.uniform(-8, 8)  # the scan is not quite aligned
        self.cap = max(8, round(r.uniform(6.2, 7.4) * self.k))  # the printed captions
        self.val = max(10, round(r.uniform(8.5, 11.5) * self.k))  # the typed values
        self.fields: s.Fields = {}
        self.apostrophe = r.choice(["'", "’"])  # PAYER’S as the IRS's PDFs print it, or PAYER'S

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return x * self.k + self.dx, y * self.k + self.dy

    def text(self, x: float, y: float, text: str, size: float | None = None, font: int = 0,
             width: float | None = None) -> None:
        """Print ``text`` at (x, y) in points, cut to ``width`` points (else to the form's edge)."""
        px, py = self.xy(x, y)
        text = text.replace("'", self.apostrophe)
        pixels = round(size * self.k) if size else self.cap
        room = (width if width is not None else 580 - x) * self.k
        while self.c.length(text, pixels, font) > room and " " in text:
            text = text.rsplit(" ", 1)[0]
        self.c.text(px, py, text, pixels, font)

    def wrap(self, x: float, y: float, text: str, size: float, width: float, until: float = 1e9) -> None:
        """Print ``text`` on as many lines as ``width`` points need (none below ``until``)."""
        pixels, words, row = round(size * self.k), text.split(), 0
        while words and y + row * (size + 1.5) < until:
            n = len(words)
            while n > 1 and self.c.length(" ".join(words[:n]), pixels) > width * self.k:
                n -= 1
            self.text(x, y + row * (size + 1.5), " ".join(words[:n]), size, width=width)
            words, row = words[n:], row + 1

    def line(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.c.draw.line([self.xy(x0, y0), self.xy(x1, y1)], fill=self.c.ink, width=1)

    def box(self, x: float, y: float, size: float = 6) -> None:
        (a, b), (cx, d) = self.xy(x, y), self.xy(x + size, y + size)
        self.c.draw.rectangle([a, b, cx, d], outline=self.c.ink)

    def sidebar(self, x: float, y0: float, y1: float, text: str) -> None:
        """Text printed turned 90 degrees in the left margin (a W-9's "Print or type. See
        Specific Instructions on page 3."), as a text layer gives it back: a letter a word, from
        the last letter at the top to the first at the bottom, each on the level of whatever
        line of the form it sits beside."""
        letters = [ch for ch in reversed(text) if ch != " "]
        step = (y1 - y0) / max(1, len(letters))
        for i, ch in enumerate(letters):
            self.text(x + self.r.uniform(-0.5, 0.5), y0 + i * step, ch, 7)

    def value(self, x: float, y: float, keys: tuple[str, ...], value: str | None, empty: float = 0.1,
              spacing: float | None = None) -> None:
        """Type ``value`` at (x, y) and ask for it by one of ``keys`` (sometimes left empty); a
        value of several lines ("\\n") is typed ``spacing`` points apart (else at the font's
        own line height)."""
        if value is not None and self.r.random() < empty:
            value = None
        if value is not None:
            px, py = self.xy(x, y)
            step = spacing * self.k if spacing else self.val * 1.2
            for i, line in enumerate(value.split("\n")):
                self.c.text(px, py + i * step, line, self.val, 2)
        self.fields[self.r.choice(keys)] = value.replace("\n", " ") if value else None

    def tin(self, x: float, y: float, keys: tuple[str, ...], value: str | None, groups: list[int],
            cells: bool) -> None:
        """A TIN in its row of digit cells: with ``cells``, one digit a cell and a dash between
        groups, else typed over the cells as one string."""
        cell = 13.0
        for i in range(sum(groups) + len(groups) - 1):
            self.box(x + i * cell, y, cell - 1)
        if value is not None and not cells and self.r.random() < 0.3:
            self.comb(x, y, value, cell, 2 * cell - 2)
            self.fields[self.r.choice(keys)] = value
            return
        if value is None or not cells:
            self.value(x + 3, y + 2, keys, value, 0)
            return
        digits, shown, i = value.replace(" ", "").replace("-", ""), [], 0
        for g in groups:
            shown += list(digits[i : i + g]) + ["-"]
            i += g
        shown.pop()
        for j, d in enumerate(shown):
            self.text(x + j * cell + 3, y + 1, d, self.val / self.k, 2)
        self.fields[self.r.choice(keys)] = " ".join(shown)

    def comb(self, x: float, y: float, text: str, cell: float, height: float) -> None:
        """``text`` typed into a PDF's comb field, a character a cell, as its text layer gives it
        back: each run of characters one word as tall as the field (a W-9's SSN, 24 points tall,
        comes out between the lines of the instructions printed beside it, fw9_3 in
        realworld-dev)."""
        size = round(cell * self.r.uniform(0.8, 1.1) * self.k)
        top, bottom = self.xy(0, y)[1], self.xy(0, y + height)[1]
        i = 0
        for token in text.split():
            n = len(self.c.words)
            for ch in token:
                self.c.text(*self.xy(x + i * cell + 2, y + (height - cell) / 2), ch, size, 2)
                i += 1
            run = self.c.words[n:]
            if len(run) == len(token):  # (a character off the page: the letters stay as they are)
                self.c.words[n:] = [Word(token, (run[0].box[0], top, run[-1].box[2], bottom))]

    def header(self, form: str, title: list[str], rev: str, right: list[str]) -> None:
        self.text(36, 30, "Form", 6)
        self.text(52, 22, form, 20, 1)
        self.text(36, 52, f"(Rev. {rev})", 6)
        self.text(36, 62, "Department of the Treasury", 5.5)
        self.text(36, 69, "Internal Revenue Service", 5.5)
        for i, line in enumerate(title):
            self.text(180 + (4 - len(title)) * 8, 26 + i * 14, line, 12 if i < 2 else 6.5, 1)
        for i, line in enumerate(right):
            self.text(495, 34 + i * 10, line, 7.5, 1)
        self.line(36, 82, 576, 82)

    def prose(self, y: float, until: float, columns: int = 1) -> None:
        """Instructions: sentences and the forms' fine print, to the foot of the page."""
        width = 540 / columns
        for col in range(columns):
            yy = y
            while yy < until:
                if self.r.random() < 0.12:
                    self.text(36 + col * width, yy, self.r.choice(["General Instructions", "Purpose of Form",
                                                                   "Specific Instructions", "Definitions"]), 11, 1)
                    yy += 16
                    continue
                words = self.r.choice(TAX_PRINT) if self.r.random() < 0.3 else s._sentence(self.r, self.r.randint(8, 14))
                self.text(36 + col * width, yy, words, 6.5, width=width - 8)
                yy += 9


def w9(f: _Form) -> None:
    r = f.r
    f.header("W-9", ["Request for Taxpayer", "Identification Number and Certification",
                     "▶ Go to www.irs.gov/FormW9 for instructions and the latest information."],
             r.choice(["October 2018", "March 2024", "November 2017", "December 2014"]),
             ["Give Form to the", "requester. Do not", "send to the IRS."])
    business = r.random() < 0.5
    if r.random() < 0.7:  # the revisions of 2014-2018 print it; its letters land between the lines
        top = r.uniform(120, 145)
        f.sidebar(r.uniform(40, 46), top, top + r.uniform(130, 150), "See Specific Instructions on page 3.")
        f.sidebar(r.uniform(48, 54), top + r.uniform(30, 45), top + r.uniform(100, 120), "Print or type.")
    f.text(62, 86, "1 Name (as shown on your income tax return). Name is required on this line; do not leave this line blank.")
    f.value(62, 96, ("name", "taxpayer name", "name on tax return"), _name(r), 0.03)
    f.line(60, 108, 576, 108)
    f.text(62, 110, "2 Business name/disregarded entity name, if different from above")
    f.value(62, 120, ("business name", "disregarded entity name", "company name"), _name(r, True) if business else None)
    f.line(60, 132, 576, 132)
    f.text(62, 136, "3 Check appropriate box for federal tax classification of the person whose name is entered on line 1. "
           "Check only one of the following seven boxes.", width=390)
    for x, label in [(70, "Individual/sole proprietor or single-member LLC"), (194, "C Corporation"),
                     (264, "S Corporation"), (338, "Partnership"), (408, "Trust/estate")]:
        f.box(x, 161)
        f.text(x + 10, 161, label, width=64 if x < 100 else 60)
    f.box(70, 180)
    f.text(80, 180, "Limited liability company. Enter the tax classification (C=C corporation, S=S corporation, "
           "P=Partnership) ▶", width=335)
    f.value(420, 178, ("LLC classification", "LLC tax classification"), r.choice("CSP") if r.random() < 0.3 else None, 0)
    f.text(80, 190, "Note: Check the appropriate box in the line above for the tax classification of the single-member owner.",
           width=370)
    f.text(80, 198, "Do not check LLC if the LLC is classified as a single-member LLC that is disregarded from the owner.",
           width=370)
    f.box(70, 212)
    f.text(80, 212, "Other (see instructions) ▶")
    for i, line in enumerate(["4 Exemptions (codes apply only to", "certain entities, not individuals;", "see instructions on page 3):"]):
        f.text(458, 136 + i * 8, line)
    f.text(458, 172, "Exempt payee code (if any)", width=70)
    f.value(530, 168, ("exempt payee code", "payee code"), str(r.randint(1, 13)), 0.3)
    f.text(458, 190, "Exemption from FATCA reporting", width=115)
    f.text(458, 204, "code (if any)")
    f.value(506, 202, ("FATCA code", "FATCA exemption code"), r.choice("ABCDEFGHIJKLM"), 0.3)
    f.text(458, 222, "(Applies to accounts maintained outside the U.S.)", 5)
    f.line(60, 236, 576, 236)
    f.text(62, 240, "5 Address (number, street, and apt. or suite no.) See instructions.", width=325)
    f.value(62, 250, ("address", "street address"), us_street(r), 0.03)
    f.text(393, 240, "Requester's name and address (optional)")
    requester = _name(r, r.random() < 0.5) + (f"\n{us_street(r)}" if r.random() < 0.3 else "")
    # the box is five lines tall: the name may be typed on any of its first three
    f.value(393, 252 + r.choice([0, 0, 6, 12, 18, 24]), ("requester name address", "requester name and address",
                                                         "requester"), requester, 0.3)
    f.text(62, 264, "6 City, state, and ZIP code")
    f.value(62, 274, ("city state zip", "city, state and ZIP code"), us_city(r), 0.03)
    f.text(62, 288, "7 List account number(s) here (optional)")
    accounts = ", ".join(str(r.randint(10**7, 10**12)) for _ in range(r.randint(1, 2)))
    f.value(62, 298, ("account numbers", "account number"), accounts, 0.4)
    f.line(36, 310, 576, 310)
    f.text(40, 313, "Part I Taxpayer Identification Number (TIN)", 9, 1)
    for i, line in enumerate(["Enter your TIN in the appropriate box. The TIN provided must match the name given on line 1 to avoid",
                              "backup withholding. For individuals, this is generally your social security number (SSN). However,",
                              "for a resident alien, sole proprietor, or disregarded entity, see the instructions for Part I, later.",
                              "For other entities, it is your employer identification number (EIN). If you do not have a number,",
                              "see How to get a TIN, later.", "",
                              "Note: If the account is in more than one name, see the instructions for line 1. Also see What Name",
                              "and Number To Give the Requester for guidelines on whose number to enter."]):
        f.text(36, 326 + i * 9, line)
    cells = r.random() < 0.5
    ssn, ein = _digits(r, [3, 2, 4], cells), _digits(r, [2, 7], cells)
    has_ssn = not business if r.random() < 0.8 else r.random() < 0.5
    f.text(422, 324, "Social security number")
    f.tin(420, 334, ("SSN", "social security number"), ssn if has_ssn else None, [3, 2, 4], cells)
    f.text(418, 363, "or", 7)
    f.text(422, 374, "Employer identification number")
    f.tin(420, 384, ("EIN", "employer identification number"), None if has_ssn else ein, [2, 7], cells)
    f.text(40, 408, "Part II Certification", 9, 1)
    f.text(36, 421, "Under penalties of perjury, I certify that:")
    f.prose(432, 520)
    f.text(36, 528, "Sign Here", 9, 1)
    f.text(80, 528, "Signature of U.S. person ▶")
    f.text(380, 528, "Date ▶")
    f.value(410, 526, ("date", "signature date", "date signed"), fmt_date(r, "en", r.randint(2015, 2026), r.randint(1, 12),
                                                                        r.randint(1, 28)), 0.4)
    f.prose(550, 760, columns=2)


def w8ben(f: _Form) -> None:
    r = f.r
    f.header("W-8BEN", ["Certificate of Foreign Status of Beneficial Owner for United",
                        "States Tax Withholding and Reporting (Individuals)",
                        "▶ Go to www.irs.gov/FormW8BEN for instructions and the latest information."],
             r.choice(["July 2017", "October 2021", "February 2014"]), ["OMB No. 1545-1621"])
    f.text(36, 86, "Do NOT use this form if:", 7, 1)
    f.text(500, 86, "Instead, use Form:", 7, 1)
    for i, (line, form) in enumerate([("You are NOT an individual", "W-8BEN-E"),
                                      ("You are a U.S. citizen or other U.S. person, including a resident alien individual", "W-9"),
                                      ("You are a person acting as an intermediary", "W-8IMY")]):
        f.text(36, 97 + i * 10, f"• {line} . . . . . . . .")
        f.text(545, 97 + i * 10, form)
    f.text(36, 132, "Part I Identification of Beneficial Owner (see instructions)", 9, 1)
    country, province, post = r.choice(FOREIGN)
    f.text(40, 145, "1 Name of individual who is the beneficial owner")
    owner = _name(r)
    f.value(50, 155, ("name", "beneficial owner name", "name of beneficial owner"), owner, 0.02)
    f.text(380, 145, "2 Country of citizenship")
    f.value(395, 155, ("citizenship", "country of citizenship"), country if r.random() < 0.9 else r.choice(COUNTRIES), 0.05)
    f.line(36, 168, 576, 168)
    f.text(40, 171, "3 Permanent residence address (street, apt. or suite no., or rural route). Do not use a P.O. box or in-care-of address.")
    f.value(50, 181, ("permanent street address", "permanent address", "residence address"),
            f"{r.randint(1, 999)} {r.choice(['Mesa Vista Drive', 'King Street', 'Rue Royale', 'Hauptstrasse', 'MG Road', 'Calle Mayor'])}", 0.02)
    f.text(50, 195, "City or town, state or province. Include postal code where appropriate.", width=380)
    f.value(50, 205, ("permanent city state", "permanent city"), f"{province}, {post}", 0.05)
    f.text(445, 195, "Country")
    f.value(445, 205, ("permanent country", "residence country"), country, 0.05)
    f.text(40, 219, "4 Mailing address (if different from above)")
    mailing = r.random() < 0.3
    f.value(50, 229, ("mailing street address", "mailing address"), us_street(r) if mailing else None, 0)
    f.text(50, 243, "City or town, state or province. Include postal code where appropriate.", width=380)
    f.value(50, 253, ("mailing city state", "mailing city"), us_city(r) if mailing else None, 0)
    f.text(445, 243, "Country")
    f.value(445, 253, ("mailing country",), r.choice(["United States", "USA", country]) if mailing else None, 0)
    f.text(40, 267, "5 U.S. taxpayer identification number (SSN or ITIN), if required (see instructions)", width=335)
    f.value(50, 277, ("SSN ITIN", "SSN or ITIN", "US taxpayer identification number"), _digits(r, [3, 2, 4], False), 0.4)
    f.text(380, 267, "6 Foreign tax identifying number (see instructions)")
    f.value(390, 277, ("foreign tax identifying number", "foreign TIN"), f"{r.choice(['', 'A', 'DE', 'X'])}{r.randint(10**6, 10**10)}", 0.4)
    f.text(40, 291, "7 Reference number(s) (see instructions)")
    f.value(50, 301, ("reference number", "reference numbers"), str(r.randint(1, 10 ** r.randint(2, 9))), 0.5)
    f.text(260, 291, "8 Date of birth (MM-DD-YYYY) (see instructions)")
    f.value(280, 301, ("date of birth", "birth date", "DOB"),
            f"{r.randint(1, 12):02d}-{r.randint(1, 28):02d}-{r.randint(1940, 2004)}", 0.05)
    f.text(36, 316, "Part II Claim of Tax Treaty Benefits (for chapter 3 purposes only) (see instructions)", 9, 1)
    treaty = r.random() < 0.7
    f.text(40, 330, "9 I certify that the beneficial owner is a resident of")
    f.value(260, 328, ("claim benefit resident", "treaty country", "resident of"), country if treaty else None, 0)
    f.text(420, 330, "within the meaning of the income tax treaty between the United States and that country.")
    f.text(40, 343, "10 Special rates and conditions (if applicable—see instructions): The beneficial owner is claiming the provisions of Article and paragraph")
    f.value(60, 353, ("article paragraph", "treaty article"), str(r.randint(1, 25)) if treaty else None, 0.2)
    f.text(160, 355, "of the treaty identified on line 9 above to claim a")
    f.value(345, 353, ("rate", "withholding rate"), str(r.choice([0, 5, 10, 15, 1])) if treaty else None, 0.2)
    f.text(365, 355, "% rate of withholding on (specify type of income):")
    income = ", ".join(r.sample(INCOME, r.choice([1, 1, 2])))
    # typed under the caption's end, or at the left of the line below it as many fillers do
    f.value(r.choice([480, 480, r.uniform(60, 160)]), 365, ("type of income", "income type"), income if treaty else None, 0.3)
    f.text(50, 378, "Explain the additional conditions in the Article and paragraph the beneficial owner meets to be eligible for the rate of withholding:")
    f.value(50, 390, ("additional conditions", "conditions", "explanation of additional conditions"),
            treaty_conditions(r, country, income) if treaty and r.random() < 0.6 else None, 0)
    f.text(36, 410, "Part III Certification", 9, 1)
    f.prose(422, 600)
    f.text(36, 612, "Sign Here ▶", 9, 1)
    # Signed by the owner, or by someone acting for them (then the capacity is filled in).
    acting = r.random() < 0.3
    signer = _name(r) if acting else owner
    f.value(400, 610, ("date", "signature date"), f"{r.randint(1, 12):02d}-{r.randint(1, 28):02d}-{r.randint(2015, 2026)}", 0.2)
    f.text(150, 624, "Signature of beneficial owner (or individual authorized to sign for beneficial owner)")
    f.text(470, 624, "Date (MM-DD-YYYY)")
    f.value(150, 636, ("name of signer", "signer name", "print name of signer"), str(signer), 0.2)
    f.text(150, 650, "Print name of signer")
    f.value(380, 636, ("capacity acting", "capacity"), r.choice(["Agent", "Parent", "Guardian", "Spouse", "Family Member",
                                                                "Attorney in fact"]) if acting else None, 0)
    f.text(380, 650, "Capacity in which acting (if form is not signed by beneficial owner)")
    f.text(36, 668, "For Paperwork Reduction Act Notice, see separate instructions.", 6.5, 1)
    f.text(330, 668, f"Cat. No. 25047Z Form W-8BEN (Rev. {r.choice(['7-2017', '10-2021'])})", 6.5)


MONEY_BOXES: list[tuple[str, tuple[str, ...]]] = [("1 Rents", ("rents",)), ("2 Royalties", ("royalties",)), ("3 Other income", ("other income",)),
               ("4 Federal income tax withheld", ("federal income tax withheld", "federal tax withheld")),
               ("5 Fishing boat proceeds", ("fishing boat proceeds",)),
               ("6 Medical and health care payments", ("medical health care payments", "medical and health care payments")),
               ("8 Substitute payments in lieu of dividends or interest", ("substitute payments",)),
               ("9 Crop insurance proceeds", ("crop insurance proceeds",)),
               ("10 Gross proceeds paid to an attorney", ("gross proceeds attorney", "gross proceeds paid to an attorney")),
               ("11 Fish purchased for resale", ("fish resale", "fish purchased for resale")),
               ("12 Section 409A deferrals", ("409A deferrals", "section 409A deferrals")),
               ("13 Excess golden parachute payments", ("excess golden parachute payments",)),
               ("14 Nonqualified deferred compensation", ("nonqualified deferred compensation",)),
               ("15 State tax withheld", ("state tax withheld",)), ("16 State/Payer's state no.", ("state no", "payer state number")),
               ("17 State income", ("state income",))]


def _dollars(r: random.Random, amount: float) -> str:
    """An amount as typed into a money box: with cents or in whole dollars ("1,500")."""
    return f"{amount:,.2f}" if r.random() < 0.5 else f"{amount:,.0f}"


def f1099(f: _Form) -> None:
    r = f.r
    year = r.randint(2018, 2026)
    f.text(220, 22, "VOID    CORRECTED", 8)
    f.line(36, 34, 576, 34)
    # The left column: payer, TINs, recipient, account.
    f.wrap(40, 37, "PAYER'S name, street address, city or town, state or province, country, ZIP or foreign postal code, "
           "and telephone no.", 5.5, 255)
    payer = _name(r, True)
    address = f"{us_street(r)}\n{us_city(r)}"
    # Typed at the font's line height, or one line to a money box's row as a form filler
    # spreads them: the boxes' captions beside it then come between the address's lines.
    gap = r.choice([f.val / f.k * 1.2, f.val / f.k * 1.2, r.uniform(14, 22), r.uniform(24, 29)])
    f.value(40, 54, ("payer name", "payer"), payer, 0)
    f.value(40, 54 + gap, ("payer address", "payer street address"), address, 0.05, spacing=gap)
    f.line(36, 130, 300, 130)
    f.text(40, 133, "PAYER'S TIN", 6)
    f.text(175, 133, "RECIPIENT'S TIN", 6)
    f.value(60, 150, ("payer TIN", "payer's TIN"), _tin(r), 0.05)
    masked = "".join(r.choice("XXXXYA") for _ in range(3)) + "-" + "".join(r.choice("XXXA") for _ in range(2))
    rtin = r.choice([_digits(r, [3, 2, 4], False), "XXX-XX-" + str(r.randint(1000, 9999)), _tin(r),
                     f"{masked}-{r.randint(1000, 9999)}"])
    f.value(190, 150, ("recipient TIN", "recipient's TIN"), rtin, 0.05)
    f.line(36, 166, 300, 166)
    f.text(40, 169, "RECIPIENT'S name", 6)
    f.value(40, 182, ("recipient name", "recipient"), _name(r, r.random() < 0.35), 0.02)
    f.text(40, 198, "Street address (including apt. no.)", 6)
    street, city = us_street(r), us_city(r)
    f.value(40, 211, ("recipient street address", "recipient street"), street, 0)
    f.text(40, 226, "City or town, state or province, country, and ZIP or foreign postal code", 6, width=255)
    f.value(40, 239, ("recipient city state zip", "recipient city"), city, 0)
    if r.random() < 0.6:  # asked as one address: the two lines together
        for key in ("recipient street address", "recipient street", "recipient city state zip", "recipient city"):
            f.fields.pop(key, None)
        f.fields[r.choice(["recipient address", "recipient's address"])] = f"{street} {city}"
    f.line(36, 252, 300, 252)
    f.text(40, 255, "Account number (see instructions)", 6)
    f.text(190, 255, "FATCA filing requirement", 5.5)
    f.text(245, 255, "2nd TIN not.", 5.5)
    f.value(80, 272, ("account number", "account no"), f"{r.randint(1000, 999999)}{r.choice(['', 'A', 'B', '-01'])}", 0.2)
    # The right: numbered money boxes, two a row, the title and copy at the far right.
    direct = ("7 Payer made direct sales totaling $5,000 or more of consumer products to recipient for resale", ())
    boxes = [*MONEY_BOXES[:6], direct, *MONEY_BOXES[6:13]]
    for i, (caption, keys) in enumerate(boxes):
        x, y = 302 + (i % 2) * 110, 34 + (i // 2) * 29
        f.line(x, y, x + 110, y)
        f.wrap(x + 3, y + 2, caption, 5.5, 100)
        if not keys:  # box 7 is a check box
            f.box(x + 90, y + 18)
            continue
        f.text(x + 3, y + 19, "$", 7)
        shown = r.random() < 0.45
        amount = s.money(r, 50, 60000)
        value = _dollars(r, amount) if shown else None
        if value and r.random() < 0.5:  # typed at the box's right edge
            px, py = f.xy(x + 104, y + 17)
            f.c.right(px, py, value, f.val, 2)
        elif value:  # a form field's text starts at its left edge, just after the "$"
            px, py = f.xy(x + 12, y + 17)
            f.c.text(px, py, value, f.val, 2)
        if shown or r.random() < 0.3:
            f.fields[r.choice(keys)] = value
    # The state row: filled in on three forms in four (the real forms asked for it have it; a
    # half-empty row taught rounds v26-v28 to answer its boxes null), whole dollars or cents.
    for j, (caption, keys) in enumerate(MONEY_BOXES[-3:]):
        x, y = 302 + j * 90, 34 + 8 * 29 + 4
        f.wrap(x + 3, y + 2, caption, 5.5, 85)
        if "no." in caption:
            f.value(x + 20, y + 14, keys, r.choice(STATES), 0.25)
        else:
            amount = s.money(r, 50, 60000)
            f.text(x + 3, y + 14, "$", 7)
            f.value(x + 12, y + 14, keys, _dollars(r, amount), 0.25)
    f.text(530, 40, "OMB No. 1545-0115", 5.5)
    f.text(530, 60, str(year), 16, 1)
    f.text(530, 90, f"Form 1099-{r.choice(['MISC', 'MISC'])}", 6)
    f.wrap(520, 100 + r.uniform(-30, 10), "Miscellaneous Information", 9, 56)
    copy = r.choice(["Copy A For Internal Revenue Service Center", "Copy B For Recipient", "Copy C For Payer",
                     "Copy 1 For State Tax Department"])
    f.wrap(522, 130 + r.uniform(-20, 20), copy, 7, 54)
    # The far right's fine print, a few words a line: it falls between any two lines at the left.
    if r.random() < 0.8:
        note = ("This is important tax information and is being furnished to the IRS. If you are required to file "
                "a return, a negligence penalty or other sanction may be imposed on you if this income is taxable "
                "and the IRS determines that it has not been reported." if "Copy B" in copy else
                f"For Privacy Act and Paperwork Reduction Act Notice, see the {year} General Instructions for "
                f"Certain Information Returns.")
        f.wrap(522, 165 + r.uniform(-10, 10), note, r.uniform(6, 7.5), 54, until=292)
    f.text(36, 300, "Form 1099-MISC www.irs.gov/Form1099MISC Department of the Treasury - Internal Revenue Service", 6)
    f.prose(318, 740 if r.random() < 0.5 else 330)


# The instructions pages that follow a form (a W-9 has five of them): dense print full of the
# numbers a value could be taken for (sections, form numbers, codes, phone numbers, amounts).
HEADINGS = ["General Instructions", "Purpose of Form", "Specific Instructions", "Definitions", "Line 1", "Line 2",
            "Line 3", "Line 4, Exemptions", "Line 5", "Line 6", "Part I. Taxpayer Identification Number (TIN)",
            "How to get a TIN.", "Part II. Certification", "What Name and Number To Give the Requester",
            "Secure Your Tax Records From Identity Theft", "Privacy Act Notice", "Instructions for Recipient",
            "Backup withholding.", "What is FATCA reporting?", "Exempt payee code.", "Updating Your Information"]
CODES = ["An organization exempt from tax under section 501(a)", "The United States or any of its agencies or "
         "instrumentalities", "A state, the District of Columbia, a U.S. commonwealth or possession", "A corporation",
         "A dealer in securities or commodities required to register in the United States", "A real estate investment "
         "trust", "A common trust fund operated by a bank under section 584(a)", "A financial institution",
         "A middleman known in the investment community as a nominee or custodian", "A trust exempt from tax under "
         "section 664 or described in section 4947", "A futures commission merchant registered with the CFTC"]
PHRASES = ["section {s}({a})", "section {s}({a})({n})", "Form {f}", "Pub. {p}", "Regulations section 1.{r}-{n}",
           "call 1-800-{t}-{u}", "see line {n}", "box {n}", "Form {f}, line {n}", "payments of ${m} or more",
           "www.irs.gov/Form{f}", "Schedule {S} (Form 1040)", "TIN of {d}-{dd}-{dddd}", "Part {R}"]


def _phrase(r: random.Random) -> str:
    return r.choice(PHRASES).format(
        s=r.choice([501, 584, 664, 4947, 7701, 1441, 6050, 3406, 403, 457, 851, 1471]), a=r.choice("abcdefgh"),
        n=r.randint(1, 18), f=r.choice(["1040", "1099-K", "1099-MISC", "W-8BEN", "W-9", "SS-4", "W-7", "8233", "1042-S",
                                        "1099-NEC", "4506-T", "SS-5"]),
        p=r.choice([515, 519, 1281, 901, 5027]), r=r.randint(1441, 6049), t=r.randint(100, 999), u=r.randint(1000, 9999),
        m=r.choice(["600", "10", "5,000", "10,000"]), S=r.choice("BCEF"), d=r.randint(100, 999), dd=r.randint(10, 99),
        dddd=r.randint(1000, 9999), R=r.choice(["I", "II", "III", "IV"]))


def instructions(f: _Form, form: str) -> None:
    """A page of a form's instructions: the form's name and page number on top, headings, code
    lists ("A—An organization exempt from tax under section 501(a)") and sentences dense with
    section, form and phone numbers, in one or two columns. No value is typed on it."""
    r = f.r
    name = {"w9": "W-9", "w8ben": "W-8BEN", "f1099": "1099-MISC"}[form]
    f.text(36, 24, f"Form {name} (Rev. {r.randint(1, 12)}-{r.randint(2014, 2024)})", 7)
    f.text(540, 24, f"Page {r.randint(2, 6)}", 7, 1)
    f.line(36, 34, 576, 34)
    columns = r.choice([1, 2, 2])
    width = 540 / columns
    codes = iter(r.sample("ABCDEFGHIJKLM", 11) if r.random() < 0.5 else [str(i) for i in range(1, 14)])
    for col in range(columns):
        y, bottom = 44.0, r.uniform(700, 760)
        while y < bottom:
            x, roll = 36 + col * width, r.random()
            if roll < 0.1:
                f.text(x, y, r.choice(HEADINGS), 9, 1, width=width - 8)
                y += 13
                continue
            if roll < 0.3:
                line = f"{next(codes, str(r.randint(1, 13)))}—{r.choice(CODES)}"
            else:
                words = s._sentence(r, r.randint(6, 12)).rstrip(".").split()
                for _ in range(r.randint(1, 2)):
                    words.insert(r.randint(0, len(words)), _phrase(r))
                line = " ".join(words) + "."
            f.text(x, y, line, 6.5, width=width - 8)
            y += 9


def irsform(c: s.Canvas, r: random.Random) -> s.Fields:
    """One of the three forms, filled in; a key the form does not have asked too. One page in
    six is a page of its instructions instead, asked the form's keys: none of them is on it."""
    f = _Form(c, r)
    layout = r.choice([w9, w9, w8ben, f1099])
    if r.random() < 1 / 6:
        scratch = _Form(s.Canvas(c.width, c.height, random.Random(r.random()), c.fonts), random.Random(r.random()))
        layout(scratch)  # only for the keys it asks
        instructions(f, layout.__name__)
        keys = r.sample(list(scratch.fields), k=min(len(scratch.fields), r.randint(5, 10)))
        return dict.fromkeys(keys)
    layout(f)
    absent = {"w9": ["date of birth", "payer TIN", "citizenship"], "w8ben": ["EIN", "business name", "payer name"],
              "f1099": ["date of birth", "business name", "citizenship"]}[layout.__name__]
    f.fields.setdefault(r.choice(absent), None)
    return f.fields


# A grid of captioned boxes in the manner of these forms (the kind ``taxform``): an older,
# simpler drawing than the forms above, kept in the training mixes for its variety.
TAX_BOXES = [("Rents", "amount"), ("Royalties", "amount"), ("Other income", "amount"),
             ("Federal income tax withheld", "amount"), ("Fishing boat proceeds", "amount"),
             ("Medical and health care payments", "amount"), ("Nonemployee compensation", "amount"),
             ("State tax withheld", "amount"), ("State income", "amount"), ("Gross proceeds paid to an attorney", "amount"),
             ("Account number (see instructions)", "id"), ("Payer's state no.", "id"), ("Date of birth", "date"),
             ("Exempt payee code", "code"), ("Country of citizenship", "country"), ("Foreign tax identifying number", "id"),
             ("Crop insurance proceeds", "amount"), ("Section 409A deferrals", "amount"),
             ("Excess golden parachute payments", "amount"), ("Nonqualified deferred compensation", "amount"),
             ("Fish purchased for resale", "amount"), ("Substitute payments in lieu of dividends or interest", "amount"),
             ("Exempt payee code (if any)", "payee code"), ("Exemption from FATCA reporting code (if any)", "fatca"),
             ("Social security number", "ssn"), ("Employer identification number", "ein"),
             ("List account number(s) here (optional)", "accounts"), ("Reference number(s) (see instructions)", "id"),
             ("Date of birth (MM-DD-YYYY) (see instructions)", "dob"), ("State/Payer's state no.", "state"),
             ("Capacity in which acting (if form is not signed by beneficial owner)", "capacity")]
PARTY_BOXES = [("PAYER'S name, street address, city or town", "payer"), ("RECIPIENT'S name", "recipient name"),
               ("Name (as shown on your income tax return)", "name"), ("Business name/disregarded entity name", "business name"),
               ("Address (number, street, and apt. or suite no.)", "address"), ("City, state, and ZIP code", "city state zip"),
               ("Requester's name and address (optional)", "requester name address"), ("PAYER'S TIN", "payer TIN"),
               ("RECIPIENT'S TIN", "recipient TIN"), ("Signature date", "signature date"),
               ("Name of individual who is the beneficial owner", "name"),
               ("Permanent residence address (street, apt. or suite no., or rural route)", "permanent address"),
               ("Mailing address (if different from above)", "mailing address"),
               ("City or town, state or province. Include postal code where appropriate.", "city state zip"),
               ("Print name of signer", "name of signer"), ("RECIPIENT'S name, street address, city", "recipient")]
# The keys users ask for a box, when its caption's first words are not how they ask.
FORM_KEYS = {"Exempt payee code (if any)": ["exempt payee code", "payee code"],
             "Exemption from FATCA reporting code (if any)": ["FATCA code", "FATCA exemption code"],
             "Social security number": ["SSN", "social security number"],
             "Employer identification number": ["EIN", "employer identification number"],
             "List account number(s) here (optional)": ["account numbers", "account number"],
             "Reference number(s) (see instructions)": ["reference number"],
             "Date of birth (MM-DD-YYYY) (see instructions)": ["date of birth", "birth date"],
             "State/Payer's state no.": ["state no", "payer state number"],
             "Capacity in which acting (if form is not signed by beneficial owner)": ["capacity acting", "capacity"],
             "Country of citizenship": ["citizenship", "country of citizenship"],
             "Permanent residence address (street, apt. or suite no., or rural route)": ["permanent street address",
                                                                                          "permanent address"],
             "Mailing address (if different from above)": ["mailing address"],
             "Substitute payments in lieu of dividends or interest": ["substitute payments"],
             "Fish purchased for resale": ["fish resale", "fish purchased for resale"],
             "Excess golden parachute payments": ["excess golden parachute payments", "golden parachute payments"],
             "Section 409A deferrals": ["409A deferrals", "section 409A deferrals"],
             "Gross proceeds paid to an attorney": ["gross proceeds attorney", "gross proceeds paid to an attorney"],
             "Medical and health care payments": ["medical health care payments", "medical and health care payments"]}


def taxform(c: s.Canvas, r: random.Random) -> s.Fields:
    """A boxed form in the manner of US tax forms: small printed captions, typed values inside
    the boxes, asked by the caption's gist ("royalties", "payer TIN")."""
    size = r.randint(8, 10)
    vsize = size + r.randint(2, 4)
    x0, x1 = 30, c.width - 30
    y: float = 30
    c.text(x0, y, r.choice(["Form 1099-MISC", "Form W-9", "Form W-8BEN", "Form 1042-S", "Form 1096"]), size + 8, 1)
    c.right(x1, y, f"OMB No. 1545-{r.randint(1000, 1999):04d}", size)
    y += 24
    for line in r.sample(TAX_PRINT, r.randint(1, 3)):  # the fine print: distractors, not answers
        c.text(x0 + r.randint(0, 200), y, line, size - 1)
        y += size + 4
    y += 10
    fields: s.Fields = {}
    boxes = r.sample(PARTY_BOXES, r.randint(3, 6)) + r.sample(TAX_BOXES, r.randint(3, 8))
    cols = r.choice([1, 2, 2, 3])
    w = (x1 - x0) / cols
    bh = vsize * 3
    for i, (caption, what) in enumerate(boxes):
        col = i % cols
        if col == 0 and i:
            y += bh
            if r.random() < 0.2:  # instructions between rows of boxes
                c.text(x0, y, r.choice(TAX_PRINT), size - 1)
                y += size + 6
        if y + bh > c.height - 20:
            break
        bx = x0 + col * w
        c.draw.rectangle([bx, y, bx + w - 4, y + bh - 4], outline=c.ink)
        number = f"{i + 1} " if r.random() < 0.6 else ""
        shown_caption = number + caption
        while c.length(shown_caption, size) > w - 10 and " " in shown_caption:  # cut to the box
            shown_caption = shown_caption.rsplit(" ", 1)[0]
        c.text(bx + 3, y + 2, shown_caption, size)
        value: str | None
        if what == "amount":
            value = f"$ {s.money(r, 10, 90000):,.2f}" if r.random() < 0.6 else f"{s.money(r, 10, 90000):,.0f}"
            key = caption.split("(")[0].strip().lower()
        elif what == "date":
            value = fmt_date(r, "en", r.randint(1940, 2025), r.randint(1, 12), r.randint(1, 28))
            key = caption.lower()
        elif what in ("id", "code"):
            value = f"{r.choice(['', 'A', 'X', 'DE'])}{r.randint(10, 99999999)}"
            key = caption.split("(")[0].strip().lower().replace("'s", "")
        elif what == "country":
            value = r.choice(COUNTRIES)
            key = "country of citizenship"
        elif what in ("payee code", "fatca", "state", "capacity"):
            value = {"payee code": str(r.randint(1, 13)), "fatca": r.choice("ABCDEFGHIJKLM"),
                     "state": r.choice(["CA", "NY", "PA", "TX", "WA", "CT", "NJ", "CO"]),
                     "capacity": r.choice(["Spouse", "Agent", "Parent", "Guardian", "Family Member"])}[what]
            key = what
        elif what in ("ssn", "ein"):  # digits typed into cells: "123 – 45 – 6789"
            digits = [str(r.randint(0, 9)) for _ in range(9)]
            cut = [3, 5] if what == "ssn" else [2]
            parts = ["".join(digits[a:b]) for a, b in zip([0, *cut], [*cut, 9], strict=True)]
            value = r.choice([" – ", "-", " - "]).join(parts) if r.random() < 0.7 else " ".join(digits)
            key = what
        elif what == "accounts":
            value = ", ".join(str(r.randint(10**7, 10**12)) for _ in range(r.randint(1, 2)))
            key = what
        elif what == "dob":
            value = f"{r.randint(1, 12):02d}-{r.randint(1, 28):02d}-{r.randint(1940, 2004)}"
            key = what
        elif what.endswith("TIN"):
            value = f"{r.randint(10, 99)}-{r.randint(1000000, 9999999)}" if r.random() < 0.5 else \
                f"{r.randint(100, 999)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"
            key = what
        elif what in ("address", "permanent address", "mailing address"):
            value = f"{r.randint(1, 9999)} {r.choice(STREETS['en'])}" + (f", APT {r.randint(1, 999)}" if r.random() < 0.2 else "")
            key = what
        elif what == "city state zip":
            value = f"{r.choice(s.CITIES)}, {r.choice(['NY', 'CA', 'WA', 'PA', 'TX'])} {r.randint(10000, 99999)}"
            key = what
        elif what == "signature date":
            value = fmt_date(r, "en", r.randint(2015, 2025), r.randint(1, 12), r.randint(1, 28))
            key = what
        else:
            value = s.company(r) if what in ("payer", "business name") or r.random() < 0.3 else s.person(r)
            key = what if what != "payer" else r.choice(["payer name", "payer"])
        if caption in FORM_KEYS:
            key = r.choice(FORM_KEYS[caption])
        if r.random() < 0.12:
            value = None  # an empty box
        if value is not None:
            right = bx + 3 + c.length(shown_caption, size) + 8
            if r.random() < 0.3 and right + c.length(value, vsize, 2) < bx + w - 8:  # typed after the caption
                c.text(right, y + 2, value, vsize, 2)
            else:
                c.text(bx + 8, y + size + 6, value, vsize, 2)
        fields[key] = value
    y += bh + 10
    for _ in range(r.choice([0, r.randint(3, 12), r.randint(10, 45)])):  # the instructions under the boxes
        if y > c.height - 40:
            break
        line = r.choice(TAX_PRINT) if r.random() < 0.4 else s._sentence(r, r.randint(8, 16))
        c.text(x0, y, line, size - 1)
        y += size + 5
    asked = {caption for caption, _ in boxes}
    unused = [c for c, what in TAX_BOXES if c not in asked and what == "amount"]
    fields[r.choice(unused).lower()] = None  # a box this form does not have
    return fields
