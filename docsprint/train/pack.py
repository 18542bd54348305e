"""``docsprint train pack --config CFG --out DIR``: what a training run reads, packed into one
folder that can travel without ``../shared`` (to a lent GPU machine, where only the working
tree goes): the config's datasets encoded once (`docsprint.data.cache`, arrays compressed),
and ``DIR/config.yaml``, the same config reading from that cache::

    docsprint train pack --config configs/kie-sroie-gpu.yaml --out pack
    docsprint train kie --config pack/config.yaml      # there: no data folder needed

The run's checkpoints can be written as shards (``max_shard_mb``) for a transfer limit.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from docsprint.models.checkpoint import load_tokenizer
from docsprint.models.config import ModelConfig
from docsprint.train.kie import KIETrainConfig, load_prepared, tokenizer_file


def pack(config: str | Path, out: str | Path) -> Path:
    """Encode the config's datasets into ``out/cache`` (compressed) and write ``out/config.yaml``."""
    tc = KIETrainConfig.from_yaml(config)
    out = Path(out)
    tc.cache_dir = str(out / "cache")
    tok_file = tokenizer_file(tc)
    tok = load_tokenizer(tok_file)
    cfg = ModelConfig(**(tc.model or {}))
    for name in tc.datasets:
        load_prepared(tok, tok_file, cfg, tc, name)
    for folder in (out / "cache").iterdir():
        if folder.is_dir() and (folder / "images.npy").is_file():  # compress for the trip
            np.savez_compressed(folder / "images.npz", images=np.load(folder / "images.npy"))
            (folder / "images.npy").unlink()
    for stale in (out / "cache").glob("*.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(tc), sort_keys=False))
    return out


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
