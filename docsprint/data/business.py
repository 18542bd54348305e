"""Business documents as users bring them: invoices, credit notes, purchase orders and receipts,
in English, German, French, Spanish, Italian and Dutch.

Each page is printed the way its locale prints it (``1.234,56 €``, ``05.03.2018``,
``12 mars 2021``), and each key is asked by a name the page may not use: the page says
"Verkäufer" or just prints the seller's letterhead, the prompt asks "seller name"; the page says
"Zu zahlen", the prompt asks "amount due". Distractors are the point: net, tax, total, prepaid
and amount due on one page; invoice, delivery and due dates; two parties with two addresses and
two VAT ids. Values are the page's own spelling (the model copies them), keys asked although
the page lacks them come back null.

Used by `docsprint.data.synth` as the kinds ``invoice-intl`` and ``receipt-intl``; its locales,
names and formats serve `docsprint.data.irsforms` and `docsprint.data.payslip` too.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterable
from dataclasses import dataclass

from docsprint.data import synth as s
from docsprint.eval.values import currency_code

# Per locale: number format, date formats and the page's own words for each label.
LOCALES: dict[str, dict] = {
    "en": {
        "ship_to": ["Ship to", "Deliver to", "Delivery address"], "contact": ["Attn:", "Contact:", "Attention:"], "director": ["Director:", "CEO:", "Account holder:"], "email": ["Email", "E-mail"],
        "decimal": ".", "thousands": ",", "months": s.MONTHS,
        "invoice": ["INVOICE", "Invoice", "Tax Invoice", "Bill"], "credit": ["CREDIT NOTE", "Credit Note"],
        "order": ["PURCHASE ORDER", "Purchase Order"],
        "number": ["Invoice No.", "Invoice #", "Invoice Number", "No."], "po_number": ["PO Number", "P.O. No.", "Order No."],
        "date": ["Invoice Date", "Date", "Date of issue"], "due": ["Due Date", "Payment due", "Due by"],
        "delivery": ["Delivery date", "Ship date", "Service period"], "ref": ["Your order", "Order reference", "PO #"],
        "buyer": ["Bill to", "Billed to", "Customer", "Sold to", "Invoice to", "Buyer"], "seller": ["From", "Supplier", "Vendor"],
        "vat": ["VAT No.", "VAT ID", "Tax ID", "EIN"], "net": ["Subtotal", "Net amount", "Total excl. tax", "Net total", "Sub-total", "Total before tax", "Amount excl. VAT", "Total net"],
        "tax": ["VAT", "Sales tax", "Tax", "Tax amount", "VAT amount"], "total": ["Total", "TOTAL", "Grand total", "Invoice total", "Total incl. VAT", "Total amount", "Gross total"],
        "paid": ["Paid", "Less deposit", "Prepayment"], "due_amt": ["Amount due", "Balance due", "Total due", "Please pay", "Amount payable", "Balance", "Due now"],
        "cols": ["Description", "Qty", "Unit price", "Amount"], "customer_no": ["Customer No.", "Account No."],
        "thanks": ["Thank you for your business.", "Payment within 30 days.", "Please quote the invoice number."],
        "receipt_total": ["TOTAL", "Total", "AMOUNT", "Total due"], "cash": ["CASH", "Card", "VISA", "Change"],
        "phone": ["Tel", "Phone", "Tel."], "page": "Page",
        "currency_label": ["Currency", "Invoice currency"], "of": ["dated", "of", "from"], "nr": ["No.", "#", ""], "name_label": "Name", "address_label": ["Address", "Street"], "total_tax": ["Total taxes", "Total tax", "Total VAT"], "country": ["United Kingdom", "USA", "Ireland"],
    },
    "de": {
        "ship_to": ["Lieferadresse", "Warenempfänger", "Lieferanschrift"], "contact": ["z. Hd.", "Ansprechpartner:", "Kontakt:"], "director": ["Geschäftsführer:", "Inhaber:", "Kontoinhaber:"], "email": ["E-Mail", "Mail"],
        "decimal": ",", "thousands": ".",
        "months": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(),
        "invoice": ["RECHNUNG", "Rechnung"], "credit": ["GUTSCHRIFT", "Rechnungskorrektur"],
        "order": ["BESTELLUNG", "Bestellung"],
        "number": ["Rechnungsnummer", "Rechnungs-Nr.", "Rechnung Nr.", "Beleg-Nr."], "po_number": ["Bestellnummer", "Bestell-Nr."],
        "date": ["Rechnungsdatum", "Datum", "Belegdatum"], "due": ["Fällig am", "Zahlbar bis", "Fälligkeitsdatum"],
        "delivery": ["Lieferdatum", "Leistungsdatum", "Leistungszeitraum"], "ref": ["Ihre Bestellung", "Bestellreferenz", "Auftrag"],
        "buyer": ["Rechnungsempfänger", "Kunde", "An", "Käufer", "Käufer/Leistungsempfänger", "Leistungsempfänger"], "seller": ["Verkäufer", "Lieferant", "Absender"],
        "vat": ["USt-IdNr.", "USt-ID", "USt.-Id.-Nr.", "USt.-Identnr.", "Umsatzsteuer-ID", "UID"], "net": ["Nettobetrag", "Summe netto", "Zwischensumme", "Gesamt netto", "Rechnungssumme Netto", "Nettosumme", "Warenwert netto", "Summe Positionen"],
        "tax": ["MwSt.", "USt.", "Umsatzsteuer", "Mehrwertsteuer", "zzgl. USt.", "USt.-Betrag"], "total": ["Gesamtbetrag", "Bruttobetrag", "Summe", "Rechnungsbetrag", "Rechnungssumme Brutto", "Gesamtsumme", "Bruttosumme", "Endbetrag", "Summe brutto"],
        "paid": ["Anzahlung", "Bereits gezahlt", "Vorauszahlung"], "due_amt": ["Zu zahlen", "Zahlbetrag", "Offener Betrag", "Fälliger Betrag", "Zahlbarer Betrag", "Restbetrag"],
        "cols": ["Bezeichnung", "Menge", "Einzelpreis", "Betrag"], "customer_no": ["Kundennummer", "Kunden-Nr."],
        "thanks": ["Vielen Dank für Ihren Auftrag.", "Zahlbar innerhalb von 14 Tagen ohne Abzug."],
        "receipt_total": ["SUMME", "Summe", "GESAMT", "Zu zahlen"], "cash": ["BAR", "EC-Karte", "Rückgeld", "Gegeben"],
        "phone": ["Tel.", "Telefon"], "page": "Seite",
        "currency_label": ["Währung", "Rechnungswährung"], "of": ["vom"], "nr": ["Nr.", "Nummer"], "name_label": "Name", "address_label": ["Anschrift", "Adresse"], "total_tax": ["Summe MwSt.", "Steuerbetrag", "Umsatzsteuer gesamt"], "country": ["Deutschland", "DE"],
    },
    "fr": {
        "ship_to": ["Adresse de livraison", "Livré à"], "contact": ["À l'attention de", "Contact :", "Contact commercial"], "director": ["Gérant :", "Président :"], "email": ["E-mail", "Courriel"],
        "decimal": ",", "thousands": " ",
        "months": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
        "invoice": ["FACTURE", "Facture"], "credit": ["AVOIR", "Avoir"], "order": ["BON DE COMMANDE", "Commande"],
        "number": ["Facture N°", "N° de facture", "Numéro"], "po_number": ["N° de commande", "Bon de commande"],
        "date": ["Date de facture", "Date", "Date d'émission"], "due": ["Date d'échéance", "Échéance", "À payer avant le"],
        "delivery": ["Date de livraison", "Période"], "ref": ["Votre commande", "Référence", "Réf. commande"],
        "buyer": ["Client", "Facturé à", "Destinataire", "Acheteur", "Adresse de facturation"], "seller": ["Vendeur", "Fournisseur", "Émetteur"],
        "vat": ["N° TVA", "TVA intracom.", "SIRET"], "net": ["Total HT", "Montant HT", "Sous-total", "Total hors taxes", "Base HT"],
        "tax": ["TVA", "Total TVA", "Montant TVA"], "total": ["Total TTC", "Montant TTC", "Total", "Montant total", "Total toutes taxes"],
        "paid": ["Acompte", "Déjà réglé"], "due_amt": ["Net à payer", "Reste à payer", "Montant dû", "Solde à payer", "À payer"],
        "cols": ["Désignation", "Qté", "Prix unitaire", "Montant"], "customer_no": ["N° client", "Code client"],
        "thanks": ["Merci de votre confiance.", "Paiement à 30 jours."],
        "receipt_total": ["TOTAL", "Total TTC", "A PAYER"], "cash": ["ESPECES", "CB", "Rendu"],
        "phone": ["Tél.", "Tél"], "page": "Page",
        "currency_label": ["Devise", "Monnaie"], "of": ["du"], "nr": ["N°", "n°", ""], "name_label": "Nom", "address_label": ["Adresse"], "total_tax": ["Total taxes", "Total TVA", "Montant TVA"], "country": ["France", "FR"],
    },
    "es": {
        "ship_to": ["Dirección de entrega", "Enviar a"], "contact": ["Atención:", "Contacto:"], "director": ["Administrador:"], "email": ["Email", "Correo"],
        "decimal": ",", "thousands": ".",
        "months": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split(),
        "invoice": ["FACTURA", "Factura"], "credit": ["FACTURA RECTIFICATIVA", "Abono"], "order": ["PEDIDO", "Orden de compra"],
        "number": ["Factura N.º", "Número de factura", "Nº"], "po_number": ["N.º de pedido", "Pedido"],
        "date": ["Fecha de factura", "Fecha", "Fecha de emisión"], "due": ["Fecha de vencimiento", "Vencimiento"],
        "delivery": ["Fecha de entrega"], "ref": ["Su pedido", "Referencia"],
        "buyer": ["Cliente", "Facturar a", "Comprador"], "seller": ["Proveedor", "Emisor", "Vendedor"],
        "vat": ["NIF", "CIF", "N.º IVA"], "net": ["Base imponible", "Subtotal", "Importe neto"],
        "tax": ["IVA", "Cuota IVA"], "total": ["Total", "TOTAL FACTURA", "Importe total"],
        "paid": ["Anticipo", "Pagado"], "due_amt": ["Total a pagar", "Importe a pagar", "Pendiente"],
        "cols": ["Descripción", "Cant.", "Precio", "Importe"], "customer_no": ["N.º cliente"],
        "thanks": ["Gracias por su compra.", "Pago a 30 días."],
        "receipt_total": ["TOTAL", "Total a pagar", "IMPORTE"], "cash": ["EFECTIVO", "TARJETA", "Cambio"],
        "phone": ["Tel.", "Teléfono"], "page": "Página",
        "currency_label": ["Moneda", "Divisa"], "of": ["de fecha", "del"], "nr": ["N.º", "Nº"], "name_label": "Nombre", "address_label": ["Dirección", "Domicilio"], "total_tax": ["Total IVA", "Cuota total"], "country": ["España", "ES"],
    },
    "it": {
        "ship_to": ["Destinazione merce", "Luogo di consegna"], "contact": ["Alla c.a.", "Referente:"], "director": ["Amministratore:"], "email": ["Email", "PEC"],
        "decimal": ",", "thousands": ".",
        "months": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre".split(),
        "invoice": ["FATTURA", "Fattura"], "credit": ["NOTA DI CREDITO"], "order": ["ORDINE DI ACQUISTO", "Ordine"],
        "number": ["Fattura n.", "Numero fattura", "N."], "po_number": ["N. ordine", "Ordine n."],
        "date": ["Data fattura", "Data", "Data emissione"], "due": ["Scadenza", "Data scadenza"],
        "delivery": ["Data consegna"], "ref": ["Vostro ordine", "Riferimento"],
        "buyer": ["Cliente", "Destinatario", "Spett.le"], "seller": ["Fornitore", "Mittente"],
        "vat": ["P. IVA", "Partita IVA", "C.F."], "net": ["Imponibile", "Totale imponibile", "Subtotale"],
        "tax": ["IVA", "Imposta"], "total": ["Totale", "Totale fattura", "TOTALE"],
        "paid": ["Acconto", "Già pagato"], "due_amt": ["Netto a pagare", "Totale da pagare"],
        "cols": ["Descrizione", "Q.tà", "Prezzo", "Importo"], "customer_no": ["Cod. cliente"],
        "thanks": ["Grazie per la fiducia.", "Pagamento a 30 giorni."],
        "receipt_total": ["TOTALE", "Totale EURO", "DA PAGARE"], "cash": ["CONTANTI", "CARTA", "Resto"],
        "phone": ["Tel.", "Telefono"], "page": "Pagina",
        "currency_label": ["Valuta", "Divisa"], "of": ["del"], "nr": ["n.", "N."], "name_label": "Nome", "address_label": ["Indirizzo", "Sede"], "total_tax": ["Totale IVA", "Totale imposta"], "country": ["Italia", "IT"],
    },
    "nl": {
        "ship_to": ["Afleveradres", "Leveradres"], "contact": ["T.a.v.", "Contactpersoon:"], "director": ["Directeur:"], "email": ["E-mail"],
        "decimal": ",", "thousands": ".",
        "months": "januari februari maart april mei juni juli augustus september oktober november december".split(),
        "invoice": ["FACTUUR", "Factuur"], "credit": ["CREDITNOTA", "Creditfactuur"], "order": ["INKOOPORDER", "Bestelling"],
        "number": ["Factuurnummer", "Factuur nr.", "Nr."], "po_number": ["Ordernummer", "Bestelnummer"],
        "date": ["Factuurdatum", "Datum"], "due": ["Vervaldatum", "Te betalen voor"],
        "delivery": ["Leverdatum"], "ref": ["Uw referentie", "Uw bestelling"],
        "buyer": ["Klant", "Factuuradres", "Aan", "Koper"], "seller": ["Leverancier", "Afzender"],
        "vat": ["BTW-nummer", "BTW nr.", "KvK"], "net": ["Subtotaal", "Totaal excl. BTW", "Netto"],
        "tax": ["BTW", "Btw"], "total": ["Totaal", "Totaal incl. BTW", "TOTAAL"],
        "paid": ["Aanbetaling", "Reeds betaald"], "due_amt": ["Te betalen", "Openstaand bedrag"],
        "cols": ["Omschrijving", "Aantal", "Prijs", "Bedrag"], "customer_no": ["Klantnummer"],
        "thanks": ["Bedankt voor uw bestelling.", "Betaling binnen 30 dagen."],
        "receipt_total": ["TOTAAL", "Te betalen", "Totaal"], "cash": ["CONTANT", "PIN", "Wisselgeld"],
        "phone": ["Tel.", "Telefoon"], "page": "Pagina",
        "currency_label": ["Valuta", "Munteenheid"], "of": ["van", "d.d."], "nr": ["nr.", "Nr."], "name_label": "Naam", "address_label": ["Adres"], "total_tax": ["Totaal BTW", "BTW totaal"], "country": ["Nederland", "NL"],
    },
}
LANGS = list(LOCALES)
LANG_WEIGHTS = [4, 3, 2, 1, 1, 1]
CURRENCIES = {"en": ["$", "USD", "£", "GBP", "€", "EUR", "CAD", "AUD"], "de": ["€", "EUR", "CHF"], "fr": ["€", "EUR", "CHF"],
              "es": ["€", "EUR"], "it": ["€", "EUR"], "nl": ["€", "EUR"]}
TAX_RATES: dict[str, list[float]] = {"en": [0, 5, 7.5, 8, 10, 20], "de": [7, 19], "fr": [5.5, 10, 20], "es": [10, 21], "it": [10, 22], "nl": [9, 21]}
LEGAL = {"en": ["Ltd", "Inc.", "LLC", "Corp.", "Co.", "plc"], "de": ["GmbH", "AG", "GmbH & Co. KG", "e.K.", "KG"],
         "fr": ["SARL", "SAS", "SA", "EURL"], "es": ["S.L.", "S.A.", "S.L.U."], "it": ["S.r.l.", "S.p.A.", "S.n.c."],
         "nl": ["B.V.", "N.V.", "V.O.F."]}
NAMES = {"de": "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Hoffmann Schäfer Koch Richter Klein Wolf".split(),
         "fr": "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre".split(),
         "es": "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Ruiz Díaz Moreno".split(),
         "it": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo".split(),
         "nl": "Jansen Visser Smit Meijer Bakker Mulder Bos Vos Peters Hendriks Dekker Brouwer".split(),
         "en": s.LAST}
TRADE = {"de": "Handel Bau Technik Logistik Elektro Service Immobilien Beratung Druck Software Bäckerei Möbel".split(),
         "fr": "Distribution Services Bâtiment Conseil Imprimerie Transports Boulangerie Informatique".split(),
         "es": "Distribuciones Servicios Construcciones Asesoría Transportes Suministros Informática".split(),
         "it": "Servizi Costruzioni Trasporti Forniture Consulenza Informatica Arredamenti".split(),
         "nl": "Techniek Logistiek Bouw Advies Installatie Handel Software".split(),
         "en": s.ORG_B}
STREETS = {"de": ["Hauptstraße", "Bahnhofstr.", "Lindenweg", "Am Markt", "Industriestraße", "Gartenstraße"],
           "fr": ["rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin", "place de la Gare"],
           "es": ["Calle Mayor", "Avenida de la Constitución", "Calle del Sol", "Paseo de Gracia"],
           "it": ["Via Roma", "Via Garibaldi", "Corso Italia", "Piazza Duomo", "Via Dante"],
           "nl": ["Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenlaan", "Marktplein"],
           "en": [f"{a} {b}" for a in s.STREETS[:10] for b in s.STREET_T[:4]]}
CITIES = {"de": ["Berlin", "München", "Hamburg", "Köln", "Frankfurt am Main", "Stuttgart", "Leipzig", "Nürnberg"],
          "fr": ["Paris", "Lyon", "Marseille", "Toulouse", "Bordeaux", "Lille", "Nantes", "Strasbourg"],
          "es": ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga"],
          "it": ["Roma", "Milano", "Torino", "Napoli", "Bologna", "Firenze"],
          "nl": ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Den Haag"],
          "en": s.CITIES}
ITEMS = {"de": "Beratung Wartung Montage Schrauben Kabel Druckerpapier Lizenz Versandkosten Reparatur Miete Fahrtkosten".split(),
         "fr": "Prestation Maintenance Installation Fournitures Licence Transport Réparation Loyer Formation".split(),
         "es": "Servicio Mantenimiento Instalación Material Licencia Transporte Reparación Alquiler".split(),
         "it": "Consulenza Manutenzione Installazione Materiale Licenza Trasporto Riparazione Affitto".split(),
         "nl": "Advies Onderhoud Installatie Materiaal Licentie Verzending Reparatie Huur".split(),
         "en": s.PRODUCTS}
BRANDS = ("Clachan Loxley Turnpike Zenbox Hetzner Norbert Fiducia Merkur Kaufpark Biomarkt Lumen Arcadia Vireo "
          "Quickstop Fairway Bonjour Alpenblick Brightline Kestrel Rivoli Tangerine Obelisk Miramar Sunbeam").split()
# Item-table headers of ERP prints (one line of column names, maybe a second under it): words
# beside the parties' blocks that name no party.
ITEM_HEADS = {"de": ["GTIN Art-Nr-Lieferant Menge VKE/Geb Nettopreis MwSt-% Nettowert", "Pos. Art-Nr. Bezeichnung Menge Einheit Einzelpreis Gesamt",
                     "Art-Nr-Lief. Artikelbezeichnung Menge Preis Betrag", "Pos. Artikel-Nr. Beschreibung Menge ME Preis/ME USt. Netto"],
              "en": ["Item # SKU Description Qty UoM Unit price Tax % Amount", "Pos. Part No. Description Quantity Unit Price Net value",
                     "Line Item code Description Qty Rate Amount"],
              "fr": ["Réf. Désignation Qté Unité PU HT TVA Montant HT", "Code article Désignation Quantité Prix unitaire Rem. Prix HT"],
              "es": ["Ref. Artículo Descripción Cant. Precio Dto. Importe"], "it": ["Cod. art. Descrizione Q.tà U.M. Prezzo Sconto Importo"],
              "nl": ["Art.nr. Omschrijving Aantal Eenheid Prijs BTW Bedrag"]}
ITEM_HEADS_2 = {"de": ["Art-Nr-Kunde Artikelbezeichnung", "EAN Lieferschein-Nr."], "en": ["Customer part no. Description", "EAN"],
                "fr": ["Réf. client", "EAN"], "es": ["Ref. cliente"], "it": ["Cod. cliente"], "nl": ["Klant art.nr."]}
# Keys as users ask them (English, the schema's words), each with its wordings.
ASK = {
    "seller": ["seller name", "seller", "supplier name", "vendor", "supplier", "company", "vendor name", "issuer"],
    "buyer": ["buyer name", "buyer", "customer name", "customer", "bill to", "sold to", "client"],
    "ship_to": ["ship to", "ship to name", "delivery address name", "consignee"],
    "number": ["invoice number", "invoice no", "invoice id", "document number", "receipt no", "number"],
    "date": ["invoice date", "date", "issue date", "date of issue", "document date"],
    "due": ["due date", "payment due date", "pay by"],
    "delivery": ["delivery date", "service date"],
    "ref": ["order reference", "po number", "purchase order", "order number"],
    "seller_vat": ["seller VAT ID", "seller tax id", "vendor VAT number", "supplier VAT"],
    "buyer_vat": ["buyer VAT ID", "customer VAT number", "buyer tax id"],
    "currency": ["currency"],
    "net": ["net total", "total net", "subtotal", "net amount", "total before taxes", "total excluding tax"],
    "tax": ["tax total", "total tax", "tax amount", "VAT amount", "total taxes"],
    "total": ["grand total", "total amount", "total", "invoice total", "total including tax"],
    "due_amt": ["amount due", "balance due", "amount to pay", "total due"],
    "seller_address": ["seller address", "supplier address", "vendor address"],
    "buyer_address": ["buyer address", "billing address", "customer address"],
    "customer_no": ["customer number", "customer id", "account number"],
    "iban": ["iban", "bank account"],
    "phone": ["phone", "supplier phone number", "telephone"],
}


def fmt_amount(v: float, loc: dict, thousands: bool = True) -> str:
    """``1234.5`` -> ``1,234.50`` / ``1.234,50`` / ``1 234,50`` as the locale writes it."""
    neg, v = v < 0, abs(v)
    whole, frac = f"{v:.2f}".split(".")
    if thousands and len(whole) > 3:
        groups: list[str] = []
        while whole:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = loc["thousands"].join(groups)
    return ("-" if neg else "") + whole + loc["decimal"] + frac


def with_currency(amount: str, cur: str, r: random.Random, lang: str) -> str:
    style = r.random()
    if style < 0.35:
        return amount
    if cur in ("$", "£") or (style < 0.55 and lang == "en"):
        return f"{cur}{amount}" if r.random() < 0.7 else f"{cur} {amount}"
    return f"{amount} {cur}"


def date_style(r: random.Random, lang: str) -> str:
    if lang == "en":
        return r.choice(["mdy/", "dmy/", "iso", "long", "short", "dmy.", "dmy-"])
    return r.choice(["dmy.", "dmy.", "dmy/", "iso", "long", "dmy-"])


def fmt_date(r: random.Random, lang: str, y: int, m: int, d: int, style: str | None = None) -> str:
    """A date as the locale prints it, in ``style`` (one document keeps one style)."""
    months = LOCALES[lang]["months"]
    style = style or date_style(r, lang)
    if style == "mdy/":
        return f"{m:02d}/{d:02d}/{y}" if r.random() < 0.7 else f"{m}/{d}/{y}"
    if style == "dmy/":
        return f"{d:02d}/{m:02d}/{y}"
    if style == "dmy.":
        return f"{d:02d}.{m:02d}.{y}" if r.random() < 0.85 else f"{d:02d}.{m:02d}.{y % 100:02d}"
    if style == "dmy-":
        return f"{d:02d}-{m:02d}-{y}"
    if style == "iso":
        return f"{y}-{m:02d}-{d:02d}"
    if style == "long":
        if lang == "en":
            return f"{months[m - 1]} {d}, {y}" if r.random() < 0.5 else f"{d} {months[m - 1]} {y}"
        if lang == "de":
            return f"{d}. {months[m - 1]} {y}"
        if lang == "es":
            return f"{d} de {months[m - 1]} de {y}"
        return f"{d} {months[m - 1]} {y}"
    return f"{d} {months[m - 1][:3].title()} {y}"


@dataclass
class Party:
    name: str
    street: str
    city: str
    vat: str
    phone: str

    @property
    def lines(self) -> list[str]:
        return [self.name, self.street, self.city]


# First names of the documents users bring, beside the generator's short common ones: long,
# old-fashioned or rare ("Liesbeth", "Maybelle"), so a reader does not keep only the surname.
FIRST_NAMES = {"de": "Theobald Liesbeth Hannelore Wolfgang Jürgen Ursula Friedrich Gisela Maximilian Brunhilde".split(),
               "fr": "Aurélien Thibault Camille Amélie Sébastien Gwendoline Marie-Claire Jean-Baptiste Héloïse".split(),
               "es": "Alejandro Guadalupe Rocío Íñigo María José Concepción Maximiliano".split(),
               "it": "Giuseppe Annunziata Gianluca Benedetta Massimiliano Loredana".split(),
               "nl": "Willemijn Joost Femke Sjoerd Geertruida Maarten".split(),
               "en": "Maybelle Brianna Dwayne Marjorie Clifford Theodora Jasper Winifred Ignatius Rosalind".split()}
# Surnames that are also words or joined from two ("Ost", "Sommer", "Meyer-Lüdersdorf").
ODD_LAST = {"de": ["Ost", "Sommer", "Müllerbauer", "Meyer-Lüdersdorf", "Schmidt-Rottluff", "Vogel", "Kaufmann"],
            "en": ["Hartwell", "Lake", "Mill", "Baker", "Young-Smith", "Church", "Best"]}


def _person(r: random.Random, lang: str) -> str:
    first = r.choice(FIRST_NAMES[lang]) if r.random() < 0.35 else r.choice(s.FIRST)
    last = r.choice(ODD_LAST.get(lang, ODD_LAST["en"])) if r.random() < 0.15 else r.choice(NAMES[lang])
    return f"{first} {last}"


# Trade names that read as a phrase, their first words small words a reader may skip: "Au bon
# marché", "Me gusta sabor", "Zur alten Mühle" (the whole phrase is the name).
PHRASES = {"fr": (["Au bon", "Le petit", "La belle", "Chez", "Aux délices du", "Les jardins du", "À la"],
                  ["pressoir", "marché", "olivier", "fournil", "comptoir", "panier", "vigneron"]),
           "es": (["Me gusta", "El buen", "La casa del", "Los amigos del", "Mi"], ["aceite", "sabor", "pan", "mar", "huerto"]),
           "de": (["Zur alten", "Zum goldenen", "Die kleine", "Am alten", "Bei"], ["Mühle", "Löwen", "Backstube", "Markt", "Hafen"]),
           "it": (["Il buon", "La bella", "Da", "Al vecchio"], ["gusto", "forno", "mulino", "mercato"]),
           "nl": (["De gouden", "Het oude", "Bij de", "In de"], ["leeuw", "molen", "hoek", "bakkerij"]),
           "en": (["The Old", "At the", "By the", "Our little", "Me and my", "All about"], ["Mill", "Corner", "Acorn", "Pantry", "Harbour"])}


def phrase_name(r: random.Random, lang: str) -> str:
    """A trade name that reads as a phrase, with its legal form half the time."""
    lead, nouns = PHRASES[lang]
    name = f"{r.choice(lead)} {r.choice(nouns)}"
    return f"{name} {r.choice(LEGAL[lang])}" if r.random() < 0.5 else name


# The parties of sample and test documents (the first ones a user tries) are named after
# their role: "Lieferant GmbH", "MUSTERLIEFERANT GMBH", "Kunden AG Mitte", "Sample Customer
# Inc."; a name that holds a label word ("Kunde", "Lieferant") is still the name. As on those
# documents, the role word is mostly the party's own (the seller a "Lieferant", the buyer a
# "Kunde"): a word a reader may go by, though not always.
ROLE_NAMES = {
    "de": (["Muster", "Beispiel", "Test"], {
        "seller": ["Lieferant", "Verkäufer", "Vermieter", "Händler", "Rechnungssteller"],
        "buyer": ["Kunde", "Kunden", "Käufer", "Mieter", "Empfänger"], "any": ["Firma"]}),
    "en": (["Sample", "Example", "Test", "Demo", "Contoso"], {
        "seller": ["Supplier", "Vendor", "Seller", "Merchant"], "buyer": ["Customer", "Buyer", "Client", "Tenant"],
        "any": ["Company"]}),
    "fr": (["Exemple", "Test", "Démo"], {"seller": ["Fournisseur", "Vendeur"], "buyer": ["Client", "Acheteur", "Locataire"],
                                         "any": ["Société"]}),
    "es": (["Ejemplo", "Prueba", "Demo"], {"seller": ["Proveedor", "Vendedor"], "buyer": ["Cliente", "Comprador"],
                                           "any": ["Empresa"]}),
    "it": (["Esempio", "Prova", "Demo"], {"seller": ["Fornitore", "Venditore"], "buyer": ["Cliente", "Acquirente"],
                                          "any": ["Ditta"]}),
    "nl": (["Voorbeeld", "Test", "Demo"], {"seller": ["Leverancier", "Verkoper"], "buyer": ["Klant", "Koper"],
                                           "any": ["Bedrijf"]}),
}
BRANCH = ["Mitte", "Nord", "Süd", "West", "Ost", "Europe", "International", "Holding", "Services", "Zweigniederlassung"]


def role_name(r: random.Random, lang: str, role: str | None = None) -> str:
    """A sample document's party name made of a role word: "Kunden AG Mitte", "MUSTER-KUNDE GMBH",
    "Beispielmieter GmbH", "Lieferant GmbH", "Sample Customer Inc."; for a ``role`` ("seller",
    "buyer"), mostly one of that role's words."""
    prefixes, words = ROLE_NAMES[lang]
    pool = words[role] if role in words and r.random() < 0.85 else [w for ws in words.values() for w in ws]
    role_word, prefix = r.choice(pool), r.choice(prefixes)
    form = r.random()
    if form < 0.3:
        name = f"{role_word} {r.choice(LEGAL[lang])}"
    elif form < 0.55:
        name = f"{prefix}{role_word.lower()} {r.choice(LEGAL[lang])}" if lang == "de" \
            else f"{prefix} {role_word} {r.choice(LEGAL[lang])}"
    elif form < 0.75:
        name = f"{prefix}-{role_word} {r.choice(LEGAL[lang])}"
    elif form < 0.9:
        name = f"{role_word} {r.choice(LEGAL[lang])} {r.choice(BRANCH)}"
    else:
        name = f"{prefix} {role_word}"
    return name.upper() if r.random() < 0.35 else name


def party(r: random.Random, lang: str, person: bool = False, role: str | None = None) -> Party:
    """A company (or a person) with its address, tax id and phone; ``role`` ("seller", "buyer")
    picks the words of a name made of a role (`role_name`)."""
    if person:
        name = _person(r, lang)
    elif r.random() < 0.12:
        name = role_name(r, lang, role)
    elif r.random() < 0.12:
        name = phrase_name(r, lang)
    else:
        style = r.random()
        base = r.choice(NAMES[lang]) if style < 0.5 else r.choice(s.ORG_A)
        name = f"{base} {r.choice(TRADE[lang])} {r.choice(LEGAL[lang])}"
        if style > 0.9:  # a brand: one or two words, no legal form ("LOGANS", "Au bon moulin")
            name = r.choice([r.choice(BRANDS), f"{r.choice(BRANDS)} {r.choice(TRADE[lang])}", r.choice(NAMES[lang]) + "s"])
        elif r.random() < 0.25:  # the legal form left out
            name = f"{base} {r.choice(TRADE[lang])}"
        if r.random() < 0.3:
            name = name.upper()
    number = r.randint(1, 220)
    street = f"{r.choice(STREETS[lang])} {number}" if lang in ("de", "nl", "es", "it") else f"{number} {r.choice(STREETS[lang])}"
    if lang == "fr":
        street = f"{number}, {r.choice(STREETS[lang])}"
    postcode = {"de": f"{r.randint(10000, 99999)}", "fr": f"{r.randint(10000, 95999)}", "es": f"{r.randint(10000, 52999)}",
                "it": f"{r.randint(10000, 98999)}", "nl": f"{r.randint(1000, 9999)} {r.choice('ABCDEGHJKLMNPRST')}{r.choice('ABDEGHJKLMNPRSTZ')}",
                "en": f"{r.randint(10000, 99999)}"}[lang]
    city = f"{postcode} {r.choice(CITIES[lang])}"
    if lang == "en" and r.random() < 0.5:
        city = f"{r.choice(CITIES['en'])}, {r.choice(['NY', 'CA', 'TX', 'WA', 'MA', 'IL'])} {postcode}"
    country = {"de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL", "en": r.choice(["GB", "US", "IE"])}[lang]
    digits = "".join(str(r.randint(0, 9)) for _ in range(9 if country != "NL" else 9))
    vat = {"FR": f"FR{r.randint(10, 99)}{digits}", "NL": f"NL{digits}B01", "US": f"{digits[:2]}-{digits[2:]}"}.get(country,
                                                                                                            f"{country}{digits}")
    tel = {"de": f"+49 {r.randint(30, 899)} {r.randint(100000, 9999999)}", "fr": f"0{r.randint(1, 5)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
           "en": f"({r.randint(200, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}"}.get(lang, f"+{r.choice([34, 39, 31])} {r.randint(100, 999)} {r.randint(100000, 999999)}")
    return Party(name, street, city, vat, tel)


def _ask(r: random.Random, fields: dict, what: str, value: object) -> None:
    fields[r.choice(ASK[what])] = value


def label_value(c: s.Canvas, x: float, y: float, label: str, value: str, size: int, gap: float,
                 r: random.Random) -> None:
    colon = r.choice([":", "", ":"])
    c.text(x, y, label + colon, size, 1 if r.random() < 0.3 else 0)
    c.text(x + gap, y, value, size)


def _printed_currency(cur: str, amounts: Iterable[str]) -> str | None:
    """The currency as the page shows it: its code or symbol when an amount carries it."""
    return cur if any(cur in a for a in amounts) else None


def _title_line(r: random.Random, loc: dict, title: str, number: str, issued: str) -> str:
    """The title with the number and date in it: "Rechnung Nr. 471102 vom 05.03.2018"."""
    code = f" ({r.choice(['380', '381', '326'])})" if r.random() < 0.3 else ""
    nr = r.choice(loc["nr"])
    return f"{title.title() if r.random() < 0.5 else title}{code} {nr + ' ' if nr else ''}{number} {r.choice(loc['of'])} {issued}"


def _structured_header(c: s.Canvas, r: random.Random, lang: str, seller: Party, buyer: Party, cur: str, y: float,
                       size: int, lh: int, x0: float, number: str, issued: str, due: str, delivery: str,
                       title: str, seller_vat_shown: bool) -> tuple[float, dict[str, str]]:
    """The print of an e-invoice (EN 16931 viewers): the title line with number and date, the
    currency, then a section per party with "Name:", "Anschrift:", number, GLN and tax id rows,
    as a two-column table (values from the page's middle, rows shaded in turn, the section's
    heading on a shaded bar, the name in bold), maybe a remarks section that repeats the
    seller's address: the seller's name shows twice, the buyer's once."""
    loc = LOCALES[lang]
    c.text(x0, y, _title_line(r, loc, title, number, issued), size + 3, 1)
    y += lh * 1.5
    shown = {"number": number, "date": issued}
    code = currency_code(cur)
    table = r.random() < 0.6  # the viewer's table look
    gap = (c.width - x0) * r.uniform(0.35, 0.45) if table else 130 + r.randint(0, 40)
    x1 = c.width - x0
    shade = max(0, c.paper - r.randint(12, 30))

    def bar(yy: float, rows: float = 1) -> None:
        c.draw.rectangle([x0, yy - lh * 0.2, x1, yy + lh * (rows - 0.2)], fill=shade)

    def row(label: str, value: str, n: int, bold: bool = False) -> None:
        nonlocal y
        if table and n % 2:
            bar(y)
        if label:
            c.text(x0 + 10, y, label + r.choice([":", ":", ""]), size)
        c.text(x0 + 10 + gap, y, value, size, 1 if bold else 0)
        y += lh

    rows = [(r.choice(loc["currency_label"]), code)]
    if r.random() < 0.5:
        rows.append((r.choice(loc["delivery"]), delivery))
        shown["delivery"] = delivery
    if r.random() < 0.4:
        rows.append((r.choice(loc["due"]), due))
        shown["due"] = due
    for n, (label, value) in enumerate(rows):
        row(label, value, n)
    shown["currency"] = code
    y += lh * (1.5 if table else 0.5)
    sections = [("seller", seller, seller_vat_shown), ("buyer", buyer, True)]
    if r.random() < 0.3:  # the buyer's section first: the heading says who is who
        sections.reverse()
    for who, p, vat in sections:
        if table:
            c.draw.line([x0, y - lh * 0.4, x1, y - lh * 0.4], fill=c.ink)
            bar(y)
        c.text(x0 + (4 if table else 0), y, r.choice(loc[who]), size + (0 if table else 1), 1)
        y += lh * (1.0 if table else 1.2)
        lines = [(r.choice(["Nummer", "Number", "ID"]), str(r.randint(1000, 999999)))] if r.random() < 0.5 else []
        if r.random() < 0.3:
            lines.append((r.choice(["Globale Nummer", "Global ID", "GLN"]), f"{r.randint(10**12, 10**13 - 1)} (GLN)"))
        lines += [(loc["name_label"], p.name), (r.choice(loc["address_label"]), p.street), ("", p.city)]
        if vat:
            if r.random() < 0.3:
                lines.append(("Steuernummer", f"{r.randint(100, 299)}/{r.randint(100, 999)}/{r.randint(10000, 99999)}"))
            lines.append((r.choice(loc["vat"]), p.vat))
        bold = table and r.random() < 0.6
        for n, (label, value) in enumerate(lines):
            row(label, value, n, bold and value == p.name)
        y += lh * (1.2 if table else 0.6)
    if r.random() < 0.35:  # remarks: the seller's address and register entry, again
        de = lang == "de"
        c.text(x0 + 4, y, r.choice(["Bemerkungen", "Hinweise"] if de else ["Remarks", "Notes"]), size, 1)
        y += lh * 1.3
        small = max(8, size - 3)
        register = f"Handelsregisternummer: HRB {r.randint(100, 99999)}" if de else f"Reg. No. {r.randint(10**5, 10**8)}"
        for line in [seller.name, seller.street, seller.city, r.choice(loc["country"]),
                     f"{r.choice(loc['director'])} {_person(r, lang)}", register]:
            c.text(x0 + 10 + gap * 0.5, y, line, small)
            y += small * 1.3
    return y + lh, shown


def _email(r: random.Random, person: str, p: Party) -> str:
    first, last = person.lower().split()[:2]
    domain = "".join(ch for ch in p.name.split()[0].lower() if ch.isascii() and ch.isalnum()) or "mail"
    return f"{first[0] if r.random() < 0.3 else first}.{last}@{domain}.{r.choice(['com', 'de', 'fr', 'net', 'eu'])}"


def _columns_header(c: s.Canvas, r: random.Random, loc: dict, lang: str, seller: Party, buyer: Party, y: float,
                    size: int, lh: int, x0: float, x1: float, seller_vat_shown: bool
                    ) -> tuple[float, str | None, bool, bool, str | None]:
    """Parties side by side, as ERP prints set them: "Lieferant | Käufer", or the billing address
    beside the delivery address, or one under another under their captions; under each company a contact person, a phone or an e-mail
    (people's names on the page that are not the party asked for). Returns the y below the
    blocks, the seller's address as printed, whether the seller's and the buyer's tax ids are
    printed, and the delivery party's name (None when the page has no delivery block)."""
    seller_block = r.random() < 0.5
    seller_address = None
    if not seller_block or r.random() < 0.4:  # the seller's letterhead on top
        c.text(x0, y, seller.name, size + 4, 1)
        y += lh * 1.4
        seller_address = f"{seller.street} · {seller.city}" if r.random() < 0.5 else f"{seller.street}, {seller.city}"
        c.text(x0, y, seller_address, size - 2)
        y += lh * 1.6
    ship = buyer if r.random() < 0.35 else party(r, lang, person=r.random() < 0.3, role="buyer")
    blocks = [("seller", seller), ("buyer", buyer)] if seller_block else [("buyer", buyer), ("ship_to", ship)]
    if r.random() < 0.25:
        blocks.reverse()
    # Or one under another, each under its caption ("Lieferant", then "Käufer", then the buyer
    # again as "Rechnungsempfänger" and a "Warenempfänger"): the caption says who is who, not
    # the order, and the buyer's name is printed twice.
    stacked = seller_block and r.random() < 0.6
    if stacked:
        if r.random() < 0.4:
            blocks.append(("buyer", buyer))
        if r.random() < 0.5:
            blocks.append(("ship_to", ship))
    xs = [x0, x0 + (x1 - x0) * r.uniform(0.42, 0.55)]
    columns: list[list[str]] = []
    vat_shown = {"seller": False, "buyer": False}
    for who, p in blocks:
        lines = []
        if r.random() < 0.25:
            lines.append(f"GLN {r.randint(10**12, 10**13 - 1)}" if r.random() < 0.5 else f"{r.choice(['Nummer:', 'No.', 'ID:'])} {r.randint(1000, 999999)}")
        lines.append(p.name)
        person = _person(r, lang)
        if r.random() < 0.4:
            lines.append(f"{r.choice(loc['contact'])} {person}" if r.random() < 0.6 else person)
        lines += [p.street, p.city]
        if r.random() < 0.3:
            lines.append(f"{r.choice(loc['phone'])} {p.phone}")
        if r.random() < 0.3:
            mail = _email(r, person, p)
            lines.append(f"{r.choice(loc['email'])}: {mail}" if r.random() < 0.5 else mail)
        if who in vat_shown and (seller_vat_shown if who == "seller" else r.random() < 0.3):
            lines.append(f"{r.choice(loc['vat'])} {p.vat}")
            vat_shown[who] = True
        columns.append(lines)
    captions = [r.choice(loc[who]) + r.choice(["", ":"]) for who, _ in blocks]
    if stacked:
        indent = r.choice([0, 6, 12])
        for caption, col in zip(captions, columns, strict=True):
            c.text(x0, y, caption, size, 1)
            y += lh * 1.1
            for line in col:
                c.text(x0 + indent, y, line, size)
                y += lh
            y += lh * 0.4
    else:
        for x, caption in zip(xs, captions, strict=True):
            c.text(x, y, caption, size, 1)
        y += lh * 1.2
        for i in range(max(len(col) for col in columns)):
            for x, col in zip(xs, columns, strict=True):
                if i < len(col):
                    c.text(x, y, col[i], size)
            y += lh
    if seller_block:
        seller_address = f"{seller.street} {seller.city}"
    has_ship = any(who == "ship_to" for who, _ in blocks)
    return y + lh * 0.8, seller_address, vat_shown["seller"], vat_shown["buyer"], ship.name if has_ship else None


def _items_and_totals(c: s.Canvas, r: random.Random, loc: dict, lang: str, kind: str, cur: str, y: float,
                      size: int, lh: int, x0: float, x1: float) -> tuple[float, dict[str, str]]:
    """The line-item table, then net, tax (one line per rate, or a line per rate and the total
    tax), total and maybe a payment already made and the amount due. Returns the y under them
    and each amount as printed, by what it is ("net", "tax", "total", "due_amt")."""
    cols = [x0, x0 + (x1 - x0) * 0.55, x0 + (x1 - x0) * 0.68]
    heads = loc["cols"]
    erp = r.random() < 0.3  # an ERP's header: article numbers and units ("GTIN Art-Nr-Lieferant Menge ...")
    if erp:
        c.text(x0, y, r.choice(ITEM_HEADS[lang]), size - 1, 1)
        y += lh
        if r.random() < 0.4:
            c.text(x0, y, r.choice(ITEM_HEADS_2[lang]), size - 1)
            y += lh
    else:
        for x, head in zip(cols, heads[:3], strict=True):
            c.text(x, y, head, size, 1)
        c.right(x1, y, heads[3], size, 1)
        y += lh
    c.rule(y, x0, x1)
    y += lh // 3
    net = 0.0
    sign = -1 if kind == "credit" and r.random() < 0.5 else 1
    for _ in range(r.randint(1, 7)):
        q, unit = r.randint(1, 12), s.money(r, 2, 900)
        amount = round(q * unit, 2) * sign
        net += amount
        item = r.choice(ITEMS[lang]) + (f" {r.randint(1, 99)}" if r.random() < 0.3 else "")
        if erp:
            item = f"{r.choice(['', f'{r.randint(1, 30)} '])}{r.choice(['', 'ZS', 'GZ', 'A-', 'K'])}{r.randint(100, 99999)} {item}"
        c.text(cols[0], y, item, size)
        c.text(cols[1], y, str(q), size)
        c.text(cols[2], y, fmt_amount(unit, loc), size)
        c.right(x1, y, fmt_amount(amount, loc), size)
        y += lh
    c.rule(y, x0, x1)
    y += lh // 2
    net = round(net, 2)
    rate = r.choice(TAX_RATES[lang])
    tax = round(net * rate / 100, 2)
    # (rate, net, tax) per rate: two rates on one invoice give a tax line each, then the tax total
    breakdown = [(rate, net, tax)]
    if len(TAX_RATES[lang]) > 1 and rate and r.random() < 0.25:
        other = r.choice([t for t in TAX_RATES[lang] if t != rate])
        part = round(net * r.uniform(0.2, 0.8), 2)
        breakdown = [(rate, net - part, round((net - part) * rate / 100, 2)), (other, part, round(part * other / 100, 2))]
        tax = round(sum(v for _, _, v in breakdown), 2)
    total = round(net + tax, 2)
    paid = round(total * r.choice([0.1, 0.25, 0.5]), 2) if r.random() < 0.2 else 0.0
    due_amt = round(total - paid, 2)
    lx = x0 + (x1 - x0) * 0.5
    rate_txt = (f"{rate:g}".replace(".", loc["decimal"])) + " %" * (lang in ("de", "fr")) + "%" * (lang not in ("de", "fr"))
    rows = [("net", r.choice(loc["net"]), net)]
    if len(breakdown) > 1:
        for rt, _, v in breakdown:
            rows.append(("tax_part", f"{r.choice(loc['tax'])} {rt:g}%".replace(".", loc["decimal"]), v))
        rows.append(("tax", r.choice(loc["total_tax"]), tax))
    elif rate or r.random() < 0.5:
        rows.append(("tax", f"{r.choice(loc['tax'])} {rate_txt}" if r.random() < 0.8 else r.choice(loc["tax"]), tax))
    rows.append(("total", r.choice(loc["total"]), total))
    if paid:
        rows += [("paid", r.choice(loc["paid"]), -paid), ("due_amt", r.choice(loc["due_amt"]), due_amt)]
    elif r.random() < 0.3:
        rows.append(("due_amt", r.choice(loc["due_amt"]), due_amt))
    money_shown: dict[str, str] = {}
    if not paid and r.random() < 0.3:
        # the totals as an ERP's tax summary table: a column each for net, tax, rate and gross,
        # a row per rate, then the sums row (its net, tax and gross are the invoice's)
        heads = [r.choice(words) for words in TOTALS_TABLE[lang]]
        xs = [x0 + (x1 - x0) * f for f in (0.32, 0.52, 0.68)] + [x1]
        for x, head in zip(xs, heads, strict=True):
            c.right(x, y, head, size - 1, 1)
        y += lh
        if len(breakdown) > 1 or r.random() < 0.5:
            for p_rate, p_net, p_tax in breakdown:
                cells = [fmt_amount(p_net, loc), fmt_amount(p_tax, loc), f"{p_rate:g}".replace(".", loc["decimal"]),
                         fmt_amount(p_net + p_tax, loc)]
                for x, cell in zip(xs, cells, strict=True):
                    c.right(x, y, cell, size - 1)
                y += lh
        sums = [fmt_amount(net, loc), fmt_amount(tax, loc), r.choice([currency_code(cur), ""]), fmt_amount(total, loc)]
        for x, cell in zip(xs, sums, strict=True):
            if cell:
                c.right(x, y, cell, size - 1, 1)
        money_shown.update(net=sums[0], tax=sums[1], total=sums[3])
        y += lh
        rows = rows[-1:] if rows[-1][0] == "due_amt" else []
    for what, label, v in rows:
        text = with_currency(fmt_amount(v, loc), cur, r, lang)
        bold = 1 if what in ("total", "due_amt") else 0
        c.text(lx, y, label, size, bold)
        c.right(x1, y, text, size, bold)
        money_shown[what] = text
        y += lh
    return y, money_shown


# The column heads of a tax summary table: net, tax, rate, gross.
TOTALS_TABLE = {"de": (["Warenwert", "Nettobetrag", "Netto"], ["MwSt-Betrag", "USt.-Betrag", "Steuer"], ["MwSt-%", "USt.-%", "Satz"],
                       ["Endbetrag", "Bruttobetrag", "Brutto"]),
                "en": (["Net amount", "Net", "Taxable"], ["Tax amount", "VAT", "Tax"], ["Rate", "VAT %", "Tax %"], ["Gross", "Total", "Amount"]),
                "fr": (["Base HT", "Montant HT"], ["Montant TVA", "TVA"], ["Taux", "Taux TVA"], ["Total TTC", "Montant TTC"]),
                "es": (["Base imponible"], ["Cuota IVA"], ["% IVA", "Tipo"], ["Total"]),
                "it": (["Imponibile"], ["Imposta"], ["Aliquota", "% IVA"], ["Totale"]),
                "nl": (["Netto", "Bedrag excl."], ["BTW-bedrag", "BTW"], ["Tarief", "BTW %"], ["Totaal", "Bruto"])}
# Payment terms with the due date in a sentence ({n} days, {due} date, {p} per cent, {early}
# the cash-discount date), and the heading and columns of the e-invoice prints' terms table.
TERMS = {"de": (["Zahlbar innerhalb {n} Tagen netto bis {due}", "Zahlbar ohne Abschlag bis {due}", "Fällig am {due} ohne Abzug"],
                ["{p}% Skonto innerhalb 10 Tagen bis {early}", "Zahlbar mit {p}% Skonto bis {early}"],
                ["Zahlungsbedingungen", "Beschreibung Fälligkeit Teilzahlung"]),
         "en": (["Payment due within {n} days, by {due}", "Net {n}: please pay by {due}", "Please remit payment by {due}"],
                ["{p}% discount if paid by {early}", "Early payment discount {p}% until {early}"],
                ["Payment terms", "Description Due date Instalment"]),
         "fr": (["Paiement à {n} jours, soit le {due}", "À régler au plus tard le {due}"],
                ["Escompte de {p}% pour paiement avant le {early}"], ["Conditions de paiement", "Description Échéance Montant"]),
         "es": (["Pago a {n} días, vencimiento {due}", "A pagar antes del {due}"], ["Descuento del {p}% si se paga antes del {early}"],
                ["Condiciones de pago", "Descripción Vencimiento Importe"]),
         "it": (["Pagamento a {n} giorni, scadenza {due}", "Da pagare entro il {due}"], ["Sconto {p}% entro il {early}"],
                ["Condizioni di pagamento", "Descrizione Scadenza Importo"]),
         "nl": (["Te betalen binnen {n} dagen, uiterlijk {due}", "Betaling voor {due}"], ["{p}% korting bij betaling voor {early}"],
                ["Betalingsvoorwaarden", "Omschrijving Vervaldatum Bedrag"])}


def _payment_terms(c: s.Canvas, r: random.Random, lang: str, due: str, early: str, y: float, size: int, lh: int,
                   x0: float) -> float:
    """The payment terms under the totals: a sentence holding the due date (and maybe a
    cash-discount date before it), or the terms table of an e-invoice print with the due date
    in its column. Returns the y under them."""
    sentences, discounts, (heading, columns) = TERMS[lang]
    words = {"n": r.choice([10, 14, 30, 45, 60]), "due": due, "p": r.choice([2, 3]), "early": early}
    if r.random() < 0.3:  # the table: heading, column names, a row with the date under "Fälligkeit"
        c.text(x0, y, heading, size, 1)
        y += lh
        c.text(x0, y, columns, size - 1, 1)
        y += lh
        c.text(x0, y, r.choice(sentences).format(**{**words, "due": ""}).split(",")[0].strip(), size - 1)
        c.text(x0 + c.length(columns, size - 1, 1) * 0.45, y + lh, due, size - 1)
        return y + lh * 2.5
    line = r.choice(sentences).format(**words)
    if r.random() < 0.4:
        line += ", " + r.choice(discounts).format(**words)
    if r.random() < 0.4:
        line = f"{heading}: {line}"
    c.text(x0, y, line, size - 1)
    return y + lh * 1.5


def invoice(c: s.Canvas, r: random.Random) -> s.Fields:
    """An invoice, credit note or purchase order in one of six languages."""
    lang = r.choices(LANGS, LANG_WEIGHTS)[0]
    loc = LOCALES[lang]
    kind = r.choices(["invoice", "credit", "order"], [8, 1, 1])[0]
    size = r.randint(10, 14)
    lh = int(size * r.uniform(1.35, 1.7))
    x0, x1 = r.randint(30, 60), c.width - r.randint(30, 60)
    seller, buyer = party(r, lang, role="seller"), party(r, lang, person=r.random() < 0.2, role="buyer")
    cur = r.choice(CURRENCIES[lang])
    y0 = r.randint(2016, 2026)
    m, d = r.randint(1, 12), r.randint(1, 28)
    style = date_style(r, lang)  # the due and delivery dates are printed like the invoice date
    issued = fmt_date(r, lang, y0, m, d, style)
    dm = (m + r.choice([0, 1])) % 12 + 1
    due_day = datetime.date(y0 + (dm < m), dm, r.randint(1, 28))
    due = fmt_date(r, lang, due_day.year, due_day.month, due_day.day, style)
    early = due_day - datetime.timedelta(days=r.randint(7, 20))  # a cash-discount date before it
    early_by = fmt_date(r, lang, early.year, early.month, early.day, style)
    delivery = fmt_date(r, lang, y0, m, max(1, d - r.randint(0, 10)), style)
    prefix = r.choice(["", "INV-", "RE-", "F", "2024-", "R", "FA-", "A"])
    number = f"{prefix}{r.randint(100, 99999999)}" if r.random() < 0.8 else f"{r.randint(1000, 9999)}/{r.randint(10, 99)}"
    ref = r.choice(["PO", "B", "", "ORD-"]) + str(r.randint(1000, 999999))
    customer_no = str(r.randint(10000, 999999))
    title = r.choice(loc[{"invoice": "invoice", "credit": "credit", "order": "order"}[kind]])
    fields: s.Fields = {}

    y: float = r.randint(25, 55)
    # Real invoices do not always start with the seller: a banner, a page number, a website or
    # the title may come first (the seller is not "the first words on the page")
    if r.random() < 0.35:
        above = r.choice([f"{r.choice(BANNERS)}", f"{loc['page']} 1 / {r.randint(1, 3)}", title,
                          f"www.{seller.name.split()[0].lower()}.{r.choice(['com', 'de', 'fr', 'eu'])}",
                          f"{buyer.name} · {buyer.street}"])
        c.text(x0 if r.random() < 0.6 else x1 - c.length(above, size - 1), y, above, size - 1)
        y += lh * 1.3
    # Layouts: a letterhead (name, then address lines), the letterhead on one line with the
    # registration numbers under it, the structured print of an e-invoice (sections with
    # "Name:" and "Anschrift:" fields, the number and date in the title line), or the parties
    # side by side (or stacked under their captions) with contact people under them.
    layout = r.choices(["letterhead", "oneline", "structured", "columns"], [5, 2, 5, 4])[0]
    country = r.choice(loc["country"])
    seller_vat_shown = r.random() < 0.8
    header_vat = False
    title_line = layout == "structured" or r.random() < 0.2
    seller_address: str | None = None
    buyer_vat_shown = False
    ship_to: str | None = None
    if layout == "structured":
        y, shown = _structured_header(c, r, lang, seller, buyer, cur, y, size, lh, x0, number, issued, due,
                                      delivery, title, seller_vat_shown)
        seller_address, buyer_vat_shown = f"{seller.street} {seller.city}", True
    else:
        if layout == "columns":
            y, seller_address, header_vat, buyer_vat_shown, ship_to = _columns_header(
                c, r, loc, lang, seller, buyer, y, size, lh, x0, x1, seller_vat_shown)
            if not title_line:
                c.text(x0, y, title, size + 6, 1)
                y += lh * 1.8
            by = y
        elif layout == "oneline":
            # "Lieferant GmbH - Hauptstraße 5 - ...", or with no mark at all between the name and
            # the street: "Au bon moulin SARL 1242 chemin de l'olive 84340 Malaucène France"
            sep = r.choice([" - ", " - ", " · ", ", ", " | ", " "])
            line = sep.join([seller.name, seller.street, seller.city, country])
            c.text(x0, y, line, size - 1, 1 if r.random() < 0.3 else 0)
            y += lh
            extra = [f"{r.choice(loc['phone'])} {seller.phone}", f"www.{seller.name.split()[0].lower()}.com"]
            c.text(x0, y, " - ".join(extra[: r.randint(1, 2)]), size - 2)
            y += lh
            if seller_vat_shown:
                reg = f"{r.choice(loc['vat'])} : {seller.vat} - {r.choice(['SIRET', 'HRB', 'Reg. No.', 'KvK'])} : {r.randint(10**7, 10**10)}"
                c.text(x0, y, reg, size - 2)
                header_vat = True
                y += lh
            seller_address = f"{seller.street}, {seller.city}"
            hx: float = x0
            header_right = False
        else:
            header_right = r.random() < 0.4
            hx = x1 - c.length(seller.name, size + 4, 1) if header_right else x0
            c.text(hx, y, seller.name, size + 4, 1)
            y += lh * 1.4
        if layout == "letterhead" and r.random() < 0.7:
            line = f"{seller.street} · {seller.city}" if r.random() < 0.5 else f"{seller.street}, {seller.city}"
            c.text(hx if not header_right else x1 - c.length(line, size - 2), y, line, size - 2)
            seller_address = line
            y += lh
        if layout == "letterhead" and r.random() < 0.5:
            c.text(hx if not header_right else x1 - c.length(seller.phone, size - 2) - 40, y,
                   f"{r.choice(loc['phone'])} {seller.phone}", size - 2)
            y += lh
        if layout != "columns":
            y += lh
            # The buyer's block (left) and the meta block (right).
            by = y
            if r.random() < 0.3:  # the sender's line above the address window
                c.text(x0, y, f"{seller.name} · {seller.street} · {seller.city}", size - 4)
                y += lh * 0.8
            if r.random() < 0.6:
                c.text(x0, y, r.choice(loc["buyer"]) + r.choice([":", ""]), size, 1)
                y += lh
            lines = buyer.lines
            if r.random() < 0.25:  # a contact person under the company: a name that is not the buyer's
                lines = [lines[0], f"{r.choice(loc['contact'])} {_person(r, lang)}", *lines[1:]]
            for line in lines:
                c.text(x0, y, line, size)
                y += lh
            buyer_vat_shown = r.random() < 0.3
            if buyer_vat_shown:
                c.text(x0, y, f"{r.choice(loc['vat'])} {buyer.vat}", size - 1)
                y += lh
        if title_line:  # "Rechnung Nr. 471102 vom 05.03.2018", under the two blocks
            meta = []
        else:
            if layout != "columns":
                c.text(x0 + (x1 - x0) * 0.55 if r.random() < 0.5 else x0, max(y, by) + lh * 0.5, title, size + 6, 1)
            meta = [("number", loc["number"], number), ("date", loc["date"], issued)]
        if r.random() < 0.6 and kind != "order":
            meta.append(("due", loc["due"], due))
        if r.random() < 0.4:
            meta.append(("delivery", loc["delivery"], delivery))
        if r.random() < 0.5:
            meta.append(("ref", loc["ref"] if kind != "order" else loc["po_number"], ref))
        if r.random() < 0.4:
            meta.append(("customer_no", loc["customer_no"], customer_no))
        r.shuffle(meta)
        my = by
        mx = x0 if layout == "columns" and r.random() < 0.5 else x0 + (x1 - x0) * r.uniform(0.45, 0.55)
        chosen = [(what, r.choice(labels), value) for what, labels, value in meta]
        gap = max([c.length(label + ":", size, 1) for _, label, _ in chosen] + [0]) + 12
        shown = {"number": number, "date": issued} if title_line else {}
        for what, label, value in chosen:
            label_value(c, mx, my, label, value, size, gap, r)
            shown[what] = value
            my += lh
        y = max(y, my) + lh * 0.8
        if title_line:
            c.text(x0, y, _title_line(r, loc, title, number, issued), size + 3, 1)
            y += lh
        y += lh * 1.4
    if layout == "structured" and r.random() < 0.35:
        # the viewer's first page of two: the parties fill it, the items and totals are on
        # page 2, which this page does not show (asked, they are null here)
        money_shown: dict[str, str] = {}
        c.right(x1, c.height - lh * 1.5, f"{loc['page']} 1 {dict(de='von', en='of').get(lang, '/')} 2", size - 2)
    else:
        y, money_shown = _items_and_totals(c, r, loc, lang, kind, cur, y, size, lh, x0, x1)
    y += lh
    if money_shown and kind != "order" and r.random() < 0.5:
        # the due date in the payment terms, maybe beside an earlier cash-discount date:
        # "Zahlbar innerhalb 30 Tagen netto bis 04.07.2013, 3% Skonto innerhalb 10 Tagen bis 15.06.2013"
        y = _payment_terms(c, r, lang, due, early_by, y, size, lh, x0)
        shown["due"] = due
    if r.random() < 0.6:
        c.text(x0, y, r.choice(loc["thanks"]), size - 1)
        y += lh * 1.5
    if r.random() < 0.08:  # a watermark up the left margin, its letters among the page's lines
        mark = r.choice(["ZUGFeRD COMFORT Beispiel", "SAMPLE DOCUMENT", "MUSTERRECHNUNG", "SPECIMEN", "COPY - KOPIE"])
        c.vertical(max(4, x0 - 25), r.uniform(c.height * 0.2, c.height * 0.4), mark, max(8, size - 1))
    # Footer: the seller's registration and bank details (more numbers to tell apart).
    iban = f"{seller.vat[:2] if seller.vat[:2].isalpha() else 'GB'}{r.randint(10, 99)} {r.randint(1000, 9999)} {r.randint(1000, 9999)} {r.randint(1000, 9999)} {r.randint(10, 99)}"
    foot = []
    if seller_vat_shown and not header_vat:
        foot.append(f"{r.choice(loc['vat'])} {seller.vat}")
    if r.random() < 0.6:
        foot.append(f"IBAN {iban}")
    if r.random() < 0.5:
        foot.append(seller.name)
    if r.random() < 0.3:  # the managing director or account holder: a person, not the seller
        foot.append(f"{r.choice(loc['director'])} {_person(r, lang)}")
    fy = max(y, c.height - lh * (len(foot) + 2))
    for line in foot:
        c.text(x0, fy, line, size - 2)
        fy += lh

    _ask(r, fields, "seller", seller.name)
    _ask(r, fields, "buyer", buyer.name)
    if (ship_to or r.random() < 0.05) and r.random() < 0.3:
        _ask(r, fields, "ship_to", ship_to)
    _ask(r, fields, "number", number if "number" in shown else None)
    _ask(r, fields, "date", issued)
    for what in ("due", "delivery", "ref", "customer_no"):
        if what in shown or r.random() < 0.4:
            _ask(r, fields, what, shown.get(what))
    if r.random() < 0.7:
        _ask(r, fields, "seller_vat", seller.vat if seller_vat_shown else None)
    if r.random() < 0.4:
        _ask(r, fields, "buyer_vat", buyer.vat if buyer_vat_shown else None)
    for what in ("net", "tax", "total", "due_amt"):
        amount = money_shown.get(what)
        if what == "due_amt" and amount is None and kind != "order":  # nothing paid before: the total is due
            amount = money_shown.get("total")
        if amount is not None or r.random() < 0.3:
            _ask(r, fields, what, amount)
    if r.random() < 0.3:
        _ask(r, fields, "seller_address", seller_address)
    if r.random() < 0.3:
        _ask(r, fields, "buyer_address", f"{buyer.street} {buyer.city}")
    if r.random() < 0.2:
        _ask(r, fields, "iban", iban if any("IBAN" in f for f in foot) else None)
    if "currency" in shown or r.random() < 0.35:
        _ask(r, fields, "currency", shown.get("currency") or _printed_currency(cur, money_shown.values()))
    fields[r.choice(["tips", "table number", "cashier name", "shipping tracking number", "discount"])] = None
    return fields


def receipt(c: s.Canvas, r: random.Random) -> s.Fields:
    """A till receipt in one of six languages: store, address, date and time, items, totals."""
    lang = r.choices(LANGS, LANG_WEIGHTS)[0]
    loc = LOCALES[lang]
    size = r.randint(12, 17)
    lh = int(size * r.uniform(1.25, 1.6))
    mid, x0, x1 = c.width / 2, r.randint(15, 45), c.width - r.randint(15, 45)
    store = party(r, lang, role="seller")
    cur = r.choice(CURRENCIES[lang])
    dt = fmt_date(r, lang, r.randint(2016, 2026), r.randint(1, 12), r.randint(1, 28))
    tm = f"{r.randint(6, 23):02d}:{r.randint(0, 59):02d}" + (f":{r.randint(0, 59):02d}" if r.random() < 0.4 else "")
    y: float = r.randint(15, 50)
    phone_line = f"{r.choice(loc['phone'])} {store.phone}"
    phone_shown = False
    for line in [store.name, store.street, store.city, phone_line]:
        if line != store.name and r.random() < 0.15:
            continue
        phone_shown = phone_shown or line == phone_line
        c.text(mid - c.length(line, size + 1) / 2, y, line, size + 1, 1 if line == store.name else 0)
        y += lh
    y += lh // 2
    if r.random() < 0.5:
        c.text(x0, y, dt, size)
        c.right(x1, y, tm, size)
    else:
        c.text(x0, y, f"{dt} {tm}", size)
    y += lh
    c.rule(y, x0, x1, dashed=True)
    y += lh // 2
    total = 0.0
    for _ in range(r.randint(1, 9)):
        q, unit = r.randint(1, 4), s.money(r, 0.3, 40)
        amount = round(q * unit, 2)
        total += amount
        name = r.choice(ITEMS[lang] + s.PRODUCTS)
        c.text(x0, y, name if q == 1 else f"{q} x {name}", size)
        c.right(x1, y, fmt_amount(amount, loc), size)
        y += lh
    total = round(total, 2)
    rate = r.choice(TAX_RATES[lang])
    tax = round(total - total / (1 + rate / 100), 2)
    c.rule(y, x0, x1, dashed=True)
    y += lh // 2
    money: dict[str, str] = {}
    if r.random() < 0.4:  # subtotal, tax (and a tip) above the total: the till adds them up
        subtotal = total
        tax = round(subtotal * rate / 100, 2)
        tip = round(subtotal * r.choice([0.1, 0.15, 0.2]), 2) if lang == "en" and r.random() < 0.3 else 0.0
        total = round(subtotal + tax + tip, 2)
        rows = [("net", r.choice(["Subtotal", "Sub Total", "Net"] if lang == "en" else loc["net"]), subtotal),
                ("tax", f"{r.choice(loc['tax'])} {rate:g}%", tax)] + [("tip", r.choice(["Tip", "Gratuity"]), tip)] * bool(tip)
        for what, label, v in rows:
            money[what] = fmt_amount(v, loc)
            c.text(x0, y, label, size)
            c.right(x1, y, money[what], size)
            y += lh
    total_txt = with_currency(fmt_amount(total, loc), cur, r, lang)
    c.text(x0, y, r.choice(loc["receipt_total"]), size + 2, 1)
    c.right(x1, y, total_txt, size + 2, 1)
    y += lh * 1.4
    given = round(total + r.choice([0, 0.5, 1, 5, 10, 20]), 2)
    c.text(x0, y, r.choice(loc["cash"]), size)
    c.right(x1, y, fmt_amount(given, loc), size)
    y += lh
    if rate and "tax" not in money:
        money["tax"] = fmt_amount(tax, loc)
        c.text(x0, y, f"{r.choice(loc['tax'])} {rate:g}%", size - 1)
        c.right(x1, y, money["tax"], size - 1)
        y += lh
    number = r.choice([f"{r.randint(1, 9999):04d}", f"{r.randint(10, 99)}/{r.randint(1000, 9999)}", str(r.randint(10**5, 10**8))])
    number_shown = r.random() < 0.5
    if number_shown:
        c.text(x0, y + lh, f"Bon {number}" if lang != "en" else f"{r.choice(['Receipt #', 'Check #', 'Trans. '])}{number}", size - 1)
    fields: s.Fields = {}
    fields[r.choice(["store name", "supplier name", "company", "merchant", "supplier", "merchant name"])] = store.name
    fields[r.choice(["date", "purchase date", "receipt date"])] = dt
    fields[r.choice(["time", "purchase time"])] = tm
    fields[r.choice(["total", "total amount", "amount paid", "grand total"])] = total_txt
    if "tax" in money or r.random() < 0.5:
        fields[r.choice(["tax", "total tax", "VAT amount"])] = money.get("tax")
    if "net" in money or r.random() < 0.2:
        fields[r.choice(["total net", "subtotal", "net amount"])] = money.get("net")
    if "tip" in money:
        fields[r.choice(["tip", "tips", "gratuity"])] = money["tip"]
    if number_shown or r.random() < 0.2:
        fields[r.choice(["receipt number", "receipt no", "transaction number"])] = number if number_shown else None
    if r.random() < 0.4:
        fields[r.choice(["phone", "supplier phone number", "store phone"])] = store.phone if phone_shown else None
    if r.random() < 0.4:
        fields[r.choice(["address", "store address", "supplier address"])] = f"{store.street} {store.city}"
    absent = ["due date", "buyer name", "seller VAT ID", "table number"] + ["tips", "tip"] * ("tip" not in money)
    fields[r.choice(absent)] = None
    return fields


# Lines printed above a letterhead on real invoices: test-corpus banners, copies, slogans.
BANNERS = ["Beispiel-Rechnungen für ZUGFeRD", "SAMPLE INVOICE - NOT FOR PAYMENT", "COPY", "ORIGINAL", "Duplicate",
           "Exemple de facture", "Factura de ejemplo", "Muster", "Powered by Billing Software 4.2",
           "Quality since 1987", "Your partner for office supplies", "Project Statement", "Statement of account"]
