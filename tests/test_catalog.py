"""The catalogue: every packaged model loads offline and gives outputs of the right shape."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tladvisor import catalog


def test_catalogue_is_data_with_the_packaged_models():
    names = {s.name for s in catalog.list_models()}
    assert names == {"minilm", "smollm2", "efficientnet-lite0"}
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
