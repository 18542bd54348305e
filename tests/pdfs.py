"""Tiny PDFs built by hand for tests: a born-digital page with a text layer (Helvetica), and
helpers for scanned (image-only) and password-protected PDFs."""

from __future__ import annotations

from pathlib import Path


def text_pdf(path: Path, lines_per_page: list[list[str]], width: int = 400, height: int = 300) -> Path:
    """Write a PDF whose pages draw ``lines`` in Helvetica 14 pt, one line every 20 pt."""
    objects: list[bytes] = []
    n_pages = len(lines_per_page)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, lines in enumerate(lines_per_page):
        ops = ["BT", "/F1 14 Tf"]
        for j, line in enumerate(lines):
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"1 0 0 1 40 {height - 40 - 20 * j} Tm ({esc}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return _write(path, objects)


def _write(path: Path, objects: list[bytes]) -> Path:
    """Number the objects from 1 (object 1 is the catalog), add the cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{k} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def encrypted_pdf(src: Path, dst: Path, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(src)).pages:
        writer.add_page(page)
    writer.encrypt(password)
    with open(dst, "wb") as f:
        writer.write(f)
    return dst


def form_pdf(path: Path, label: str, fields: list[tuple[str, str, tuple[int, int, int, int]]],
             width: int = 400, height: int = 300) -> Path:
    """A one-page PDF whose text layer is only ``label`` and whose values live in AcroForm
    text fields (name, value, rect in points): a filled-in form, as tax forms are."""
    n = len(fields)
    annots = " ".join(f"{6 + i} 0 R" for i in range(n))
    stream = f"BT /F1 12 Tf 1 0 0 1 20 {height - 30} Tm ({label}) Tj ET".encode()
    objects = [
        f"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{annots}] >> >>".encode(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Resources << /Font << /F1 5 0 R >> >> "
        f"/Contents 4 0 R /Annots [{annots}] >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for name, value, rect in fields:
        objects.append(f"<< /Type /Annot /Subtype /Widget /FT /Tx /T ({name}) /V ({value}) "
                       f"/Rect [{' '.join(map(str, rect))}] /P 3 0 R /DA (/F1 10 Tf 0 g) >>".encode())
    return _write(path, objects)
