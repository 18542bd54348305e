"""Payslips in English and German: the employer's letterhead, the employee's details, earnings
and deductions in two columns of amounts, gross, total deductions and net pay.

Held out of every training mix (`docsprint.data.synth.MIXES`): the kind ``payslip`` is the new
kind of document of the fine-tuning learning curve (`docsprint train kie --data`), a kind the
general model has not been trained on.
"""

from __future__ import annotations

import random

from docsprint.data import synth as s
from docsprint.data.business import (
    LOCALES,
    date_style,
    fmt_amount,
    fmt_date,
    label_value,
    party,
    with_currency,
)

PAYSLIP: dict[str, dict] = {
    "en": {"title": ["PAYSLIP", "Pay Slip", "Earnings Statement", "Salary Statement"],
           "employee": ["Employee", "Name", "Employee name"], "id": ["Employee ID", "Staff No.", "Personnel No."],
           "period": ["Pay period", "Period", "Month"], "paydate": ["Pay date", "Payment date", "Paid on"],
           "earn": ["Basic salary", "Overtime", "Bonus", "Shift allowance", "Holiday pay"],
           "ded": ["Income tax", "Social security", "Pension", "Health insurance", "Union fee"],
           "gross": ["Gross pay", "Total earnings", "Gross"], "deductions": ["Total deductions", "Deductions"],
           "net": ["Net pay", "NET PAY", "Amount paid", "Take-home pay"], "tax": "Income tax"},
    "de": {"title": ["LOHNABRECHNUNG", "Gehaltsabrechnung", "Entgeltabrechnung"],
           "employee": ["Mitarbeiter", "Name", "Arbeitnehmer"], "id": ["Personalnummer", "Pers.-Nr."],
           "period": ["Abrechnungszeitraum", "Zeitraum", "Monat"], "paydate": ["Auszahlung am", "Zahltag"],
           "earn": ["Grundgehalt", "Überstunden", "Prämie", "Zuschlag", "Urlaubsgeld"],
           "ded": ["Lohnsteuer", "Rentenversicherung", "Krankenversicherung", "Solidaritätszuschlag"],
           "gross": ["Gesamtbrutto", "Bruttolohn", "Brutto"], "deductions": ["Summe Abzüge", "Abzüge gesamt"],
           "net": ["Auszahlungsbetrag", "Nettolohn", "Netto"], "tax": "Lohnsteuer"},
}
PAYSLIP_ASK = {
    "employer": ["employer", "employer name", "company"], "employee": ["employee name", "employee", "worker"],
    "id": ["employee id", "staff number", "personnel number"], "period": ["pay period", "period"],
    "paydate": ["pay date", "payment date"], "gross": ["gross pay", "gross salary", "total earnings"],
    "deductions": ["total deductions", "deductions"], "net": ["net pay", "net salary", "amount paid"],
    "tax": ["income tax", "tax withheld"],
}


def payslip(c: s.Canvas, r: random.Random) -> s.Fields:
    """A payslip in English or German. Held out of every training mix (`synth.MIXES`): the new
    kind of document of the fine-tuning learning curve (`docsprint train kie --data`)."""
    lang = r.choice(["en", "en", "de"])
    loc, words = LOCALES[lang], PAYSLIP[lang]
    size = r.randint(10, 13)
    lh = int(size * r.uniform(1.4, 1.8))
    x0, x1 = r.randint(30, 60), c.width - r.randint(30, 60)
    employer, employee = party(r, lang), party(r, lang, person=True)
    year, month = r.randint(2018, 2026), r.randint(1, 12)
    style = date_style(r, lang)
    period = (f"{loc['months'][month - 1]} {year}" if r.random() < 0.6
              else f"{fmt_date(r, lang, year, month, 1, style)} - {fmt_date(r, lang, year, month, 28, style)}")
    paydate = fmt_date(r, lang, year, month, r.randint(25, 28), style)
    staff = f"{r.choice(['', 'E', 'P-'])}{r.randint(100, 99999)}"
    fields: s.Fields = {}
    y: float = r.randint(30, 60)
    # the employer's letterhead at the top, left or right; the title on the other side
    if r.random() < 0.5:
        c.text(x0, y, employer.name, size + 3, 1)
        c.right(x1, y, r.choice(words["title"]), size + 5, 1)
    else:
        c.text(x0, y, r.choice(words["title"]), size + 5, 1)
        c.right(x1, y, employer.name, size + 3, 1)
    y += lh
    c.text(x0, y, f"{employer.street}, {employer.city}", size - 1)
    y += lh * 2
    gap = c.length("Abrechnungszeitraum: ", size) + 10
    for label, value in ((r.choice(words["employee"]), employee.name), (r.choice(words["id"]), staff),
                         (r.choice(words["period"]), period), (r.choice(words["paydate"]), paydate)):
        label_value(c, x0, y, label, value, size, gap, r)
        y += lh
    y += lh
    cur = r.choice(["", "", "€", "$", "£"] if lang == "en" else ["", "€", "EUR"])
    earn = [(e, s.money(r, 50, 6000 if i == 0 else 900)) for i, e in enumerate(r.sample(words["earn"][1:], r.randint(0, 3)))]
    earn.insert(0, (words["earn"][0], s.money(r, 1500, 9000)))
    gross = round(sum(v for _, v in earn), 2)
    tax = round(gross * r.uniform(0.08, 0.3), 2)
    ded = [(words["tax"], tax)] + [(d, round(gross * r.uniform(0.01, 0.1), 2))
                                   for d in r.sample(words["ded"][1:], r.randint(1, 3))]
    total_ded = round(sum(v for _, v in ded), 2)
    net = round(gross - total_ded, 2)

    cur_style = r.random()  # one currency style for the whole page

    def amount(v: float) -> str:
        return with_currency(fmt_amount(v, loc), cur, random.Random(cur_style), lang) if cur else fmt_amount(v, loc)

    col = x1 - r.randint(0, 60)

    def column(rows: list[tuple[str, float]], sum_label: str, total: float, y: float) -> tuple[float, list[str], str]:
        """One block of named amounts under each other and its sum under a rule: the y of the
        sum's line, each amount as printed, the sum as printed."""
        shown = []
        for name, v in rows:
            c.text(x0, y, name, size)
            c.right(col, y, printed := amount(v), size)
            shown.append(printed)
            y += lh
        y += lh * 0.3
        c.rule(y - 3, x0, x1)
        c.text(x0, y, r.choice(words[sum_label]), size, 1)
        c.right(col, y, total_s := amount(total), size, 1)
        return y, shown, total_s

    y, _, gross_s = column(earn, "gross", gross, y)
    y, shown, ded_s = column(ded, "deductions", total_ded, y + lh * 1.5)
    tax_s = shown[0]  # the income tax is the first deduction
    y += lh * 2
    c.text(x0, y, r.choice(words["net"]), size + 2, 1)
    c.right(col, y, net_s := amount(net), size + 2, 1)
    values = {"employer": employer.name, "employee": employee.name, "id": staff, "period": period,
              "paydate": paydate, "gross": gross_s, "deductions": ded_s, "net": net_s, "tax": tax_s}
    for what, value in values.items():
        fields[r.choice(PAYSLIP_ASK[what])] = value
    fields[r.choice(["bank account", "tax class", "vacation days left"])] = None  # asked, not on the page
    return fields
