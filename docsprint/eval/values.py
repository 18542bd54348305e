"""Is a predicted value the true one? Compared as users compare them, not character by character.

Real documents' truth files are written by whoever published them, in their own spelling:
ISO dates for a page that prints "05.03.2018", "300" for "300,00 €", "+14015555555" for
"(401) 555-5555". So a value is matched by what it is:

- **dates** as dates: every reading of the prediction (day or month first, month names in
  English, German, French and Spanish, two-digit years) against the true date;
- **amounts** as numbers: "1.234,56", "1,234.56", "$ 2,189" and "-12,50 €" are numbers; the sign
  is ignored (credit notes print it either way); a prediction has at most two digits fewer than
  the true value, so "1" is not "1,000" (which also reads as 1,000 with a decimal comma) while
  "12" is "12.00";
- **times** as hours and minutes, 12- or 24-hour;
- **phone numbers** by their digits, a country code allowed on either side;
- **currencies** by ISO code: a page's "€" is "EUR", "£" is "GBP", "$" is "USD";
- **names and addresses** (keys naming a party, a place or a name) by containment, after
  dropping punctuation: "Lieferant GmbH" is found in "Lieferant GmbH, Lieferantenstraße 20";
- **everything else** exactly, after case folding and dropping punctuation and spaces
  ("12- 345- 6789" is "12-345-6789").

>>> value_match("05.03.2018", "2018-03-05", "invoice date")
True
>>> value_match("529,87 €", "529.87", "grand total")
True
>>> value_match("28/11/202", "2022-11-28", "date")
False
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata

MONTHS = {
    # English, German, French, Spanish (accents dropped before lookup); 3-letter forms too
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "januar": 1, "februar": 2, "marz": 3, "mai": 5, "juni": 6, "juli": 7, "oktober": 10, "dezember": 12,
    "janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "juin": 6, "juillet": 7, "aout": 8, "septembre": 9,
    "octobre": 10, "novembre": 11, "decembre": 12,
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}
_MONTH_PREFIX = {name[:3]: m for name, m in MONTHS.items() if len(name) >= 3}
_MONTH_PREFIX.update({"sept": 9, "mrz": 3, "okt": 10, "dez": 12, "janv": 1, "fevr": 2, "juil": 7})
NAME_WORDS = ("name", "seller", "buyer", "supplier", "vendor", "company", "customer", "consignee", "shipper",
              "carrier", "payer", "recipient", "party", "store", "merchant", "address", "sold to", "bill to",
              "ship to", "employer", "employee", "issuer", "place", "port")
PHONE_WORDS = ("phone", "tel", "fax", "mobile")
CHECKBOX = ("selected", "unselected")
CURRENCY_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "US$": "USD", "¥": "JPY", "fr.": "CHF", "euro": "EUR",
                    "euros": "EUR", "dollar": "USD", "dollars": "USD"}


def fold(text: str) -> str:
    """Case-folded, accents dropped, punctuation turned into spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def _year(y: int) -> int:
    return y + (2000 if y < 70 else 1900) if y < 100 else y


def _date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(_year(y), m, d)
    except ValueError:
        return None


def _month(word: str) -> int | None:
    w = fold(word).replace(" ", "")
    return MONTHS.get(w) or _MONTH_PREFIX.get(w[:4]) or _MONTH_PREFIX.get(w[:3])


def _ocr_zeros(text: str) -> str:
    """An "O" that OCR read for a zero beside a digit made one ("3O. SEP. 2022", "2O22")."""
    return re.sub(r"(?<=\d)[oO]|[oO](?=\d)", "0", text)


def dates(text: str) -> set[dt.date]:
    """Every date the text can be read as (day-first and month-first both kept), OCR's "O"
    for a zero read as one (`_ocr_zeros`)."""
    t = fold(_ocr_zeros(text.replace("\u00a0", " ")))
    ymd: list[tuple[int, int | None, int]] = []
    for y, m, d in re.findall(r"\b(\d{4}) (\d{1,2}) (\d{1,2})\b", t) + re.findall(r"\b(\d{4})(\d{2})(\d{2})\b", t):
        ymd.append((int(y), int(m), int(d)))
    for a, b, y in re.findall(r"\b(\d{1,2}) (\d{1,2}) (\d{4}|\d{2})\b", t):
        ymd += [(int(y), int(b), int(a)), (int(y), int(a), int(b))]
    for d, mon, y in re.findall(r"\b(\d{1,2})(?:st|nd|rd|th|er)? (?:day )?(?:of )?([a-z]{3,10}) (\d{4}|\d{2})\b", t):
        ymd.append((int(y), _month(mon), int(d)))
    for mon, d, y in re.findall(r"\b([a-z]{3,10}) (\d{1,2})(?:st|nd|rd|th)? (\d{4}|\d{2})\b", t):
        ymd.append((int(y), _month(mon), int(d)))
    return {day for y, m, d in ymd if m is not None and (day := _date(y, m, d)) is not None}


_NUMBER = re.compile(r"\d[\d.,' \u00a0\u202f]*\d|\d")


def amounts(text: str) -> set[float]:
    """Every number the text can be read as (decimal comma or point; thousands separators)."""
    out: set[float] = set()
    for raw in _NUMBER.findall(text):
        s = re.sub(r"[' \u00a0\u202f]", "", raw)
        readings = []
        if "," in s and "." in s:  # the last separator is the decimal one
            dec, thou = (",", ".") if s.rfind(",") > s.rfind(".") else (".", ",")
            readings.append(s.replace(thou, "").replace(dec, "."))
        elif "," in s:
            readings += [s.replace(",", "."), s.replace(",", "")]
        elif s.count(".") > 1:
            readings.append(s.replace(".", ""))
        else:
            readings += [s, s.replace(".", "")]
        for r in readings:
            with contextlib.suppress(ValueError):
                out.add(abs(float(r)))
    return out


def times(text: str) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for h, m, pm in re.findall(r"\b(\d{1,2})[:h.](\d{2})(?:[:.]\d{2})?\s*([ap]\.?m\.?)?", text.lower()):
        hour = int(h) % 12 + (12 if pm.startswith("p") else 0) if pm else int(h)
        out.add((hour, int(m)))
    return out


# keys naming an identifier: their values are compared exactly even when they look like amounts
_ID_KEY = re.compile(r"\b(number|no|id|code|tin|ssn|ein|zip|reference|iban|account|#)\b")


def _is_amount(gold: str) -> bool:
    return bool(re.fullmatch(r"[-+]?\s*[$€£¥]?\s*-?[\d.,' ]*\d\s*[$€£¥%]?", gold.strip()))


def kind_of(key: str, gold: str) -> str:
    """How a key's values are compared: date, amount, time, phone, name or exact."""
    k = key.lower()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", gold.strip()) or ("date" in k and dates(gold)):
        return "date"
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", gold.strip()):
        return "time"
    if any(w in k for w in PHONE_WORDS):
        return "phone"
    if "currency" in k or "währung" in k:
        return "currency"
    if _is_amount(gold) and not _ID_KEY.search(k):
        return "amount"
    if any(w in k for w in NAME_WORDS):
        return "name"
    return "exact"


_DATE_KEY = re.compile(r"\b(date|datum|dated|dob)\b")  # not "birth": "place of birth" is a place
_AMOUNT_KEY = re.compile(r"\b(total|totals|amount|subtotal|balance|price|fee|cost|gross)\b")
TAX_WORDS = ("tax", "vat", "mwst", "ust", "iva", "tva")
TIP_WORDS = ("tip", "tips", "gratuity")
# the key alone: "tax", not "tax classification"
_BARE_AMOUNT_KEY = re.compile("(" + "|".join((*TAX_WORDS, *TIP_WORDS, "net")) + ")")
_RATE_KEY = re.compile(r"\b(rate|percent)\b")
_EMAIL_KEY = re.compile(r"\b(e-?mail|mail|courriel|correo)\b")  # not "mailing address"
_EMAIL = re.compile(r"[\w.+-]+ ?@ ?[\w-]+(?: ?\. ?[\w-]+)+")
_PHONE_KEY = re.compile(r"\b(" + "|".join((*PHONE_WORDS, "telephone", "cell")) + r")\b")
_TIME_KEY = re.compile(r"((transaction|purchase|order|sale|receipt|invoice|print|issue) )?time")  # the whole key


def key_kind(key: str) -> str | None:
    """"email", "date", "time", "phone" or "amount" for a key that names one ("e-mail",
    "invoice date", "time", "fax", "Total:", a bare "tax"), else None (identifiers and rates are
    no amounts: "invoice number", "tax rate")."""
    k = key.lower().strip(" :")
    if _EMAIL_KEY.search(k):
        return "email"
    if _DATE_KEY.search(k):
        return "date"
    if _TIME_KEY.fullmatch(k):
        return "time"
    if _PHONE_KEY.search(k):
        return "phone"
    if (_AMOUNT_KEY.search(k) or _BARE_AMOUNT_KEY.fullmatch(k)) and not (_ID_KEY.search(k) or _RATE_KEY.search(k)):
        return "amount"
    return None


_TIME = r"\d{1,2}[:h.]\d{2}(?:[:.]\d{2})?\s*(?:[ap]\.?m?\.?)?"
_PHONE = re.compile(r"[+(]?\d[\d ()./-]{4,}\d\)?")  # "+1 (401) 555-5555", "609-308-2200", "(03 9999 1234)"
_TIMES_ONLY = re.compile(rf"[\s()]*{_TIME}(?:[\s,/()-]+{_TIME})*[\s()]*", re.IGNORECASE)  # "8:11:29PM", "2:51p", "(01:23PM)"
# one number as pages print it: "1 479,85" (groups of three after a space), "1,234.50", "0, 28"
_ONE_NUMBER = re.compile(r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d(?:[\d.,']|[.,] (?=\d))*\d|\d")


def fits(key: str, value: str) -> bool:
    """Does ``value`` have the type its key asks for? A date key's value has a digit; a time
    key's value is times only ("20:07", not "20:07 T001"); a phone key's a phone number only
    ("609-308-2200", not "609-308-2200 440US130"); an amount key's value is one number
    ("$ 1 479,85", not "Total", "$" or "9,90 198,00"); any other key's value fits. Looser than
    `plausible` for dates (a date as OCR reads it, "JAN31'13", fits).

    >>> fits("Total:", "$ 1 479,85"), fits("total", "Total"), fits("total", "9,90 198,00")
    (True, False, False)
    >>> fits("tips", "$"), fits("tax classification", "Individual"), fits("date", "JAN31'13")
    (False, True, True)
    >>> fits("time", "8:11:29PM"), fits("time", "07:18PM 08:37PM"), fits("time", "20:07 T001")
    (True, True, False)
    >>> fits("phone", "+1 (401) 555-5555"), fits("phone", "(0770) 979-5667)."), fits("Tel:", "609-308-2200 440US130")
    (True, True, False)
    >>> fits("time", "2:51:35p"), fits("time", "15:11 (14:09)")
    (True, True)

    An e-mail key's value is one address with nothing after it (a label glued before it, as
    OCR reads "E-Mail:x@y.de", stays): "amorin@remoteglobalconsulting.com 401" ran on into
    the phone number.

    >>> fits("email", "amorin@remoteglobalconsulting.com 401"), fits("E-Mail", "E-Mail:hans@pacific.de")
    (False, True)
    >>> fits("mailing street address", "134 Fulham Road")
    True
    """
    kind = key_kind(key)
    if kind == "email":
        found = list(_EMAIL.finditer(value))
        return len(found) == 1 and not value[found[0].end():].strip(" .,;:)")
    if kind == "date":
        return any(ch.isdigit() for ch in value)
    if kind == "time":
        return bool(_TIMES_ONLY.fullmatch(value))
    if kind == "phone":
        return bool(_PHONE.fullmatch(value.strip().rstrip(".,;:")))
    if kind == "amount":
        return len(_ONE_NUMBER.findall(value)) == 1
    return True


def plausible(key: str, value: str) -> bool:
    """Can ``value`` be an answer to ``key`` at all? A key that names a date wants a value that
    reads as a date, a key that names an amount wants a digit; any other key takes anything.
    Used when windows or pages disagree: "2.2, (c" from a page's running header is no invoice
    date, "EUR" is no grand total.

    >>> plausible("invoice date", "2.2, (c"), plausible("invoice date", "05.03.2018")
    (False, True)
    >>> plausible("grand total", "EUR"), plausible("seller name", "EUR")
    (False, True)
    >>> plausible("tips", "$"), plausible("tax classification", "Individual")
    (False, True)
    """
    kind = key_kind(key)
    if kind == "date":
        return bool(dates(value))
    return kind != "amount" or any(ch.isdigit() for ch in value)


def currency_code(text: str) -> str:
    """ "€" -> "EUR", "eur" -> "EUR", "1.234,56 €" -> "EUR"; "" when none is named."""
    t = text.strip()
    if t.casefold() in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[t.casefold()]
    code = re.search(r"\b([A-Za-z]{3})\b", t)
    if code:
        return code.group(1).upper()
    sym = re.search(r"US\$|[€£$¥]", t)
    return CURRENCY_SYMBOLS[sym.group(0)] if sym else ""


def value_match(pred: str | list[str] | None, gold: str, key: str) -> bool:
    """Does ``pred`` give the value ``gold`` of ``key``? (See the module's rules.)"""
    if pred is None:
        return False
    p = " ".join(pred) if isinstance(pred, list) else pred
    kind = kind_of(key, gold)
    if kind == "date":
        return bool(dates(gold) & dates(p))
    if kind == "amount":
        g, n_pred, n_gold = amounts(gold), len(re.sub(r"\D", "", p)), len(re.sub(r"\D", "", gold))
        return any(abs(a - b) < 0.005 for a in amounts(p) for b in g) and n_gold - 2 <= n_pred <= 2 * n_gold + 2
    if kind == "time":
        return bool(times(gold) & times(p))
    if kind == "currency":
        return currency_code(p) == currency_code(gold) != ""
    if kind == "phone":
        gd, pd = re.sub(r"\D", "", gold), re.sub(r"\D", "", p)
        return len(pd) >= 7 and (gd.endswith(pd) or pd.endswith(gd))
    fp, fg = fold(p), fold(gold)
    if not fp:
        return False
    if fp.replace(" ", "") == fg.replace(" ", ""):
        return True
    if kind == "name":
        return (fg in fp and len(fp) <= 3 * len(fg) + 10) or (fp in fg and len(fp) >= 0.6 * len(fg))
    return False


def amount_value(text: str) -> float | None:
    """The one number an amount's text says, sign kept: "1.234,56 €" -> 1234.56, "-12,50" ->
    -12.5, "$ 2,189" -> 2189.0; None when it holds no number or several."""
    found = _NUMBER.findall(text)
    if len(found) != 1:
        return None
    s = re.sub(r"[' \u00a0\u202f]", "", found[0])
    seps = [i for i, c in enumerate(s) if c in ".,"]
    if seps and len(s) - seps[-1] - 1 in (1, 2) and (len(seps) == 1 or s[seps[-1]] != s[seps[0]]):
        whole, frac = s[: seps[-1]], s[seps[-1] + 1:]  # the last separator, 1-2 digits after it: decimals
    elif seps and all(len(g) == 3 for g in re.split(r"[.,]", s)[1:]):
        whole, frac = s, "0"  # separators of thousands only: "2,189", "1.000.000"
    elif not seps:
        whole, frac = s, "0"
    else:
        return None
    whole = re.sub(r"[.,]", "", whole)
    sign = -1 if re.search(r"-\s*[$€£¥]?\s*\d", text) or text.strip().endswith("-") else 1
    return sign * float(f"{whole}.{frac}")


def normalized(key: str, value: str) -> str | float | None:
    """A value as a program wants it, when it can be read one way only: an ISO date for a date,
    a number for an amount, an ISO code for a currency, else None. The page's spelling stays the
    answer; this is the reading next to it."""
    k = key.lower()
    if kind_of(key, value) == "currency":
        return currency_code(value) or None
    bare = re.sub(r"(?<![A-Za-z])[A-Z]{3}(?![A-Za-z])", "", value).strip()  # "CAD 3,496.81": the code is not the amount
    if "date" in k or "birth" in k or kind_of(key, bare) == "date":
        found = dates(value)
        dotted = re.fullmatch(r"\s*(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4}|\d{2})\s*", _ocr_zeros(value))
        if dotted:  # "05.03.2018" is day first wherever it is printed so
            d, m, y = (int(g) for g in dotted.groups())
            found = {day} if (day := _date(y, m, d)) else set()
        return found.pop().isoformat() if len(found) == 1 else None
    if kind_of(key, bare) == "amount" and not any(w in k for w in NAME_WORDS):  # "business name": "10"
        return amount_value(bare)
    return None

