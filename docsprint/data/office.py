"""Office paperwork as the scanned forms of FUNSD show it: fax cover sheets, memos, project and
approval sheets, each a column (or two) of printed questions ("PROJECT NO.:", "Date
Received", "IF SO, GIVE DATE AND TITLE:") with the answers typed or written beside or under
them, often over several lines (a list of names after "CC:", a description that wraps).

The key asked is the question as printed, colon included, as FUNSD asks it; a question left
unanswered is asked too (its value is null). Used by `docsprint.data.synth` as the kind
``office``.
"""
from __future__ import annotations

import random

from docsprint.data import synth as s

TITLES = ["FAX COVER SHEET", "MEMORANDUM", "INTEROFFICE MEMO", "PROJECT REQUEST", "PRODUCTION APPROVAL",
          "REQUEST FOR QUOTATION", "TEST REPORT", "BRAND PROMOTION SUMMARY", "PURCHASE REQUISITION",
          "MARKET RESEARCH REQUEST", "Confidential Memorandum", "Facsimile Transmittal", "RESEARCH PROPOSAL",
          "CONTRACT SUMMARY", "INVENTORY ADJUSTMENT", "SAMPLE SUBMISSION FORM"]
BRANDS = ["KOOL", "Eclipse", "WINSTON", "Meridian", "SALEM", "Camden", "Gemini", "Northwind", "VANTAGE", "Bright",
          "Sterling", "Pall Mall", "CAPRI", "Horizon", "Carlton", "Monarch"]
# question wordings -> the kind of answer
QUESTIONS: dict[str, list[str]] = {
    "person": ["TO", "FROM", "ATTENTION", "Attn", "CONTACT", "REQUESTED BY", "SUBMITTED BY", "APPROVED BY",
               "PROJECT LEADER", "REPORTED BY", "Prepared by", "Sender", "Recipient", "Signature", "ORIGINATOR",
               "Account Executive", "SUPERVISOR", "Tested by"],
    "people": ["CC", "cc", "COPIES TO", "DISTRIBUTION", "Copy to"],
    "date": ["DATE", "Date", "DATE RECEIVED", "DATE INITIATED", "DEADLINE", "DATE REQUESTED", "Due Date",
             "COUPON ISSUE DATE", "COUPON EXPIRATION DATE", "START DATE", "Completion Date", "Date Shipped",
             "EFFECTIVE DATE", "Date of Test"],
    "phone": ["FAX", "FAX NUMBER", "FAX NO.", "Fax #", "PHONE", "TELEPHONE", "Tel. No.", "PHONE NUMBER"],
    "company": ["CLIENT", "AGENCY", "SUPPLIER", "COMPANY", "MANUFACTURER", "VENDOR", "Account Name", "Firm"],
    "brand": ["BRAND", "Brand", "PRODUCT", "Brand(s)", "BRAND NAME", "VARIETY"],
    "code": ["PROJECT NO.", "PROJECT #", "JOB NUMBER", "CODE ASSIGNED", "LOT NO", "ACCOUNT NO.", "Reference No.",
             "P.O. NUMBER", "FILE NO.", "Sample No.", "Charge To"],
    "text": ["SUBJECT", "RE", "DESCRIPTION", "COMMENTS", "Remarks", "CONCLUSION", "PURPOSE", "OBJECTIVE",
             "PROJECT NAME", "CONSUMER OFFER", "SOURCE", "IF SO, GIVE DATE AND TITLE", "Reason for request",
             "Special Instructions", "Results"],
    "amount": ["TOTAL COST", "COUPON VALUE", "BUDGET", "Estimated Cost", "TOTAL", "AMOUNT", "NEW BALANCE",
               "THIS AMOUNT", "Unit Price"],
    "count": ["NO. OF PAGES", "Number of pages (including cover)", "CARTONS", "QUANTITY", "Pages", "WEIGHT",
              "Sample Size"],
    "place": ["LOCATION", "DIVISION", "DEPARTMENT", "Dept.", "CITY", "Market", "REGION", "Plant"],
    "yesno": ["Is this a new product? (yes or no)", "Approved? (yes or no)", "Samples enclosed?",
              "CONFIDENTIAL?", "Will you attend?"],
}
SECTIONS = ["SECTION A - GENERAL INFORMATION", "PROJECT INFORMATION", "FOR OFFICE USE ONLY", "SHIPPING",
            "Part II", "APPROVALS", "TEST RESULTS", "COST ESTIMATE", "DESCRIPTION OF WORK", "Distribution List"]
DEPARTMENTS = ["Marketing", "R&D", "Legal", "Sales", "Research Division", "Quality Assurance", "Purchasing",
               "New York", "Winston-Salem", "Richmond", "Louisville", "Product Development", "Finance"]


def _old_date(r: random.Random) -> str:
    y, m, d = r.randint(1962, 1999), r.randint(1, 12), r.randint(1, 28)
    return r.choice([f"{m}/{d}/{y % 100:02d}", f"{m}/{d}/{y}", f"{s.MONTHS[m - 1]} {d}, {y}",
                     f"{d} {s.MONTHS[m - 1][:3]} {y}", f"{m}-{d}-{y % 100:02d}", f"{s.MONTHS[m - 1].upper()} {d}, {y}"])


def _initials(r: random.Random) -> str:
    first, last = s.person(r).split(" ", 1)
    name = r.choice([f"{first[0]}. {last}", f"{first} {last}", f"Mr. {last}", f"Dr. {last}", f"Ms. {last}"])
    return name.upper() if r.random() < 0.4 else name


def _answer(kind: str, question: str, r: random.Random) -> str:
    if kind == "person":
        return _initials(r)
    if kind == "people":
        return ", ".join(_initials(r) for _ in range(r.randint(2, 6)))
    if kind == "date":
        return _old_date(r)
    if kind == "phone":
        return r.choice([f"({r.randint(200, 999)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
                         f"1-{r.randint(200, 999)}-{r.randint(200, 999)}-{r.randint(1000, 9999)}",
                         f"{r.randint(200, 999)}-{r.randint(1000, 9999)}"])
    if kind == "company":
        return s.company(r)
    if kind == "brand":
        return f"{r.choice(BRANDS)} {r.choice(['Lights', 'KS', '100s', 'Filter', 'Menthol', 'Ultra', ''])}".strip()
    if kind == "code":
        return r.choice([f"{r.randint(1960, 1999)}-{r.randint(1, 99)}", f"{r.choice('ABMORX')}{r.randint(10, 99)}-"
                         f"{r.randint(1, 99)}", str(r.randint(1000, 999999)), f"#{r.randint(100, 9999)}"])
    if kind == "text":
        text = " ".join(s._sentence(r, r.randint(4, 12)) for _ in range(r.randint(1, 3)))
        return text.upper() if r.random() < 0.3 else text
    if kind == "amount":
        return r.choice([f"${s.money(r, 1, 90000):,.2f}", f"$ {r.randint(1, 500) * 100:,}", f"{s.money(r, 1, 5000):,.2f}"])
    if kind == "count":
        return str(r.randint(1, 40)) + (r.choice([" lbs.", " kg", ""]) if "WEIGHT" in question.upper() else "")
    if kind == "place":
        return r.choice(DEPARTMENTS + s.CITIES)
    return r.choice(["Yes", "No", "YES", "NO", "X"])


def office(c: s.Canvas, r: random.Random) -> s.Fields:
    """A page of office paperwork: a letterhead and title, then printed questions with their
    answers beside (at a tab stop or just after) or under them, in one or two columns; long
    answers wrap; some questions are left blank; maybe a paragraph and a footer."""
    size = r.randint(11, 15)
    lh = int(size * r.uniform(1.5, 2.1))
    x0, x1 = r.randint(30, 70), c.width - r.randint(30, 60)
    y: float = r.randint(25, 60)
    if r.random() < 0.6:
        c.text(x0, y, s.company(r).upper(), size + 2, 1)
        y += lh
        if r.random() < 0.5:
            c.text(x0, y, s.address(r), size - 2)
            y += lh
    title = r.choice(TITLES)
    c.text(x0 + r.choice([0, (x1 - x0) * 0.3]), y, title, size + 5, 1)
    y += lh * 1.8
    colon = r.choice([":", ":", "", " :"])
    case = r.choice([str.upper, lambda q: q, lambda q: q])
    answer_font = r.choice([0, 2, 2])  # the typed or written answers
    label_font = r.choice([0, 1])
    kinds = list(QUESTIONS)
    two_col = r.random() < 0.35
    col_w = (x1 - x0) / (2 if two_col else 1)
    tab = r.choice([None, col_w * r.uniform(0.25, 0.4)])  # answers at a tab stop, or just after the question
    fields: s.Fields = {}
    n = r.randint(8, 22)
    col, row_y, pending = 0, y, 0.0
    for _ in range(n):
        kind = r.choice(kinds)
        question = case(r.choice(QUESTIONS[kind]))
        question += "" if question.endswith(("?", ")")) else colon
        if question in fields:
            continue
        x = x0 + col * col_w
        if row_y + lh > c.height - 60:
            break
        if col == 0 and r.random() < 0.1:  # a section heading between the questions
            row_y += lh * 0.4
            c.text(x0, row_y, r.choice(SECTIONS), size, 1)
            row_y += lh * 1.2
        end = c.text(x, row_y, question, size, label_font)
        value = _answer(kind, question, r) if r.random() > 0.15 else None
        below = (kind in ("text", "people") and r.random() < 0.5) or r.random() < 0.12
        vx = x + 12 if below else max(end + 10, x + tab if tab else 0)
        vy = row_y + lh * 0.9 if below else row_y
        lines = 1
        if value:
            width = x + col_w - 15 - vx
            line, out = "", []
            for word in value.split():
                if line and c.length(line + " " + word, size, answer_font) > width:
                    out.append(line)
                    line = word
                else:
                    line = (line + " " + word).strip()
            out.append(line)
            out = out[:4]  # a long answer stops at four lines: what is shown is what is asked
            for i, text in enumerate(out):
                c.text(vx, vy + i * lh * 0.85, text, size, answer_font)
            value = " ".join(out)
            lines = len(out)
        elif r.random() < 0.5:
            c.rule(row_y + size + 4, end + 6, x + col_w - 20)
        fields[question] = value
        advance = (vy - row_y) + lh * (0.85 * (lines - 1) + 1.1)
        if two_col and col == 0 and not below and lines == 1:
            col = 1
            pending = advance
        else:
            row_y += max(advance, pending)  # pending: the left column's height, 0 in one column
            col, pending = 0, 0.0
    if r.random() < 0.5 and row_y < c.height - 120:
        row_y += lh
        for _ in range(r.randint(1, 4)):
            c.text(x0, row_y, s._sentence(r, r.randint(8, 14)), size - 2)
            row_y += lh * 0.8
    if r.random() < 0.4:
        c.text(x0, c.height - 40, r.choice(["CONFIDENTIAL", f"Page 1 of {r.randint(1, 5)}", "FORM 1023-A (REV. 5/88)",
                                            s.company(r)]), size - 3)
    return fields
