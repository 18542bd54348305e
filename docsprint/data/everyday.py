"""The other papers users bring: business cards, bills of lading and utility bills.

Each is drawn the way such papers are commonly printed, with the distractors that make them
hard: a card's several phone numbers, its company's slogan and its web address beside the
e-mail; a bill of lading's three parties (shipper, consignee, notify party) with an address
and a phone each, the carrier, two ports and a place of delivery; a utility bill's supplier,
customer and delivery point, its account, meter and invoice numbers, the billing period's two
dates, the issue and due dates, and the amounts before and after tax. Keys are asked by the
names users give them ("energy supplier name", "consignee phone", "job title"); a share of the
keys asked are not on the page (null).

Used by `docsprint.data.synth` as the kinds ``card``, ``lading`` and ``utility``.
"""

from __future__ import annotations

import random

from docsprint.data import business as b
from docsprint.data import synth as s
from docsprint.data.irsforms import us_city, us_street

TITLES = ["Founder & CEO", "Sales Manager", "Account Executive", "Senior Consultant", "Managing Director",
          "Head of Marketing", "Software Engineer", "Project Manager", "Chief Financial Officer", "Designer",
          "Directeur commercial", "Geschäftsführer", "Responsable des achats", "Key Account Manager"]
SLOGANS = ["Solutions that scale", "Your partner in growth", "Quality since 1987", "Consulting & Training",
           "Think global, act local", "Innovation at work", "BUSINESS CONSULTING", "Engineering excellence"]
PORTS = ["SHANGHAI, CHINA", "LOS ANGELES, USA", "ROTTERDAM, NETHERLANDS", "HAMBURG, GERMANY", "SINGAPORE",
         "ANTWERP, BELGIUM", "BUSAN, KOREA", "NEW YORK, USA", "FELIXSTOWE, UK", "LE HAVRE, FRANCE",
         "VALENCIA, SPAIN", "PORT KLANG, MALAYSIA", "SYDNEY, AUSTRALIA", "DUBAI, UAE"]
GOODS = ["Furniture parts", "Cotton textiles", "Electronic components", "Machine spare parts", "Frozen seafood",
         "Ceramic tiles", "Auto parts", "Plastic granules", "Canned food", "Steel pipes", "Toys", "Footwear"]
SUPPLIERS = {"en": ["PPL ELECTRIC UTILITIES", "Northern Power & Light", "City Water Services", "BrightGas Energy",
                    "Green Valley Electric Co."],
             "fr": ["EDF", "ENGIE", "TotalEnergies Électricité et Gaz", "Eau de Paris", "Ekwateur"]}


def _ask(r: random.Random, fields: s.Fields, names: list[str], value: str | None) -> None:
    fields[s.key_name(r, *names)] = value


def _phone_intl(r: random.Random) -> str:
    cc = r.choice(["1", "44", "33", "49", "65", "86", "61"])
    return f"+{cc} {r.randint(100, 999)} {r.randint(100, 999)} {r.randint(1000, 9999)}" if r.random() < 0.5 else \
        f"{cc}-{r.randint(10, 99)}-{r.randint(10000000, 99999999)}"


def card(c: s.Canvas, r: random.Random) -> s.Fields:
    """A business card: the person's name large, the title under it, the company (and maybe a
    slogan), then phone, mobile, e-mail, website and address lines, labelled or not."""
    first, last = r.choice(s.FIRST + b.NAMES["fr"][:6]), r.choice(s.LAST + b.NAMES["de"][:6])
    if r.random() < 0.2:  # "Anne MORIN"
        last = last.upper()
    full = f"{first} {last}"
    title = r.choice(TITLES)
    org = r.choice([s.company(r), f"{r.choice(b.BRANDS)}{r.choice(['', ' Global', ' Labs', ' Group'])}"])
    domain = "".join(ch for ch in org.split()[0].lower() if ch.isalnum()) + r.choice([".com", ".io", ".fr", ".de", "consulting.com"])
    email = f"{r.choice([first[0].lower(), first.lower()])}{r.choice(['', '.'])}{last.lower()}@{domain}"
    site = f"www.{domain}"
    phone, mobile = _phone_intl(r), _phone_intl(r)
    addr = f"{us_street(r)}, {us_city(r)}"
    x = r.randint(30, 80)
    y: float = r.randint(30, 70)
    size = r.randint(13, 17)
    lines: list[tuple[str, int, int]] = []  # (text, size, font)
    logo_first = r.random() < 0.5
    if logo_first:
        lines.append((org, size + 2, 1))
        if r.random() < 0.4:
            lines.append((r.choice(SLOGANS), size - 3, 0))
    lines += [(full, size + 6, 1), (title, size - 1, 2)]
    if not logo_first:
        lines.append((org, size, 1))
        if r.random() < 0.4:
            lines.append((r.choice(SLOGANS), size - 3, 0))
    contact = [("phone", r.choice(["T", "Tel.", "Phone", "Office", "☎", ""]), phone),
               ("mobile", r.choice(["M", "Mobile", "Cell", "Mob.", ""]), mobile),
               ("email", r.choice(["E", "Email", "E-mail", ""]), email), ("website", r.choice(["W", "Web", ""]), site),
               ("address", "", addr)]
    if r.random() < 0.4:
        contact = [c_ for c_ in contact if c_[0] != "mobile"]
    r.shuffle(contact)
    shown = {"name": full, "title": title, "company": org}
    for what, label, value in contact:
        lines.append((f"{label}{r.choice([':', ''])} {value}" if label and label != "☎" else f"{label} {value}".strip(),
                      size - 2, 0))
        shown[what] = value
    for text, sz, font in lines:
        if text in (full, org):
            y += sz * 0.4
        c.text(x, y, text, sz, font)
        y += sz * 1.55
    fields: s.Fields = {}
    _ask(r, fields, ["name", "full name", "contact name", "person name"], full)
    if r.random() < 0.6:
        _ask(r, fields, ["firstname", "first name", "given name"], first)
        _ask(r, fields, ["lastname", "last name", "surname", "family name"], last)
    _ask(r, fields, ["job title", "title", "position", "role"], title)
    _ask(r, fields, ["company", "company name", "organization", "employer"], org)
    _ask(r, fields, ["email", "email address", "e-mail"], email)
    _ask(r, fields, ["phone number", "phone", "office phone", "telephone"], phone)
    if r.random() < 0.6:
        _ask(r, fields, ["mobile", "mobile number", "cell phone"], shown.get("mobile"))
    _ask(r, fields, ["website", "web site", "url"], site)
    if r.random() < 0.6:
        _ask(r, fields, ["address", "office address", "street address"], addr)
    _ask(r, fields, ["fax", "fax number", "linkedin", "date of birth"], None)
    return fields


def _block(c: s.Canvas, x: float, y: float, heading: str, lines: list[str], size: int, lh: float,
           width: float = 0) -> float:
    """A boxed field of a form: the rule above (``width`` wide), the heading, the lines."""
    if width:
        c.rule(y - lh * 0.25, x - 4, x + width)
    c.text(x, y, heading, size - 1, 1)
    y += lh
    for line in lines:
        c.text(x + 6, y, line, size)
        y += lh
    return y


def lading(c: s.Canvas, r: random.Random) -> s.Fields:
    """A bill of lading: the B/L number and date, the shipper, consignee and notify party
    (name, address, phone each), the carrier and vessel, ports of loading and discharge, the
    place of delivery and a table of goods with packages and weights."""
    size = r.randint(10, 12)
    lh = size * 1.45
    x0, x1 = r.randint(30, 50), c.width - r.randint(30, 50)
    mid = x0 + (x1 - x0) * r.uniform(0.48, 0.55)
    number = f"{r.choice(['', 'BL', 'XYZ', 'MAEU', 'COSU'])}{r.randint(100000, 999999999)}"
    issued = s.date(r)
    parties = {who: (s.company(r).upper() if r.random() < 0.7 else s.company(r), f"{us_street(r).upper()}, {r.choice(PORTS)}",
                     _phone_intl(r)) for who in ("shipper", "consignee", "notify")}
    if r.random() < 0.3:
        parties["notify"] = parties["consignee"]
    carrier = f"{r.choice(s.ORG_A).upper()} {r.choice(['SHIPPING CO.,LTD.', 'LINES', 'MARITIME', 'LOGISTICS LTD', 'FREIGHT INC.'])}"
    vessel = f"{r.choice(['MSC', 'EVER', 'CMA CGM', 'MAERSK', 'COSCO'])} {r.choice(s.ORG_A).upper()}"
    pol, pod = r.sample(PORTS, 2)
    delivery = r.choice([pod, r.choice(PORTS)])
    y: float = r.randint(30, 50)
    c.text(x0, y, r.choice(["BILL OF LADING", "Bill of Lading", "OCEAN BILL OF LADING", "B/L"]), size + 8, 1)
    c.text(mid, y, f"{r.choice(['B/L No.', 'Bill of Lading No.', 'B/L Number', 'No.'])}{r.choice([':', ''])} {number}", size)
    c.text(mid, y + lh, f"{r.choice(['Date of issue', 'Date', 'Issue date', 'Shipped on board'])}{r.choice([':', ''])} {issued}", size)
    y += lh * 3
    labels = {"shipper": ["SHIPPER", "Shipper / Exporter", "Shipper"], "consignee": ["CONSIGNEE", "Consignee", "Consigned to"],
              "notify": ["NOTIFY PARTY", "Notify party", "Notify"]}
    left = ["shipper", "consignee", "notify"]
    boxed = r.random() < 0.6  # a grid of ruled fields, or headings alone
    yl = y
    shown_phone = {}
    for who in left:
        name, addr, tel = parties[who]
        lines = [name, addr]
        if r.random() < 0.75:
            lines.append(f"{r.choice(['TEL', 'Tel:', 'Phone:', 'T:'])} {tel}")
            shown_phone[who] = tel
        yl = _block(c, x0, yl, r.choice(labels[who]), lines, size, lh, (mid - x0 - 8) * boxed) + lh * 0.5
    yr = y
    right = [("carrier", r.choice(["CARRIER", "Carrier", "Carrier name"]), carrier),
             ("vessel", r.choice(["VESSEL", "Vessel / Voyage", "Ocean vessel"]), f"{vessel} {r.randint(100, 999)}{r.choice('EWNS')}"),
             ("pol", r.choice(["PORT OF LOADING", "Port of loading", "Loading port"]), pol),
             ("pod", r.choice(["PORT OF DISCHARGE", "Port of discharge", "Discharge port"]), pod),
             ("delivery", r.choice(["PLACE OF DELIVERY", "Place of delivery", "Final destination"]), delivery)]
    if r.random() < 0.4:
        right.insert(1, ("booking", r.choice(["BOOKING NO.", "Booking number"]), str(r.randint(10**7, 10**9))))
    for _, label, value in right:
        yr = _block(c, mid, yr, label, [value], size, lh, (x1 - mid) * boxed) + lh * 0.3
    y = max(yl, yr) + lh
    heads = ["MARKS & NUMBERS", "DESCRIPTION OF GOODS", "PACKAGES", "GROSS WEIGHT"]
    xs = [x0, x0 + (x1 - x0) * 0.22, x0 + (x1 - x0) * 0.62, x0 + (x1 - x0) * 0.8]
    for x, h in zip(xs, heads, strict=True):
        c.text(x, y, h if r.random() < 0.6 else h.title(), size - 1, 1)
    y += lh
    c.rule(y, x0, x1)
    y += lh * 0.4
    for _ in range(r.randint(1, 4)):
        kg = round(r.uniform(100, 20000), 1)
        c.text(xs[0], y, f"N/M {r.randint(1, 99)}", size)
        c.text(xs[1], y, r.choice(GOODS), size)
        c.text(xs[2], y, f"{r.randint(1, 900)} {r.choice(['CTNS', 'PALLETS', 'PKGS'])}", size)
        c.text(xs[3], y, f"{kg:,.1f} KGS", size)
        y += lh
    y += lh
    c.text(x0, y, f"{r.choice(['FREIGHT PREPAID', 'FREIGHT COLLECT'])}  {r.choice(['Place of issue', 'Issued at'])}: {pol}", size)
    fields: s.Fields = {}
    _ask(r, fields, ["bill of lading number", "B/L number", "bl number", "document number"], number)
    _ask(r, fields, ["date of issue", "issue date", "date", "shipping date"], issued)
    for who in ("shipper", "consignee"):
        name, addr, _ = parties[who]
        _ask(r, fields, [f"{who} name", who], name)
        if r.random() < 0.7:
            _ask(r, fields, [f"{who} address"], addr)
        if r.random() < 0.6:
            _ask(r, fields, [f"{who} phone", f"{who} phone number"], shown_phone.get(who))
    if r.random() < 0.4:
        _ask(r, fields, ["notify party", "notify party name"], parties["notify"][0])
    _ask(r, fields, ["carrier name", "carrier", "shipping line"], carrier)
    _ask(r, fields, ["port of loading", "loading port"], pol)
    _ask(r, fields, ["port of discharge", "discharge port", "destination port"], pod)
    if r.random() < 0.4:
        _ask(r, fields, ["place of delivery", "final destination"], delivery)
    _ask(r, fields, ["container number", "seal number", "invoice total"], None)
    return fields


def utility(c: s.Canvas, r: random.Random) -> s.Fields:
    """An electricity, gas or water bill in English or French: the supplier's letterhead, the
    customer's address window, a box of references (account, invoice, meter or delivery
    point), the billing period, the consumption and the amounts before and after tax."""
    lang = r.choice(["en", "en", "fr"])
    loc = b.LOCALES[lang]
    fr = lang == "fr"
    size = r.randint(10, 13)
    lh = size * 1.5
    x0, x1 = r.randint(30, 55), c.width - r.randint(30, 55)
    supplier = r.choice(SUPPLIERS[lang])
    sup_addr = f"{us_street(r)}, {us_city(r)}" if not fr else f"{r.randint(1, 99)} {r.choice(b.STREETS['fr'])}, {r.randint(10000, 95999)} {r.choice(b.CITIES['fr'])}"
    customer = (s.person(r).upper() if r.random() < 0.5 else s.person(r)) if r.random() < 0.85 else "CUSTOMER"
    if fr:
        street, city = f"{r.randint(1, 200)} {r.choice(b.STREETS['fr']).upper()}", f"{r.randint(75001, 75020)} PARIS"
    else:
        street, city = us_street(r).upper(), us_city(r).upper()
    y0 = r.randint(2019, 2026)
    m = r.randint(1, 11)
    style = b.date_style(r, lang)
    start, end = b.fmt_date(r, lang, y0, m, 1, style), b.fmt_date(r, lang, y0, m, 28, style)
    issued = b.fmt_date(r, lang, y0, m + 1, r.randint(1, 28), style)
    due = b.fmt_date(r, lang, y0 + (m == 11), (m + 1) % 12 + 1, r.randint(1, 28), style)
    account = f"{r.randint(10**9, 10**10 - 1)}" if r.random() < 0.6 else f"{r.randint(100, 999)}-{r.randint(10000, 99999)}-{r.randint(10, 99)}"
    invoice_no = str(r.randint(10**9, 10**10 - 1))
    point = str(r.randint(10**13, 10**14 - 1))
    kwh = r.randint(80, 9000)
    net = round(kwh * r.uniform(0.12, 0.35) + r.uniform(5, 40), 2)
    tax = round(net * r.choice([0.05, 0.2, 0.0825]), 2)
    total = round(net + tax, 2)
    y: float = r.randint(30, 50)
    c.text(x0, y, supplier, size + 6, 1)
    y += lh * 1.3
    c.text(x0, y, sup_addr, size - 2)
    y += lh * 2
    # the customer's address window (right) and the references (left)
    wx = x0 + (x1 - x0) * r.uniform(0.5, 0.58)
    wy = y
    for line in [customer, street, city]:
        c.text(wx, wy, line, size)
        wy += lh
    refs = [("account", ["Account number", "Account No.", "Customer account"] if not fr else ["N° de compte", "Référence client"], account),
            ("invoice", ["Bill number", "Invoice No."] if not fr else ["N° de facture", "Facture n°"], invoice_no),
            ("point", ["Meter number", "Service point ID"] if not fr else ["Point de livraison (PDL)", "N° PDL", "Point de livraison"], point),
            ("issued", ["Bill date", "Statement date", "Date"] if not fr else ["Date de facture", "Facture du"], issued)]
    r.shuffle(refs)
    gap = 140 if not fr else 175
    for _, labels, value in refs:
        b.label_value(c, x0, y, r.choice(labels), value, size, gap, r)
        y += lh
    y = max(y, wy) + lh
    period = f"{'Billing period' if not fr else 'Période de facturation'}: {start} {'-' if not fr else 'au'} {end}"
    c.text(x0, y, period, size, 1)
    y += lh * 1.2
    c.text(x0, y, f"{'Consumption' if not fr else 'Consommation'}: {kwh} kWh" + (f"  {'Tariff' if not fr else 'Tarif'} {r.choice(['Residential R', 'Base 6 kVA', 'BT inf 36 kVA'])}"), size)
    y += lh * 1.6
    rows = [("net", r.choice(["Total before taxes", "Charges before tax", "Subtotal"] if not fr else ["Total HT", "Montant hors taxes"]), net),
            ("tax", r.choice(["Taxes", "Sales tax", "Total taxes"] if not fr else ["TVA", "Total taxes et contributions"]), tax),
            ("total", r.choice(["Total amount due", "Amount due", "Total"] if not fr else ["Total TTC", "Montant à payer"]), total)]
    lx = x0 + (x1 - x0) * 0.45
    shown = {}
    cur = "$" if not fr else "€"
    for what, label, v in rows:
        text = f"{cur}{b.fmt_amount(v, loc)}" if not fr else f"{b.fmt_amount(v, loc)} €"
        c.text(lx, y, label, size, 1 if what == "total" else 0)
        c.right(x1, y, text, size, 1 if what == "total" else 0)
        shown[what] = text
        y += lh
    y += lh
    c.text(x0, y, f"{'Please pay by' if not fr else 'À payer avant le'} {due}", size, 1)
    y += lh * 2
    if r.random() < 0.6:
        c.text(x0, y, r.choice(["Questions? Call us at", "Service client :"]) + f" {_phone_intl(r)}", size - 2)
    fields: s.Fields = {}
    _ask(r, fields, ["energy supplier name", "issuer name", "supplier name", "utility company"], supplier)
    if r.random() < 0.5:
        _ask(r, fields, ["issuer address", "supplier address"], sup_addr)
    _ask(r, fields, ["energy consumer name", "recipient name", "customer name", "account holder"], customer)
    if r.random() < 0.6:
        _ask(r, fields, ["energy consumer address", "recipient address", "service address"], f"{street} {city}")
    _ask(r, fields, ["account number", "customer account number"], account)
    _ask(r, fields, ["invoice number", "bill number"], invoice_no)
    if r.random() < 0.6:
        _ask(r, fields, ["delivery point", "meter number", "service point"], point)
    _ask(r, fields, ["invoice date", "bill date", "statement date"], issued)
    if r.random() < 0.5:
        _ask(r, fields, ["due date", "payment due date"], due)
    if r.random() < 0.5:
        _ask(r, fields, ["period start", "billing period start"], start)
        _ask(r, fields, ["period end", "billing period end"], end)
    _ask(r, fields, ["total before taxes", "subtotal", "net amount"], shown["net"])
    _ask(r, fields, ["total taxes", "tax amount", "total tax"], shown["tax"])
    _ask(r, fields, ["total amount", "amount due", "total"], shown["total"])
    _ask(r, fields, ["meter reading", "previous balance", "iban"], None)
    return fields
