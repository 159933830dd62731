"""Write a stored run as a folder that loads without tladvisor: ``tladvisor export RUN_ID DIR``.

The form is the one the ecosystem already reads, safetensors and JSON only (no pickle):

- a text classifier on a sentence encoder (feature extraction, fine-tuning, LP-FT, a network
  trained from scratch): a **sentence-transformers folder** whose ``encode`` gives the features
  the head was trained on, plus ``head.safetensors`` (a linear layer) and ``head.json``;
- **LoRA on text**: a **peft adapter** on the encoder (``AutoModel``), its base named in
  ``adapter_config.json`` and the README, plus the head;
- an image classifier (EfficientNet-Lite): ``model.safetensors`` with the whole network and head,
  loaded with ``efficientnet_lite_pytorch`` (LoRA adapters merged in);
- the TF-IDF / pixel baseline: its vocabulary and IDF weights as JSON plus the head;
- prompting and zero-shot: the prompt, label words, calibration or class texts as JSON.

Each folder has a ``README.md`` model card: data set and fingerprint, strategy, metrics,
forgetting, the command that made it and the code that loads it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tladvisor.strategies import Strategy
from tladvisor.strategies.base import RunContext, StoredRun

LOADERS = {
    "sentence-transformers": """\
```python
import json, torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

encoder = SentenceTransformer("{dir}")
head = load_file("{dir}/head.safetensors")
classes = json.load(open("{dir}/head.json"))["classes"]
features = encoder.encode(["a text to classify"], convert_to_tensor=True)
proba = torch.softmax(features @ head["weight"].T + head["bias"], -1)
print(classes[int(proba.argmax(1)[0])])
```""",
    "peft": """\
```python
import json, torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

base_path = "{base}"  # the base model: a local copy of it, or its hub id
model = PeftModel.from_pretrained(AutoModel.from_pretrained(base_path), "{dir}").eval()
tokenizer = AutoTokenizer.from_pretrained(base_path)
head = load_file("{dir}/head.safetensors")
classes = json.load(open("{dir}/head.json"))["classes"]
batch = tokenizer(["a text to classify"], padding=True, truncation=True, max_length={max_length},
                  return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
features = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, not normalised
proba = torch.softmax(features @ head["weight"].T + head["bias"], -1)
print(classes[int(proba.argmax(1)[0])])
```""",
    "efficientnet": """\
```python
import json, numpy as np, torch
from PIL import Image
from safetensors.torch import load_file
from efficientnet_lite_pytorch import EfficientNet  # pip install efficientnet-lite-pytorch

config = json.load(open("{dir}/config.json"))
state = load_file("{dir}/model.safetensors")
net = EfficientNet.from_name(config["architecture"])
net.load_state_dict({{k[len("backbone.net."):]: v for k, v in state.items() if k.startswith("backbone.net.")}})
net.eval()
size = config["image_size"]
image = Image.open("digit.png").convert("RGB").resize((size, size), Image.BILINEAR)
x = (torch.from_numpy(np.asarray(image, np.float32)).permute(2, 0, 1)[None] - 127.0) / 128.0
with torch.no_grad():
    features = net.extract_features(x).mean((2, 3))
proba = torch.softmax(features @ state["classifier.weight"].T + state["classifier.bias"], -1)
print(config["classes"][int(proba.argmax(1)[0])])
```""",
    "tfidf": """\
```python
import json, numpy as np
from safetensors.numpy import load_file
from sklearn.feature_extraction.text import TfidfVectorizer

saved = json.load(open("{dir}/tfidf.json"))
vectorizer = TfidfVectorizer(ngram_range=tuple(saved["ngram_range"]), sublinear_tf=True,
                             vocabulary=saved["vocabulary"])
vectorizer.idf_ = np.asarray(saved["idf"])
head = load_file("{dir}/head.safetensors")
logits = vectorizer.transform(["a text to classify"]) @ head["weight"].T + head["bias"]
print(json.load(open("{dir}/head.json"))["classes"][int(np.argmax(logits))])
```""",
    "pixels": """\
Images are read as 28x28 grey pixels scaled to 0-1 and flattened (784 values); the class is the
argmax of `pixels @ weight.T + bias` with the tensors of `head.safetensors` (classes in `head.json`).""",
    "prompt": """\
`prompt.json` holds the system instruction, the label words, the demonstrations and the per-label
calibration bias. Put each text in a chat as `Text: ...` (after the demonstrations as
`Text: ...\\nLabel: word` pairs, ending with `Label:`), score every label word's log-likelihood as
the assistant's answer, add `bias` and take the argmax (Zhao et al. 2021, contextual calibration).""",
    "zero_shot": """\
`zero_shot.json` holds the class texts, templates and scale: embed each class's filled templates
with the encoder, average and normalise them, and give each item softmax(scale * cosine) over the
classes.""",
}


def export_run(store: Any, run: StoredRun, folder: Path, *, command: str = "") -> Path:
    """Write ``run`` into ``folder`` (absent or empty); built aside and moved in when complete."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"{folder} already exists and is not empty; give a new folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as tmp:
        work = Path(tmp) / "out"
        work.mkdir()
        form, extra = _write(run, work)
        (work / "README.md").write_text(
            model_card(store.get_run(run.run_id), run, form, extra, folder, command),
            encoding="utf-8",
        )
        if folder.exists():
            folder.rmdir()
        shutil.move(str(work), str(folder))
    return folder


def export_zip(store: Any, run_id: str) -> bytes:
    """The export of ``run_id`` as a ZIP (the dashboard's download), built in a temporary folder."""
    import io
    import zipfile

    from tladvisor.predict import load_run

    run = load_run(store, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_run(store, run, Path(tmp) / "model", command="dashboard: Run detail")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(folder).as_posix())
    return buffer.getvalue()


def _write(run: StoredRun, out: Path) -> tuple[str, dict[str, Any]]:
    """Write the run's files into ``out``; returns (form, facts for the model card)."""
    strategy = Strategy.parse(run.strategy)
    ctx = RunContext(device="cpu")
    if strategy is Strategy.PROMPTING:
        shutil.copy(run.artifact_file("prompt.json"), out / "prompt.json")
        return "prompt", {"base": run.model}
    if strategy is Strategy.ZERO_SHOT:
        _zero_shot_json(run, out)
        return "zero_shot", {"base": run.model}
    if strategy is Strategy.SCRATCH and run.config.architecture == "linear":
        shutil.copy(run.artifact_file("head.safetensors"), out / "head.safetensors")
        _head_json(run, out, features=run.modality)
        if run.modality == "text":
            shutil.copy(run.artifact_file("tfidf.json"), out / "tfidf.json")
            return "tfidf", {}
        return "pixels", {}
    model, wrapper = _classifier(run, strategy, ctx)
    if run.modality == "image":
        return _efficientnet(run, model, out), {}
    if strategy is Strategy.LORA:
        return _peft_text(run, wrapper, out)
    return _sentence_transformer(run, model, wrapper, out), {}


def _classifier(run: StoredRun, strategy: Strategy, ctx: RunContext) -> tuple[Any, Any]:
    """The run's classifier rebuilt from its artefact (a LoRA run still wrapped by peft)."""
    from tladvisor.strategies.training import load_saved_classifier

    if strategy is Strategy.FEATURE_EXTRACTION:
        import torch

        from tladvisor import catalog
        from tladvisor.strategies.feature_extraction import load_head
        from tladvisor.strategies.training import build_classifier

        spec = catalog.get_spec(run.model)
        if spec.kind not in (catalog.TEXT_ENCODER, catalog.IMAGE_CLASSIFIER):
            raise ValueError(
                f"run {run.run_id} reads features of {run.model} ({spec.kind}), which export "
                "cannot package as a standalone classifier yet; predict with `tladvisor predict`"
            )
        probe, meta = load_head(run.artifact_file("head.safetensors"))
        if meta.get("chunked"):
            raise ValueError(
                f"run {run.run_id} embeds long texts as the mean of their chunks, which a "
                "sentence-transformers folder cannot express; predict with `tladvisor predict`"
            )
        wrapper = catalog.load(run.model, device=ctx.device)
        model = build_classifier(wrapper, len(run.classes), run.config.seed)
        with torch.no_grad():
            model.classifier.weight.copy_(torch.from_numpy(probe.weight))
            model.classifier.bias.copy_(torch.from_numpy(probe.bias))
        return model, wrapper
    if strategy is Strategy.LORA:
        from tladvisor.strategies.lora import load_adapted

        return load_adapted(run, ctx)
    return load_saved_classifier(run, ctx)


def _head_json(run: StoredRun, out: Path, **facts: Any) -> None:
    saved = {"classes": run.classes, "strategy": run.strategy, "run_id": run.run_id, **facts}
    (out / "head.json").write_text(json.dumps(saved, indent=1), encoding="utf-8")


def _save_head(model: Any, out: Path) -> None:
    from safetensors.torch import save_file

    head = model.classifier
    save_file(
        {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu()},
        str(out / "head.safetensors"),
    )


def _sentence_transformer(run: StoredRun, model: Any, wrapper: Any, out: Path) -> str:
    """The encoder as a sentence-transformers folder giving the head's features, plus the head."""
    from sentence_transformers import SentenceTransformer, models

    strategy = Strategy.parse(run.strategy)
    normalised = strategy is Strategy.FEATURE_EXTRACTION  # the probe reads unit vectors
    with tempfile.TemporaryDirectory() as tmp:
        model.backbone.save_pretrained(tmp)  # safetensors
        wrapper.tokenizer.save_pretrained(tmp)
        modules = [
            models.Transformer(tmp, max_seq_length=wrapper.max_length),
            models.Pooling(wrapper.feature_dim, pooling_mode="mean"),
        ]
        if normalised:
            modules.append(models.Normalize())
        SentenceTransformer(modules=modules, device="cpu").save(str(out))
    _save_head(model, out)
    _head_json(run, out, features="normalised mean pooling" if normalised else "mean pooling")
    return "sentence-transformers"


def _peft_text(run: StoredRun, wrapper: Any, out: Path) -> tuple[str, dict[str, Any]]:
    """The adapter re-rooted on the encoder itself, so ``PeftModel.from_pretrained(AutoModel...)``
    loads it; the head (peft ``modules_to_save`` in the run) goes to ``head.safetensors``."""
    from safetensors.torch import load_file, save_file

    from tladvisor import catalog

    folder = run.artifact_file("adapter_config.json").parent
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    weights = load_file(str(folder / "adapter_model.safetensors"))
    prefix = "base_model.model.backbone."
    adapter = {
        f"base_model.model.{k[len(prefix) :]}": v
        for k, v in weights.items()
        if k.startswith(prefix)
    }
    base = catalog.get_spec(run.model).source.split(" via ")[0]
    targets = config.get("target_modules") or []
    config.update(
        target_modules=sorted(t.removeprefix("backbone.") for t in targets),
        modules_to_save=None,
        auto_mapping=None,  # it named tladvisor's classifier class: the base is AutoModel now
        base_model_name_or_path=base,
    )
    (out / "adapter_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    save_file(adapter, str(out / "adapter_model.safetensors"))
    head = "base_model.model.classifier."
    save_file(
        {k[len(head) :]: v for k, v in weights.items() if k.startswith(head)},
        str(out / "head.safetensors"),
    )
    _head_json(run, out, features="mean pooling of the adapted encoder", base_model=base)
    return "peft", {"base": base, "max_length": wrapper.max_length, "local_base": wrapper.path}


def _efficientnet(run: StoredRun, model: Any, out: Path) -> str:
    """The whole network and head in one safetensors file (LoRA merged in), plus its config."""
    from safetensors.torch import save_file

    if Strategy.parse(run.strategy) is Strategy.LORA:
        model = model.merge_and_unload()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    config = {
        "architecture": run.model,
        "classes": run.classes,
        "image_size": getattr(run.config, "image_size", 224),
        "preprocessing": "RGB, resized bilinear to image_size square, (pixels - 127) / 128",
        "features": "mean of extract_features over the spatial dimensions",
        "strategy": run.strategy,
        "run_id": run.run_id,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return "efficientnet"


def _zero_shot_json(run: StoredRun, out: Path) -> None:
    from tladvisor.strategies.zero_shot import CLIP_TEMPLATES, TEXT_TEMPLATES, class_text

    config = run.config
    saved = {
        "classes": run.classes,
        "class_texts": [class_text(c, config.class_descriptions) for c in run.classes],
        "templates": config.templates
        or list(TEXT_TEMPLATES if run.modality == "text" else CLIP_TEMPLATES),
        "logit_scale": config.logit_scale,
        "model": run.model,
        "text_encoder": config.text_encoder,
        "top_t": config.top_t,
    }
    (out / "zero_shot.json").write_text(json.dumps(saved, indent=1), encoding="utf-8")


def model_card(
    record: dict[str, Any],
    run: StoredRun,
    form: str,
    extra: dict[str, Any],
    folder: Path,
    command: str,
) -> str:
    """README.md: what the folder is, how it scored, what it forgot, and how to load it."""
    metrics = record["metrics"]
    forgetting = record["metrics_by_split"].get("reference", {})
    lines = [
        f"# {run.strategy} on {record['dataset_name']} ({run.model})",
        "",
        f"Exported by tladvisor from run `{run.run_id}` with `{command or 'tladvisor export'}`.",
        "",
        f"- Data set: {record['dataset_name']}, fingerprint `{record['dataset_fingerprint']}`",
        f"- Strategy: {run.strategy}; model: {run.model}; backend: {record['backend']}",
        f"- Classes: {', '.join(run.classes)}",
        f"- Trained by {record['user_name']} on {record['created_at']:%Y-%m-%d %H:%M} UTC, "
        f"seed {record['seed']}",
    ]
    lines += ["", "## Metrics (test split)", ""]
    for name in ("accuracy", "macro_f1", "n_train", "n_test", "seconds", "trainable_params"):
        if metrics.get(name) is not None:
            lines.append(f"- {name}: {metrics[name]:.4g}")
    lines += ["", "## Forgetting (reference sets)", ""]
    if forgetting:
        lines += [f"- {name}: {value:.4g}" for name, value in sorted(forgetting.items())]
    else:
        lines.append("- not measured (the pretrained weights are unchanged, or it was turned off)")
    lines += ["", "## Load it", ""]
    facts = {
        "dir": str(folder),
        "base": extra.get("local_base") or extra.get("base", ""),
        "max_length": extra.get("max_length", 256),
    }
    lines.append(LOADERS[form].format(**facts))
    if extra.get("base"):
        lines += ["", f"Base model: `{extra['base']}`."]
    lines += ["", "## Settings", "", "```json", json.dumps(record["config"], indent=1), "```", ""]
    return "\n".join(lines)
