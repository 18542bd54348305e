"""Training windows encoded once and kept on disk, so that later runs (and every resumed run)
read arrays instead of decoding page images and tokenising pages again.

A cache folder ``CACHE_DIR/NAME-KEY/`` holds one dataset split, encoded with one tokenizer,
window size and thumbnail size (together: KEY)::

    pieces.npy   (N, 8) int32, memory-mapped: id, x0, y0, x1, y1, word, char start, char end
    windows.npy  (W, 3) int64: first piece, end piece, thumbnail row (-1: a page without image)
    images.npy   (P, S, S, 3) uint8, memory-mapped
    meta.json    per document: id, window rows, each window's fields, the windows showing a value;
                 and the fingerprint of the data folder it was built from

`pack_store` shrinks a folder for a trip (about 8x: pieces column by column through xz, exact;
thumbnails as JPEG, lossy; meta through xz); `cached` unpacks it on first use.

The folder is written under a temporary name and renamed into place. A cache whose data
folder has changed since (files added, removed, resized or touched) is rebuilt; one whose data
folder is not on this machine (a packed cache sent to a GPU machine) is used as it is.

>>> store = cached(Path("runs/cache"), "sroie-train", {"tokenizer": "..."}, root, build)  # doctest: +SKIP
>>> store.doc_tokens(0), store.image(0)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from docsprint.data.encode import DocTokens

CACHE_VERSION = 1


@dataclass
class CachedWindow:
    """What a builder gives for one window: its pieces, its page's thumbnail, its fields."""

    doc: DocTokens
    image: np.ndarray | None  # (S, S, 3) uint8; windows of one page share the same array
    fields: dict


@dataclass
class CachedDoc:
    id: str
    windows: list[int]  # rows of windows.npy
    fields: list[dict]  # per window
    positive: list[int]  # positions in ``windows`` that show a value


class WindowStore:
    """A cache folder, opened: pieces and thumbnails memory-mapped, documents in a list."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pieces = np.load(folder / "pieces.npy", mmap_mode="r")
        self.table = np.load(folder / "windows.npy")
        self.images = np.load(folder / "images.npy", mmap_mode="r")
        meta = json.loads((folder / "meta.json").read_text())
        self.docs = [CachedDoc(**d) for d in meta["docs"]]
        self.fingerprint = meta.get("fingerprint")

    def doc_tokens(self, w: int) -> DocTokens:
        a, b, _ = self.table[w]
        p = np.asarray(self.pieces[a:b])
        return DocTokens(p[:, 0].tolist(), [tuple(r) for r in p[:, 1:5].tolist()], p[:, 5].tolist(),
                         [tuple(r) for r in p[:, 6:8].tolist()])

    def image(self, w: int) -> np.ndarray | None:
        row = int(self.table[w, 2])
        return None if row < 0 else self.images[row]


def write_store(folder: Path, docs: Iterable[tuple[str, list[CachedWindow], list[int]]], image_size: int,
                fingerprint: str | None) -> WindowStore:
    """Write (id, windows, positive) documents as a cache folder (atomically) and open it."""
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pieces: list[np.ndarray] = []
    table: list[tuple[int, int, int]] = []
    images: list[np.ndarray] = []
    image_rows: dict[int, int] = {}
    meta_docs = []
    n = 0
    for doc_id, wins, positive in docs:
        rows = []
        for w in wins:
            d = w.doc
            arr = np.zeros((len(d.ids), 8), dtype=np.int32)
            if d.ids:
                arr[:, 0] = d.ids
                arr[:, 1:5] = np.asarray(d.bbox, dtype=np.int32).reshape(-1, 4)
                arr[:, 5] = d.word_index
                arr[:, 6:8] = np.asarray(d.char_span, dtype=np.int32).reshape(-1, 2)
            image_row = -1
            if w.image is not None:
                if id(w.image) not in image_rows:  # a page's windows share its thumbnail
                    image_rows[id(w.image)] = len(images)
                    images.append(w.image)
                image_row = image_rows[id(w.image)]
            rows.append(len(table))
            table.append((n, n + len(d.ids), image_row))
            pieces.append(arr)
            n += len(d.ids)
        meta_docs.append(asdict(CachedDoc(doc_id, rows, [w.fields for w in wins], positive)))
    np.save(tmp / "pieces.npy", np.concatenate(pieces) if pieces else np.zeros((0, 8), np.int32))
    np.save(tmp / "windows.npy", np.asarray(table, dtype=np.int64).reshape(-1, 3))
    stack = np.stack(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)
    np.save(tmp / "images.npy", stack)
    meta = {"version": CACHE_VERSION, "fingerprint": fingerprint, "docs": meta_docs}
    (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
    from docsprint.models.checkpoint import swap_in

    swap_in(tmp, folder)
    return WindowStore(folder)


def fingerprint(root: Path) -> str:
    """Names, sizes and modification times of every file under ``root``: changes when the data
    does (or is copied anew), in milliseconds for a dataset folder."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


PACKED = {"pieces.npy": "pieces.T.npy.xz", "images.npy": "images.jpeg.npz", "meta.json": "meta.json.xz"}


def pack_store(folder: Path, jpeg_quality: int = 80) -> None:
    """Replace a cache folder's pieces, thumbnails and meta by their packed forms (`PACKED`).

    Pieces are stored transposed (one column after another: ids, then x0s, ...), which xz
    compresses about 10x; thumbnails become one JPEG each, concatenated, with their offsets.
    """
    from PIL import Image

    pieces = np.load(folder / "pieces.npy")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(pieces.T))
    (folder / PACKED["pieces.npy"]).write_bytes(lzma.compress(buf.getvalue()))
    images = np.load(folder / "images.npy")
    blobs = []
    for im in images:
        b = io.BytesIO()
        Image.fromarray(im).save(b, "JPEG", quality=jpeg_quality)
        blobs.append(np.frombuffer(b.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    np.savez(folder / PACKED["images.npy"], data=data, offsets=offsets, shape=np.asarray(images.shape, np.int64))
    (folder / PACKED["meta.json"]).write_bytes(lzma.compress((folder / "meta.json").read_bytes()))
    for plain in PACKED:
        (folder / plain).unlink()


def unpack_store(folder: Path) -> None:
    """Undo `pack_store` in place. meta.json is written last: a folder killed half-way still
    has its packed files, and is unpacked again next time."""
    from PIL import Image

    def write(name: str, data: bytes) -> None:
        tmp = folder / f"{name}.tmp{os.getpid()}"
        tmp.write_bytes(data)
        tmp.replace(folder / name)

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(np.load(io.BytesIO(lzma.decompress((folder / PACKED["pieces.npy"]).read_bytes()))).T))
    write("pieces.npy", buf.getvalue())
    with np.load(folder / PACKED["images.npy"]) as z:
        data, offsets, shape = z["data"], z["offsets"], tuple(int(n) for n in z["shape"])
    images = np.zeros(shape, np.uint8)
    for i in range(shape[0]):
        with Image.open(io.BytesIO(data[offsets[i] : offsets[i + 1]].tobytes())) as im:
            images[i] = np.asarray(im.convert("RGB"))
    buf = io.BytesIO()
    np.save(buf, images)
    write("images.npy", buf.getvalue())
    write("meta.json", lzma.decompress((folder / PACKED["meta.json"]).read_bytes()))
    for packed in PACKED.values():
        (folder / packed).unlink()


def cache_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True).encode()).hexdigest()[:12]


def cached(cache_dir: Path, name: str, settings: dict, root: Path | None,
           build: Callable[[], Iterable[tuple[str, list[CachedWindow], list[int]]]],
           image_size: int) -> WindowStore:
    """The cache of ``name`` with ``settings``: opened if it is there and up to date with the data
    folder ``root``, else built by ``build()`` and written first."""
    folder = cache_dir / f"{name}-{cache_key(settings)}"
    if (folder / PACKED["meta.json"]).is_file():
        unpack_store(folder)
    have_data = root is not None and root.is_dir()
    stamp = fingerprint(root) if have_data and root is not None else None
    if (folder / "meta.json").is_file():
        store = WindowStore(folder)
        if stamp is None or store.fingerprint == stamp:
            return store
    if not have_data:
        raise FileNotFoundError(f"{name}: no data folder ({root}) and no cache in {cache_dir}")
    return write_store(folder, build(), image_size, stamp)


def tokenizer_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
