"""In-context classification with an instruction LM: zero-shot and k-shot prompting, calibrated.

Each test text is put in a chat prompt (an instruction that lists the label words, ``shots``
demonstrations per class from the training split, then the query) and every label is scored by
the summed log-likelihood of its tokens as the assistant's answer (teacher forcing, as in the
GPT-3 paper's multiple-choice evaluation, Brown et al. 2020). Nothing is generated or parsed.

Small LMs are strongly biased towards some label words: prompted zero-shot on Rotten Tomatoes
snippets, SmolLM2-135M says "positive" 98% of the time (accuracy 0.50; 0.59 once calibrated, as
measured when the model was chosen). Contextual calibration (Zhao et al. ICML 2021,
"Calibrate Before Use") fixes the bias without labels: score the prompt with content-free queries
("N/A", "", "[MASK]"), average their label distributions into p_cf and predict
argmax p(y|x) / p_cf(y). The alternative ``calibration="val"`` fits a per-label bias b on the
validation split (minimising the cross-entropy of softmax(log-likelihood + b)), the bias-only
special case of Zhao et al.'s affine recalibration.

Scoring is batched and shares work: the token prefix common to all prompts (system turn,
instruction, demonstrations) is run once and its key/value cache reused by every batch, so
k-shot costs little more than zero-shot; label tokens beyond the first are scored from the
query's cache, expanded once per label. With ``llm_url`` the same prompts go to an
OpenAI-compatible server instead (``tladvisor.llm_endpoint``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from tladvisor.data import TaskData
from tladvisor.strategies import Strategy, register
from tladvisor.strategies.base import Outcome, RunContext, StoredRun, StrategyConfig

DEFAULT_LM = "smollm2"
CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. 2021, section 5: the three content-free inputs
CALIBRATIONS = ("content_free", "val", "none")

Messages = list[dict[str, str]]
OnBatch = Callable[[int, int], None]  # (items done, items total); raises Cancelled to stop


class LabelScorer(Protocol):
    """Scores label words as the answer to chat prompts; the local LM and the endpoint both do."""

    description: str
    total_params: int
    notes: list[str]  # what the user should know about how the scores were obtained

    def score(
        self, prompts: Sequence[Messages], labels: Sequence[str], on_batch: OnBatch
    ) -> np.ndarray:
        """(n_prompts, n_labels) summed log-likelihood of each label word as the answer."""
        ...


@dataclass
class PromptingConfig(StrategyConfig):
    """Settings of in-context classification."""

    shots: int = field(
        default=0,
        metadata={
            "help": "demonstrations per class from the training split (0: zero-shot). With the "
            "packaged SmolLM2-135M, 1-4 demonstrations a class scored below zero-shot on Rotten "
            "Tomatoes (BENCHMARKS.md, part 1): a model this small copies the prompt's answers "
            "instead of reading the text. Larger LMs behind llm_url are the ones that gain."
        },
    )
    calibration: str = field(
        default="content_free",
        metadata={
            "help": "content_free (Zhao et al. 2021, no labels needed), val (fit a per-label bias "
            "on the validation split) or none (raw LM scores, usually collapsed onto one label)"
        },
    )
    label_words: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "verbaliser: class -> word the LM should answer (e.g. fresh -> positive); "
            "classes left out use their own name"
        },
    )
    max_demo_chars: int = field(
        default=300,
        metadata={
            "help": "demonstration texts are cut to this many characters to bound the prompt"
        },
    )
    max_query_chars: int = field(
        default=2000,
        metadata={"help": "query texts are cut to this many characters (~500 tokens)"},
    )
    llm_url: str | None = field(
        default=None,
        metadata={
            "help": "OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) to use instead of "
            "the packaged SmolLM2"
        },
    )
    llm_model: str = field(default="", metadata={"help": "model name sent to the server"})
    llm_timeout: float = field(
        default=60.0, metadata={"help": "seconds to wait per server request"}
    )
    batch_size: int = field(default=16, metadata={"help": "prompts scored per forward pass"})
    max_val: int | None = field(
        default=None,
        metadata={
            "help": "score at most this many validation texts (every one when unset). With "
            "content_free calibration they only report val_accuracy_*, so 0 halves the cost"
        },
    )

    # A training-free path: these settings of the base class do nothing here.
    ignored_fields: ClassVar[tuple[str, ...]] = ("epochs", "lr", "patience", "max_train")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shots < 0:
            raise ValueError(f"shots must be 0 or more demonstrations per class, got {self.shots}")
        if self.shots > 32:
            raise ValueError(
                f"shots={self.shots} per class makes prompts longer than a small LM reads well; "
                "use 32 or fewer (4-8 is typical), or a training strategy for more data"
            )
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {', '.join(CALIBRATIONS)}, got {self.calibration!r}; "
                "content_free needs no labels"
            )
        if self.label_words is not None and not (
            isinstance(self.label_words, dict)
            and all(
                isinstance(k, str) and isinstance(v, str) and v.strip()
                for k, v in self.label_words.items()
            )
        ):
            raise ValueError(
                f"label_words must map class names to non-empty words, got {self.label_words!r}; "
                "e.g. {'fresh': 'positive', 'rotten': 'negative'}"
            )
        if self.max_val is not None and self.max_val < 0:
            raise ValueError(f"max_val must be 0 or more validation texts, got {self.max_val}")
        if self.max_demo_chars < 20:
            raise ValueError(f"max_demo_chars must be at least 20, got {self.max_demo_chars}")
        if self.max_query_chars < 20:
            raise ValueError(f"max_query_chars must be at least 20, got {self.max_query_chars}")
        if self.llm_url is not None and not self.llm_url.startswith(("http://", "https://")):
            raise ValueError(
                f"llm_url must start with http:// or https://, got {self.llm_url!r}; "
                "e.g. http://127.0.0.1:8000/v1"
            )
        if self.llm_url is not None and not self.llm_model.strip():
            raise ValueError(
                "llm_model is empty but llm_url is set; name the model the server serves "
                "(its /v1/models lists them)"
            )
        if not self.llm_timeout > 0:
            raise ValueError(f"llm_timeout must be positive seconds, got {self.llm_timeout}")


# ---------------------------------------------------------------- prompts


def label_words_for(classes: Sequence[str], overrides: dict[str, str] | None) -> list[str]:
    """The word the LM answers for each class: the override, else the class name made readable."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(classes))
    if unknown:
        raise ValueError(
            f"label_words names classes not in the data: {', '.join(map(repr, unknown))}; "
            f"the classes are {', '.join(map(repr, classes))}"
        )
    words = [overrides.get(c, c.replace("_", " ")).strip() for c in classes]
    folded = [w.lower() for w in words]
    clash = sorted({w for w in folded if folded.count(w) > 1})
    if clash:
        raise ValueError(
            f"two classes share the label word(s) {clash}; give each class its own word in "
            "label_words"
        )
    return words


def _cut(text: str, limit: int) -> tuple[str, bool]:
    text = " ".join(str(text).split())  # newlines inside a text would read as prompt structure
    if len(text) <= limit:
        return text, False
    return text[: limit - 3].rstrip() + "...", True


def pick_demonstrations(y_train: np.ndarray, n_classes: int, shots: int, seed: int) -> list[int]:
    """Positions in the training split of ``shots`` examples per class, classes interleaved.

    Seeded, so every run with the same data and seed sees the same prompt. Interleaving
    (round-robin over classes in a shuffled order) avoids putting one class last: the label of
    the last demonstration is what small LMs repeat most (Zhao et al. 2021, "recency bias").
    """
    if shots == 0:
        return []
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y_train == c))[:shots] for c in range(n_classes)]
    picked: list[int] = []
    for depth in range(shots):
        order = rng.permutation(n_classes)
        picked.extend(int(per_class[c][depth]) for c in order if depth < len(per_class[c]))
    return picked


def build_prompts(
    queries: Sequence[str],
    words: Sequence[str],
    demos: Sequence[tuple[str, str]],
    max_query_chars: int,
) -> tuple[list[Messages], int]:
    """Chat prompts (one per query) and how many queries were cut.

    The instruction sits in the system turn. Demonstrations go in the user turn as "Text: ...
    Label: ..." pairs and the query ends with "Label:", so the answer continues the pattern.
    Measured on 80 Rotten Tomatoes validation snippets with SmolLM2-135M, 2 shots a class: this
    layout gave 0.575 content-free calibrated accuracy; demonstrations as separate chat turns gave
    0.525 with 93% of answers on one label (the model copies the previous turns' answers).
    Without demonstrations the query is just "Text: ..." (0.67 raw, 0.645 calibrated on 200).
    """
    instruction = (
        "You classify texts. Answer with exactly one of these labels: "
        + ", ".join(words)
        + ". Reply with the label only."
    )
    system = {"role": "system", "content": instruction}
    examples = "".join(f"Text: {text}\nLabel: {word}\n\n" for text, word in demos)
    prompts, n_cut = [], 0
    for query in queries:
        text, cut = _cut(query, max_query_chars)
        n_cut += cut
        user = f"{examples}Text: {text}\nLabel:" if demos else f"Text: {text}"
        prompts.append([system, {"role": "user", "content": user}])
    return prompts, n_cut


# ---------------------------------------------------------------- the local LM


@dataclass
class LocalLMScorer:
    """Scores label words with a ``backbones.CausalLM`` (SmolLM2), sharing the prompts' prefix."""

    lm: Any  # backbones.CausalLM
    batch_size: int = 16
    notes: list[str] = field(default_factory=list)
    description: str = field(init=False)
    total_params: int = field(init=False)

    def __post_init__(self) -> None:
        self.description = f"{self.lm.name} (local, teacher-forced label log-likelihood)"
        self.total_params = int(sum(p.numel() for p in self.lm.model.parameters()))

    def render(self, messages: Messages) -> list[int]:
        text = self.lm.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return list(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def score(
        self, prompts: Sequence[Messages], labels: Sequence[str], on_batch: OnBatch
    ) -> np.ndarray:
        import torch

        tok = self.lm.tokenizer
        label_ids = [list(tok(w, add_special_tokens=False)["input_ids"]) for w in labels]
        ids = [self.render(m) for m in prompts]
        out = np.zeros((len(ids), len(labels)), dtype=np.float64)
        if not ids:
            return out
        # Longest token prefix shared by every prompt (system turn, instruction, demonstrations),
        # keeping at least one query token per prompt: its logits predict the first label token.
        shared = min(len(x) for x in ids) - 1
        first = ids[0]
        for x in ids[1:]:
            n = 0
            while n < shared and x[n] == first[n]:
                n += 1
            shared = n
        device = self.lm.device
        with torch.inference_mode():
            prefix_cache = None
            if shared > 0:
                prefix = torch.tensor([first[:shared]], device=device)
                prefix_cache = self.lm.model(input_ids=prefix, use_cache=True).past_key_values
            for start in range(0, len(ids), self.batch_size):
                rows = ids[start : start + self.batch_size]
                out[start : start + len(rows)] = self._score_batch(
                    [r[shared:] for r in rows], shared, prefix_cache, label_ids
                )
                on_batch(start + len(rows), len(ids))
        return out

    def _score_batch(
        self, rests: list[list[int]], shared: int, prefix_cache: Any, label_ids: list[list[int]]
    ) -> np.ndarray:
        import torch

        model, device = self.lm.model, self.lm.device
        pad = self.lm.tokenizer.pad_token_id or 0
        b, width = len(rests), max(len(r) for r in rests)
        x = torch.full((b, width), pad, dtype=torch.long)
        mask = torch.zeros((b, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        lengths = torch.tensor([len(r) for r in rests])
        for i, r in enumerate(rests):
            x[i, : len(r)] = torch.tensor(r)
            mask[i, shared : shared + len(r)] = 1
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)  # forward() appends to a cache in place
            cache.reorder_cache(torch.zeros(b, dtype=torch.long, device=device))
        # Right padding after the shared prefix: pads sit at the end (masked), so every row's
        # positions run on from the prefix without gaps.
        positions = (shared + torch.arange(width)).expand(b, width)
        result = model(
            input_ids=x.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
        )
        logp = torch.log_softmax(result.logits.float(), dim=-1)
        last = logp[torch.arange(b), lengths - 1]  # (b, vocab): the answer's first token
        scores = torch.stack([last[:, ids[0]] for ids in label_ids], dim=1)
        longest = max(len(ids) for ids in label_ids)
        if longest > 1:
            scores += self._rest_of_labels(result.past_key_values, mask, lengths, shared, label_ids)
        return scores.cpu().numpy()

    def _rest_of_labels(
        self, cache: Any, mask: Any, lengths: Any, shared: int, label_ids: list[list[int]]
    ) -> Any:
        """Log-likelihood of every label's tokens after its first, from the queries' cache."""
        import torch

        model, device = self.lm.model, self.lm.device
        b, n_labels = mask.shape[0], len(label_ids)
        steps = max(len(ids) for ids in label_ids) - 1
        # Each query row is repeated once per label: row i * n_labels + j scores label j.
        cache.reorder_cache(torch.arange(b, device=device).repeat_interleave(n_labels))
        feed = torch.zeros((n_labels, steps), dtype=torch.long)
        target = torch.zeros((n_labels, steps), dtype=torch.long)
        valid = torch.zeros((n_labels, steps), dtype=torch.bool)
        for j, ids in enumerate(label_ids):
            feed[j, : len(ids) - 1] = torch.tensor(ids[:-1])
            target[j, : len(ids) - 1] = torch.tensor(ids[1:])
            valid[j, : len(ids) - 1] = True
        feed, target, valid = feed.repeat(b, 1), target.repeat(b, 1), valid.repeat(b, 1)
        past_mask = mask.repeat_interleave(n_labels, dim=0)
        full_mask = torch.cat([past_mask, valid.long()], dim=1)
        start = (shared + lengths).repeat_interleave(n_labels)
        positions = start[:, None] + torch.arange(steps)[None, :]
        result = model(
            input_ids=feed.to(device),
            attention_mask=full_mask.to(device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=False,
        )
        logp = torch.log_softmax(result.logits.float(), dim=-1).cpu()
        token = logp.gather(-1, target[..., None])[..., 0] * valid
        return token.sum(dim=1).reshape(b, n_labels).to(device)


# ---------------------------------------------------------------- calibration


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def content_free_bias(cf_scores: np.ndarray) -> np.ndarray:
    """Per-label log bias -log p_cf from content-free scores (n_cf, n_labels).

    Adding it to the log-likelihoods and renormalising is Zhao et al.'s W = diag(p_cf)^-1, b = 0:
    softmax(s + bias) is proportional to p(y|x) / p_cf(y).
    """
    p_cf = softmax(cf_scores).mean(axis=0)
    return -np.log(np.clip(p_cf, 1e-12, None))


def fit_label_bias(scores: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Per-label bias b minimising mean cross-entropy of softmax(scores + b) on labelled items.

    Convex in b; a small L2 term keeps it finite when a label never occurs. b is centred (its
    mean is unidentifiable).
    """
    from scipy.optimize import minimize

    n, k = scores.shape
    onehot = np.eye(k)[y]

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        p = softmax(scores + b)
        value = -np.log(np.clip(p[np.arange(n), y], 1e-300, None)).mean() + l2 * float(b @ b)
        grad = (p - onehot).mean(axis=0) + 2 * l2 * b
        return float(value), grad

    b = minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B").x
    return b - b.mean()


def top_label_share(pred: np.ndarray, n_classes: int) -> float:
    """Share of predictions given to the most-predicted label: 1.0 means the model collapsed."""
    if len(pred) == 0:
        return float("nan")
    return float(np.bincount(pred, minlength=n_classes).max() / len(pred))


# ---------------------------------------------------------------- run


def make_scorer(config: PromptingConfig, device: str) -> LabelScorer:
    if config.llm_url:
        from tladvisor.llm_endpoint import EndpointScorer

        return EndpointScorer(
            config.llm_url,
            config.llm_model,
            timeout=config.llm_timeout,
            batch_size=config.batch_size,
        )
    from tladvisor import catalog

    name = config.model or DEFAULT_LM
    spec = catalog.get_spec(name)
    if spec.kind != catalog.INSTRUCTION_LM:
        raise ValueError(
            f"prompting needs an instruction LM, but model {name!r} is a {spec.kind}; use "
            f"model={DEFAULT_LM!r} or set llm_url to an OpenAI-compatible server"
        )
    return LocalLMScorer(catalog.load(name, device=device), batch_size=config.batch_size)


def run(config: PromptingConfig, data: TaskData, ctx: RunContext) -> Outcome:
    if data.modality != "text":
        raise ValueError(
            f"prompting classifies text, but this data set holds {data.modality}s; "
            "use zero_shot or feature_extraction for images"
        )
    classes = data.classes
    words = label_words_for(classes, config.label_words)
    notes: list[str] = []
    ctx.progress(0.0, "loading the language model")
    scorer = make_scorer(config, ctx.device)
    ctx.check_cancel()

    train_texts, y_train = data.items("train"), data.y("train")
    picked = pick_demonstrations(y_train, len(classes), config.shots, config.seed)
    demos, n_demo_cut = [], 0
    for i in picked:
        text, cut = _cut(train_texts[i], config.max_demo_chars)
        n_demo_cut += cut
        demos.append((text, words[y_train[i]]))
    short = [c for c in range(len(classes)) if np.sum(y_train == c) < config.shots]
    if short:
        notes.append(
            f"{len(short)} class(es) have fewer than {config.shots} training examples; "
            "they got all they have as demonstrations"
        )

    val_texts, y_val = data.items("val"), data.y("val")
    if config.max_val is not None:  # the split is already shuffled: its first items are a draw
        val_texts, y_val = val_texts[: config.max_val], y_val[: config.max_val]
    test_texts = data.items("test")
    cf_prompts, _ = build_prompts(CONTENT_FREE, words, demos, config.max_query_chars)
    val_prompts, n_val_cut = build_prompts(val_texts, words, demos, config.max_query_chars)
    test_prompts, n_test_cut = build_prompts(test_texts, words, demos, config.max_query_chars)
    total = len(cf_prompts) + len(val_prompts) + len(test_prompts)
    done = 0

    def on_batch_from(offset: int) -> OnBatch:
        def on_batch(n_done: int, _n: int) -> None:
            ctx.check_cancel()
            ctx.progress(
                0.05 + 0.95 * (offset + n_done) / total, f"scored {offset + n_done}/{total} prompts"
            )

        return on_batch

    cf = scorer.score(cf_prompts, words, on_batch_from(done))
    done += len(cf_prompts)
    val = scorer.score(val_prompts, words, on_batch_from(done))
    done += len(val_prompts)
    test = scorer.score(test_prompts, words, on_batch_from(done))

    cf_bias = content_free_bias(cf)
    bias = np.zeros(len(classes))
    if config.calibration == "content_free":
        bias = cf_bias
    elif config.calibration == "val":
        if len(y_val) >= len(classes):
            bias = fit_label_bias(val, y_val)
            notes.append(
                "calibration fitted a per-label bias on the validation split, so "
                "val_accuracy_calibrated is measured on the items it was fitted to (optimistic)"
            )
        else:
            bias = cf_bias
            notes.append(
                f"only {len(y_val)} validation items for {len(classes)} classes: too few to fit "
                "a bias, so content-free calibration was used instead"
            )

    test_proba = softmax(test + bias)
    test_pred = test_proba.argmax(axis=1)
    k = len(classes)
    metrics = {
        "shots_per_class": float(config.shots),
        "test_top_label_share_raw": top_label_share(test.argmax(axis=1), k),
        "test_top_label_share_calibrated": top_label_share(test_pred, k),
    }
    if len(y_val):
        for name, b in (("raw", 0.0), ("content_free", cf_bias), ("calibrated", bias)):
            pred = (val + b).argmax(axis=1)
            metrics[f"val_accuracy_{name}"] = float(np.mean(pred == y_val))
            metrics[f"val_top_label_share_{name}"] = top_label_share(pred, k)
    p_cf = softmax(cf).mean(axis=0)
    notes.append(
        "label words: "
        + ", ".join(f"{c} -> {w!r}" for c, w in zip(classes, words, strict=True))
        + "; content-free label distribution: "
        + ", ".join(f"{w} {p:.2f}" for w, p in zip(words, p_cf, strict=True))
    )
    notes.extend(scorer.notes)
    if n_demo_cut:
        notes.append(
            f"{n_demo_cut} of {len(demos)} demonstrations cut to {config.max_demo_chars} characters"
        )
    if n_val_cut + n_test_cut:
        notes.append(
            f"{n_val_cut + n_test_cut} validation/test texts cut to {config.max_query_chars} characters"
        )
    ctx.progress(1.0, "done")
    outcome = Outcome.from_proba(
        test_proba,
        model=(f"endpoint:{config.llm_model}" if config.llm_url else (config.model or DEFAULT_LM)),
        backend=f"{scorer.description}, {config.shots}-shot, calibration={config.calibration}",
        trainable_params=0,
        total_params=scorer.total_params,
        extra_metrics=metrics,
        notes=notes,
    )
    if ctx.artifact_dir is not None:
        outcome.artifact_path = save_prompt(ctx.artifact_dir, classes, words, demos, bias, config)
    return outcome


PROMPT_FILE = "prompt.json"


def save_prompt(
    folder: Any,
    classes: list[str],
    words: list[str],
    demos: list[tuple[str, str]],
    bias: np.ndarray,
    config: PromptingConfig,
) -> str:
    """Everything a prediction needs that is not in the config: the demonstrations drawn from
    the training split and the calibration bias (fitted, for calibration='val')."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROMPT_FILE
    saved = {
        "classes": classes,
        "label_words": words,
        "demonstrations": [list(d) for d in demos],
        "bias": [float(b) for b in bias],
        "calibration": config.calibration,
        "max_query_chars": config.max_query_chars,
        "instruction": build_prompts([""], words, demos, config.max_query_chars)[0][0][0][
            "content"
        ],
    }
    path.write_text(json.dumps(saved, indent=1), encoding="utf-8")
    return str(path)


def predict(run: StoredRun, items: list, ctx: RunContext) -> np.ndarray:
    """Class probabilities of ``items``: the stored prompt scored by the LM, then calibrated
    with the stored bias."""
    import json

    saved = json.loads(run.artifact_file(PROMPT_FILE).read_text(encoding="utf-8"))
    demos = [tuple(d) for d in saved["demonstrations"]]
    words = saved["label_words"]
    prompts, _ = build_prompts(list(items), words, demos, saved["max_query_chars"])
    scorer = make_scorer(run.config, ctx.device)

    def on_batch(done: int, total: int) -> None:
        ctx.check_cancel()
        ctx.progress(done / max(total, 1), f"scored {done}/{total} prompts")

    scores = scorer.score(prompts, words, on_batch)
    return softmax(scores + np.asarray(saved["bias"]))


register(Strategy.PROMPTING, PromptingConfig, run, ("text",), predict)
