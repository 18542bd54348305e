"""``docsprint train pack --config CFG --out DIR``: what a training run reads, packed into one
folder that can travel without ``../shared`` (to a lent GPU machine, where only the working
tree goes): the config's datasets encoded once (`docsprint.data.cache`, packed: thumbnails as
JPEG, the rest through xz), the checkpoint it starts from (compact: int8 word embeddings, fp16
elsewhere), and ``DIR/config.yaml``, the same config reading from those::

    docsprint train pack --config configs/kie-general-gpu.yaml --out pack
    docsprint train kie --config pack/config.yaml      # there: no data folder needed

The run's checkpoints can be written as shards (``max_shard_mb``) for a transfer limit.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import yaml

from docsprint.data.cache import pack_store
from docsprint.models.checkpoint import from_pretrained, load_tokenizer, save_pretrained
from docsprint.models.config import ModelConfig
from docsprint.train.kie import KIETrainConfig, load_prepared, tokenizer_file


def pack(config: str | Path, out: str | Path) -> Path:
    """Encode the config's datasets into ``out/cache`` (packed), copy its init checkpoint to
    ``out/init`` and write ``out/config.yaml``."""
    tc = KIETrainConfig.from_yaml(config)
    out = Path(out)
    tc.cache_dir = str(out / "cache")
    tok_file = tokenizer_file(tc)
    tok = load_tokenizer(tok_file)
    cfg = ModelConfig(**(tc.model or {}))
    for name in tc.datasets:
        load_prepared(tok, tok_file, cfg, tc, name)
    for stale in (out / "cache").glob("*.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    for folder in (out / "cache").iterdir():
        if folder.is_dir() and (folder / "meta.json").is_file():
            pack_store(folder)
    if tc.init not in ("minilm", "random"):
        model, _ = from_pretrained(tc.init)
        save_pretrained(model, out / "init", tok_file, compact=True)
        tc.init = str(out / "init")
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(tc), sort_keys=False))
    return out


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
