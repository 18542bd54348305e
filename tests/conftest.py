"""Shared fixtures: a tiny model of the real architecture, the real tokenizer, rendered pages
and tiny dataset folders. Nothing here reads ../shared/data or downloads anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from docsprint.data.render import SAMPLE_FIELDS, render_lines, render_receipt
from docsprint.io.document import Page
from docsprint.models.checkpoint import TOKENIZER_FILE, load_tokenizer, minilm_dir, save_pretrained
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel


def tiny_config(**kw) -> ModelConfig:
    base = dict(hidden_size=48, num_layers=2, num_heads=4, intermediate_size=64, image_size=32,
                patch_size=16, max_keys=8, max_slots=16, default_slots=8, dropout=0.0,
                slot_budgets={"total": 6, "date": 8, "company": 12, "address": 16})
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="session")
def tok():
    return load_tokenizer(minilm_dir() / TOKENIZER_FILE)


@pytest.fixture()
def tiny_model() -> DocsprintModel:
    torch.manual_seed(0)
    return DocsprintModel(tiny_config()).eval()


@pytest.fixture()
def tiny_checkpoint(tmp_path, tiny_model) -> Path:
    path = tmp_path / "tiny-ckpt"
    save_pretrained(tiny_model, path, minilm_dir() / TOKENIZER_FILE)
    return path


@pytest.fixture(scope="session")
def receipt_page() -> Page:
    return render_receipt(SAMPLE_FIELDS, seed=0)


SHOPS = ["ACME MART", "KEDAI ALI", "TOKO BARU", "CAFE UNO", "PASAR JAYA", "MINI STOP"]
STREETS = ["1 JALAN API", "22 LORONG 3", "5 MAIN ROAD", "9 JALAN BATU", "14 TAMAN", "3 PARK LANE"]


def make_sroie_folder(root: Path, n: int = 3, short: bool = False) -> Path:
    """A folder laid out like ../shared/data/sroie with ``n`` rendered train and test receipts.

    ``short`` receipts have four lines (one per key): quick to learn for a tiny model.
    """
    for split in ("train", "test"):
        for sub in ("images", "boxes", "keys"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            if short:
                fields = {"company": SHOPS[i % 6], "date": f"{i + 10}/02/2019",
                          "address": STREETS[i % 6], "total": f"{10 + i}.50"}
                page = render_lines([fields["company"], fields["address"], "DATE " + fields["date"],
                                     "TOTAL " + fields["total"]], width=300)
            else:
                fields = dict(SAMPLE_FIELDS, total=f"{10 + i}.50", date=f"0{i + 1}/02/2019")
                page = render_receipt(fields, seed=i)
            page.image.save(root / split / "images" / f"{i:03d}.jpg")
            # SROIE gives OCR *lines*: join each rendered row's words into one line box.
            rows: dict[float, list] = {}
            for w in page.words:
                rows.setdefault(w.box[1], []).append(w)
            lines = []
            for ws in rows.values():
                x0, y0 = min(w.box[0] for w in ws), min(w.box[1] for w in ws)
                x1, y1 = max(w.box[2] for w in ws), max(w.box[3] for w in ws)
                text = " ".join(w.text for w in ws)
                lines.append(f"{x0:.0f},{y0:.0f},{x1:.0f},{y0:.0f},{x1:.0f},{y1:.0f},{x0:.0f},{y1:.0f},{text}")
            (root / split / "boxes" / f"{i:03d}.csv").write_text("\n".join(lines) + "\n")
            (root / split / "keys" / f"{i:03d}.json").write_text(json.dumps(fields))
    return root


FORM_NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Emmy Noether", "Kurt Godel", "Ida Rhodes"]


def make_funsd_folder(root: Path, n: int = 3) -> Path:
    """A folder laid out like ../shared/data/funsd: ``n`` rendered forms per split, each with a
    header and three questions answered on their line, annotated as FUNSD entities."""
    for split in ("training_data", "testing_data"):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "annotations").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pairs = [("Name:", FORM_NAMES[i % 6]), ("Date:", f"{i + 10}/03/98"), ("Phone:", f"555-01{i:02d}")]
            page = render_lines(["REQUEST FORM"] + [f"{q} {a}" for q, a in pairs], width=360)
            page.image.save(root / split / "images" / f"f{i}.png")
            words = [{"text": w.text, "box": [round(c) for c in w.box]} for w in page.words]
            form: list[dict] = [{"id": 0, "label": "header", "text": "REQUEST FORM", "words": words[:2], "linking": []}]
            at = 2
            for q, a in pairs:
                qid, aid, na = len(form), len(form) + 1, len(a.split())
                form.append({"id": qid, "label": "question", "text": q, "words": words[at : at + 1],
                             "linking": [[qid, aid]]})
                form.append({"id": aid, "label": "answer", "text": a, "words": words[at + 1 : at + 1 + na],
                             "linking": [[qid, aid]]})
                at += 1 + na
            (root / split / "annotations" / f"f{i}.json").write_text(json.dumps({"form": form}))
    return root


@pytest.fixture()
def sroie_folder(tmp_path) -> Path:
    return make_sroie_folder(tmp_path / "sroie")
