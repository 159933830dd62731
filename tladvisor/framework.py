"""The framework as data: rule ids, the passages they encode, advice texts, accuracy notes.

The decision engine (``tladvisor.decision``) decides; this module says what each decision rests on.
``SOURCES`` maps every rule id the engine fires to the passage it encodes: a short verbatim quote
from one of five seed documents on transfer learning (numbered 000-004) or a published paper,
followed by the rule's section of ``docs/framework.md``, which describes the seeds, the papers,
each rule and the benchmark evidence that adjusted it. ``ADVICE`` holds the advice that is not a
run, each pointing at its section too; ``ACCURACY_NOTES`` what to expect of each strategy once it
wins. Stdlib only, like the engine.
"""

from __future__ import annotations

import re

from tladvisor.strategies.names import Strategy

# ── Where each rule is explained: a section of docs/framework.md ──────────────────────────────────
DOC = "docs/framework.md"
MEASURED_SECTION = "Measured evidence"  # the section on ``measured.<name>`` reasons


def doc_anchor(heading: str) -> str:
    """The fragment GitHub (and Python-Markdown's ``toc``) give a heading: lower case, punctuation
    other than ``-`` and ``_`` dropped, spaces to hyphens (``seed003.domain_unusual`` ->
    ``seed003domain_unusual``)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def doc_link(heading: str) -> str:
    """``docs/framework.md#<anchor>`` for the section headed ``heading`` (a rule id or advice key)."""
    return f"{DOC}#{doc_anchor(heading)}"


def _pointed(citation: str, heading: str) -> str:
    return f"{citation}; see {doc_link(heading)}"


def measured_source(name: str) -> str:
    """The source of a ``measured.<name>`` reason: a benchmark finding from ``data/evidence.json``."""
    return _pointed(
        f"BENCHMARKS.md, '{name}': measured by tladvisor's benchmark on the bundled models",
        MEASURED_SECTION,
    )


def predicted_source(rule: str) -> str:
    """The source of a ``predicted.*`` reason: the outcome model (``tladvisor.outcomes``)."""
    return _pointed(
        "tladvisor's outcome model: the user's measured accuracies carried along the benchmark "
        "suite's learning curves, evaluated leave-one-data-set-out",
        rule,
    )


# ── Citations: rule id -> the passage it encodes (quotes are verbatim from the seed) ─────────────
def _seed(num: str, section: str, quote: str, note: str = "") -> str:
    """A citation users can check: seed number, section, the quoted phrase, an optional note."""
    return f"seed {num}, '{section}': \"{quote}\"{note}"


_FRAMEWORK = "Practical decision framework"  # seed 003
_BY_SIZE = "Choosing the right strategy based on dataset size"  # seed 002's code comments
_TABLE = "Feature extraction vs fine-tuning"  # seed 002's strategy table
_LP_VS_FT = "Linear Probing vs. Full Fine-Tuning"  # seed 000
_FAILS = "When Transfer Learning Fails"  # seed 004
_PROFILED = "; measured on your data by the profiler"

_CITATIONS: dict[str, str] = {
    "data.no_labels": _seed("000", "Data Efficiency of Transfer", "CLIP zero-shot: need 0 images (zero-shot transfer)"),
    "data.single_class": _seed("000", "The Three-Stage View", "Replace task-specific head (e.g., swap language model head for classification head)"),
    "data.unseen_classes": _seed("000", "Data Efficiency of Transfer", "CLIP zero-shot: need 0 images (zero-shot transfer)"),
    "seed003.domain_unusual": _seed("003", _FRAMEWORK, "Is your domain unusual? Yes → Consider continued domain pre-training OR domain-specific fine-tuning"),
    "seed000.probe_worst_for_shift": _seed("000", _LP_VS_FT, "Worst for: tasks with significant distribution shift from pretraining"),
    "seed002.source_close": _seed("002", _TABLE, "Very small dataset (<1K examples), source ≈ target domain"),
    "seed002.moderate_shift": _seed("002", _TABLE, "Medium dataset, moderate domain shift", " (partial fine-tuning's row)"),
    "seed004.tiny_data": _seed("004", _FAILS, "With fewer than a few hundred examples, even fine-tuning a pre-trained model risks overfitting"),
    "seed003.few_labels": _seed("003", _FRAMEWORK, "Do you have >500 labeled examples? No → Use few-shot prompting + RAG"),
    "seed003.enough_labels": _seed("003", "When not to fine-tune", "Fine-tuning makes sense when you have labeled data", "; framework: \"Do you have >500 labeled examples?\""),
    "seed002.feature_extraction_band": _seed("002", _BY_SIZE, "Strategy A: Feature extraction (< 500 labelled examples)", "; table: \"Very small dataset (<1K examples)\""),
    "seed002.few_shot_finetune": _seed("002", "Zero-shot and few-shot transfer", "10–100 labelled examples, brief fine-tune", " reaches \"90–95% of full fine-tuning quality\""),
    "setfit.eight_per_class": "Tunstall et al. 2022 (SetFit): 8 labelled examples per class are competitive with RoBERTa-large fine-tuned on 3k examples",
    "seed002.partial_band": _seed("002", _BY_SIZE, "Strategy B: Partial fine-tuning (500–5K examples)"),
    "seed002.full_finetune_5k": _seed("002", _BY_SIZE, "Strategy C: Full fine-tuning (5K+ examples)"),
    "seed000.full_finetune_10k": _seed("000", _LP_VS_FT, "Best for: tasks with enough data (>10K examples), where task distribution differs from pretraining"),
    "seed003.format_critical": _seed("003", _FRAMEWORK, "Is format/style consistency critical?", " ... \"Yes → Fine-tune (probably LoRA/QLoRA for LLMs)\""),
    "seed003.format_not_critical": _seed("003", _FRAMEWORK, "Is format/style consistency critical? No → Few-shot prompting may be sufficient"),
    "seed003.frequent_updates": _seed("003", _FRAMEWORK, "Do you need to update the model frequently? Yes → Keep it modular: separate LoRA adapters per use case"),
    "seed003.no_frequent_updates": _seed("003", _FRAMEWORK, "No → Full fine-tune if you have the data"),
    "seed003.latency_cost": _seed("003", "When not to fine-tune", "when inference latency or cost makes system-prompt-heavy approaches expensive"),
    "seed004.missing_knowledge": _seed("004", _FAILS, "Retrieval-augmented generation (RAG) - providing relevant documents as context - is a better approach for knowledge updates."),
    "seed004.cpu_only": _seed("004", "Summary", "In-context learning None Inference only None Few examples; no GPU", "; full fine-tuning needs \"Very high\" GPU memory, feature extraction \"Low\""),
    "seed001.frozen_is_efficient": _seed("001", "How Transfer Learning Works", "This approach is computationally efficient since the pre-trained weights remain frozen."),
    "seed002.lora_memory": _seed("002", _TABLE, "LLMs where GPU memory is a constraint", "; LoRA trains \"Low-rank adapters only (0.1–1% params)\""),
    "seed002.lora_for_llms": _seed("002", _TABLE, "LLMs where GPU memory is a constraint", " (LoRA's row is about LLMs)"),
    "clip.zero_shot_matches_4_shot": "Radford et al. 2021 (CLIP): zero-shot CLIP matches a 4-shot linear probe on average (median 5.4 shots per class to match)",
    "clip.probe_beats_zero_shot": "Radford et al. 2021 (CLIP): the shots per class needed to match zero-shot have a median of 5.4; beyond that a linear probe usually wins",
    "clip.weak_on_specialised": "Radford et al. 2021 (CLIP): zero-shot is weak on specialised tasks (GTSRB, KITTI distance, satellite imagery)",
    "conse.probe_from_2_shots": "Norouzi et al. 2014 (ConSE) builds a zero-shot classifier from ImageNet class scores and word embeddings; it trails CLIP zero-shot (Radford et al. 2021), which itself only matches a 4-shot probe",
    "conse.one_shot": "Norouzi et al. 2014 (ConSE): zero-shot classification by convex combination of semantic embeddings needs no labelled example",
    "lpft.good_features_large_shift": "Kumar et al. 2022 (LP-FT, ICLR): with good features and large shift, fine-tuning is +2% ID but -7% OOD vs a linear probe; linear probe then fine-tune gains +1% ID and +10% OOD",
    "seed002.negative_transfer": _seed("002", "Practice questions", "use pretrained models only as initialisation, aggressive fine-tuning, or train from scratch if domains are truly incompatible"),
    "profile.baseline_beats_probe": _seed("002", "Practice questions", "Negative transfer: pretraining on source domain hurts performance on target domain compared to training from scratch", "; compared on your data by the profiler: pretrained-feature probe vs a no-transfer TF-IDF/pixel baseline on the same few shots (BENCHMARKS.md, part 2)"),
    "seed000.scratch_at_scale": _seed("000", "Data Efficiency of Transfer", "Training from scratch: need 1.28M images for competitive accuracy", " (1,000 classes: about 1,280 per class)"),
    "profile.probe_high": _seed("000", _LP_VS_FT, "Best for: evaluating representation quality, limited data, preventing catastrophic forgetting", _PROFILED),
    "profile.probe_weak": _seed("004", "The Four Fine-Tuning Regimes", "if the pre-trained representations aren’t well-suited to your task, the head can’t compensate", _PROFILED),
    "profile.zero_shot_matches_probe": "Radford et al. 2021 (CLIP): zero-shot can match a few-shot linear probe (4 shots on average); compared on your data by the profiler",
    "profile.probe_beats_zero_shot": "Radford et al. 2021 (CLIP): a linear probe overtakes zero-shot after a few shots per class (median 5.4); compared on your data by the profiler",
    "profile.zero_shot_high": _seed("002", "When zero-shot is enough", "zero-shot is competitive for: classification", _PROFILED),
    "profile.too_few_rows": "Brown et al. 2001 (interval estimation for a binomial proportion): an accuracy on n rows is uncertain by about 1/sqrt(n); under 8 rows the profiler's probe, baseline and zero-shot are not used",
    "profile.long_texts": "Reimers & Gurevych 2019 (Sentence-BERT): a transformer encoder reads at most its maximum sequence length and longer inputs are truncated (MiniLM: 256 word pieces); the truncated share and the probe on whole vs cut texts are measured on your data by the profiler",
    "profile.prompting_weak": "Zhao et al. 2021 (Calibrate Before Use): few-shot prompting's accuracy varies widely with the prompt and the label words, and small LMs are biased towards some labels; measured on your data by the profiler",
    "profile.prompting_matches_probe": "Brown et al. 2020 (GPT-3): in-context learning can compete with fine-tuned models on some classification tasks without gradient updates; measured on your data by the profiler",
    "profile.zero_shot_weak": _seed("003", "The zero-shot and few-shot connection", "out-of-distribution domains, and tasks with unusual output structures will still push on those limits", _PROFILED),
}  # fmt: skip
# Each citation, then the rule's section of docs/framework.md (heading: the rule id).
SOURCES: dict[str, str] = {rule: _pointed(cite, rule) for rule, cite in _CITATIONS.items()}

# ── Advice that is not a run: key -> (title, text template, source) ──────────────────────────────
_ADVICE: dict[str, tuple[str, str, str]] = {
    "domain_pretraining": (
        "Continue pre-training on unlabelled domain data (DAPT/TAPT)",
        "Your domain looks unusual{how}. Before or instead of more labels, continue pre-training the "
        "backbone on unlabelled {what} (domain-adaptive pre-training), or on the unlabelled inputs of "
        "this task (task-adaptive pre-training, useful when inputs are plentiful but labels scarce). "
        "Seed 002: DAPT 'gets 80% of the benefit at 5% of the compute' of domain pre-training from scratch.",
        "seed 002, 'Domain adaptation': DAPT for \"Biomedical, legal, code — domains with distinct "
        'vocabulary"; TAPT "When task data is plentiful but labels are scarce"',
    ),
    "rag": (
        "Retrieve instead of training knowledge in",
        "{why} Put the relevant documents in the prompt at inference time (retrieval-augmented "
        "generation); fine-tuning teaches a model to use what it knows, not new facts.",
        "seed 004, 'When Transfer Learning Fails': \"Retrieval-augmented generation (RAG) - providing "
        'relevant documents as context - is a better approach for knowledge updates."',
    ),
    "adapters_per_use_case": (
        "Keep one LoRA adapter per use case",
        "You update the model often: train a separate small LoRA adapter per use case or data "
        "refresh and swap adapters at inference, leaving the base weights untouched. LoRA learns "
        "less but forgets less than full fine-tuning (Biderman et al. 2024), so each refresh "
        "disturbs the base model little.",
        "seed 003, 'LoRA and why it matters': \"Multiple LoRA adapters can be trained for different "
        'tasks and swapped at inference"',
    ),
    "discriminative_lr": (
        "Use discriminative learning rates and gradual unfreezing",
        "Give early layers a lower learning rate than late ones (ULMFiT divides by 2.6 per layer "
        "group) and unfreeze from the top down: train the head first, then the last blocks, then "
        "the rest, watching validation accuracy after each stage.",
        "seed 001, 'How Transfer Learning Works': \"the earlier layers are fine-tuned with a lower "
        'learning rate (to avoid catastrophic forgetting of their general knowledge)"; "Progressive '
        'unfreezing is a hybrid strategy where layers are gradually unfrozen during training"',
    ),
    "calibration": (
        "Calibrate the prompt before trusting it",
        "Zero-shot and in-context predictions are biased toward some labels. Calibrate: estimate the "
        "label prior on a content-free input and divide it out, ensemble several prompt templates "
        "(CLIP gains about 5 points from prompt ensembling), and check accuracy on a held-out "
        "labelled sample before deploying.",
        "Zhao et al. 2021 ('Calibrate Before Use'): contextual calibration of few-shot prompts; "
        "Radford et al. 2021 (CLIP): prompt ensembling adds about 5 points",
    ),
    "lp_ft": (
        "Fit a linear probe first, then fine-tune (LP-FT)",
        "Your data sits far from the pre-training distribution. Fine-tuning straight from a random "
        "head distorts good features; train the head on frozen features first, then fine-tune the "
        "whole model from there for better out-of-distribution robustness.",
        "Kumar et al. 2022 (LP-FT, ICLR): linear probe then fine-tune beats fine-tuning by +1% ID "
        "and +10% OOD when features are good and the shift is large",
    ),
    "forgetting": (
        "Guard against catastrophic forgetting",
        "The recommended strategy changes the pretrained weights. Use a low learning rate, few "
        "steps with a validation set to stop early, mix some general data into training, or prefer "
        "a parameter-efficient method; tladvisor measures forgetting on a reference set after each run.",
        "seed 004, 'Catastrophic Forgetting': \"Low learning rate: smaller steps preserve more of the "
        'pre-trained weights."; "Data mixing: include some pre-training data in the fine-tuning mix."',
    ),
    "maintenance": (
        "Budget for owning a fine-tuned model",
        "A fine-tuned model must be re-trained when the base model or your data drifts and "
        "monitored for quality regression; a frozen backbone with a head or a prompt is cheaper to keep.",
        "seed 003, 'When not to fine-tune': \"A fine-tuned model is a model you own.\"",
    ),
    "collect_labels": (
        "Collect more labelled examples",
        "{why}",
        "seed 003, 'When not to fine-tune': \"typically hundreds to thousands of examples minimum "
        'for meaningful fine-tuning"; Tunstall et al. 2022 (SetFit): 8 per class are competitive',
    ),
    "two_classes": (
        "A classifier needs at least two classes",
        "The data has {n_classes} class(es): there is no decision to learn. Add labelled examples "
        "of at least one other class (or a 'none of these' class) before training anything.",
        "seed 000, 'The Three-Stage View': \"Replace task-specific head (e.g., swap language model "
        'head for classification head)"',
    ),
    "negative_transfer": (
        "Expect negative transfer: consider a specialised backbone or training from scratch",
        "The evidence says the pretrained features do not fit this domain{how}. Compare against the "
        "from-scratch baseline (tladvisor runs it), look for a backbone pre-trained on your domain, "
        "or fine-tune aggressively rather than freezing layers.",
        "seed 004, 'When Transfer Learning Fails': \"Specialized pre-training (BioBERT, ChemBERTa) "
        'often outperforms general pre-training for these domains."',
    ),
    "measure_unusualness": (
        "Measure how unusual your domain is",
        "{why} Run the profiler on your data: it measures the distance from the pre-training "
        "distribution and a cheap probe accuracy, and the advice then rests on measurements.",
        _seed("003", _FRAMEWORK, "Is your domain unusual?", " is the framework's first question"),
    ),
    "check_labels": (
        "Check the labels and the features",
        "A probe on the pretrained features scored near chance although the domain does not look "
        "unusual. Check for label noise or a label/column mix-up, then consider fine-tuning so the "
        "features can adapt.",
        "seed 004, 'The Four Fine-Tuning Regimes': \"if the pre-trained representations aren’t "
        'well-suited to your task, the head can’t compensate"',
    ),
}
# Each source, then the advice's section of docs/framework.md (heading: the advice key).
ADVICE: dict[str, tuple[str, str, str]] = {
    key: (title, text, _pointed(source, key)) for key, (title, text, source) in _ADVICE.items()
}

# ── What to expect of the winner: strategy -> note (see ``decision._accuracy_note``) ─────────────
ACCURACY_NOTES: dict[Strategy, str] = {
    Strategy.ZERO_SHOT: (
        "Seed 002: zero-shot reaches 70-85% of fine-tuned quality for frontier models."
    ),
    Strategy.PROMPTING: (
        "Seed 002: few-shot in-context learning reaches 80-90% of fine-tuned quality for "
        "frontier models (zero-shot 70-85%); it scales with model size, and SmolLM2-135M is small."
    ),
    Strategy.FEATURE_EXTRACTION: (
        "Seed 000: a linear probe is best for limited data and never forgets, but its ceiling "
        "sits below fine-tuning's under distribution shift."
    ),
    Strategy.PARTIAL_FINETUNE: (
        "Seed 002: partial fine-tuning sits between a probe and full fine-tuning, with only "
        "mild forgetting."
    ),
    Strategy.FULL_FINETUNE: (
        "Seed 002: full fine-tuning on 1K-1M examples is the 100% baseline the other strategies "
        "are compared with."
    ),
    Strategy.LP_FT: (
        "Kumar et al. 2022: LP-FT matches fine-tuning in distribution (+1%) and is more robust "
        "out of distribution (+10%)."
    ),
    Strategy.LORA: (
        "Seed 002: LoRA has a slightly lower ceiling than full fine-tuning; Biderman et al. "
        "2024: it learns less and forgets less."
    ),
    Strategy.SCRATCH: (
        "Seed 000: from scratch needs about 1.28M images for 1,000 ImageNet classes; expect "
        "it to trail transfer until the data is that large."
    ),
}
