"""Measure the per-unit costs ``tladvisor.estimate`` multiplies by, on this machine, into
``data/cost_calibration.json``.

Every number is a timing of the real code path a run takes: MiniLM ``TextEncoder.encode`` per
token at three lengths, one training step (forward, backward, clipping, AdamW) of the shared
classifier per token for full / partial (top 2 blocks) / LoRA training, EfficientNet-Lite0 per
image (inference and training), SmolLM2 ``LocalLMScorer.score`` batches at several widths, prefix
lengths and label sets, the logistic-regression heads, model loading and the forgetting
measurement. Beside them it stores a numpy matmul timing taken at the same time: at estimate time
the same matmul is timed again, and the ratio rescales every cost to the machine's speed now.

    .venv/bin/python scripts/calibrate_cost.py                # about 9 minutes on 2 busy cores
    .venv/bin/python scripts/calibrate_cost.py --only minilm  # one section, merged into the file
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = ROOT / "data" / "cost_calibration.json"
MODES = ("full", "partial", "lora")


def timed(fn, repeats: int = 3, warmup: int = 1) -> dict:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls, and the median
    matmul probe taken around them (a cost is stored in probe units, seconds / probe), and the
    1-minute load average after them: the estimate divides out the other jobs that shared the
    cores then (``tladvisor.estimate.contention``)."""
    from tladvisor.estimate import matmul_seconds

    for _ in range(warmup):
        fn()
    times, probes = [], [matmul_seconds()]
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        probes.append(matmul_seconds())
    return {
        "seconds": statistics.median(times),
        "probe": statistics.median(probes),
        "load": os.getloadavg()[0],
    }


def once(fn) -> tuple[object, dict]:
    """``fn()``'s result and its timing (one call, no warm-up), for what only happens once."""
    from tladvisor.estimate import matmul_seconds

    before = matmul_seconds()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    probe = statistics.median([before, matmul_seconds()])
    return result, {"seconds": seconds, "probe": probe, "load": os.getloadavg()[0]}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    from tladvisor.machine import machine_info

    return machine_info()


def texts_of_length(tokenizer, words: list[str], n_tokens: int, count: int) -> list[str]:
    """``count`` texts of about ``n_tokens`` MiniLM tokens (special tokens included)."""
    rng = np.random.default_rng(n_tokens)
    out = []
    for _ in range(count):
        picked = list(rng.choice(words, size=n_tokens))
        text = " ".join(picked)
        while len(tokenizer(text)["input_ids"]) > n_tokens:
            picked = picked[:-1]
            text = " ".join(picked)
        out.append(text)
    return out


# ---------------------------------------------------------------- MiniLM


def calibrate_text(words: list[str]) -> dict:
    from tladvisor import catalog
    from tladvisor.strategies import training
    from tladvisor.strategies.base import RunContext

    encoder, load = once(lambda: catalog.load("minilm", device="cpu"))
    tok = encoder.tokenizer
    encode = []
    for length in (16, 64, 128, 256):
        texts = texts_of_length(tok, words, length, 32)
        n_tok = sum(len(tok(t, truncation=True, max_length=256)["input_ids"]) for t in texts)
        t = timed(lambda texts=texts: encoder.encode(texts), repeats=2)
        encode.append({"length": length, "tokens": n_tok, **t})
        log(f"minilm encode L={length}: {t['seconds'] / n_tok * 1e6:.0f} us/token")
    texts = texts_of_length(tok, words, 128, 256)
    n_tok = sum(len(tok(x)["input_ids"]) for x in texts)
    tokenize = {"tokens": n_tok, **timed(lambda: encoder.n_truncated(texts), repeats=3)}
    # Every (mode, length) pair round-robin: other jobs on the cores slow them alike, so the
    # ratios between modes and lengths survive a busy machine.
    steps = {}
    for length in (32, 128):
        batch = texts_of_length(tok, words, length, 16)
        steps.update({(mode, length): make_step(encoder, batch, mode) for mode in MODES})
    timings = interleaved({key: fn for key, (fn, _) in steps.items()}, repeats=4)
    train: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for (mode, length), t in timings.items():
        n_tok = steps[mode, length][1]
        train[mode].append({"length": length, "tokens": n_tok, **t})
        log(f"minilm train {mode} L={length}: {t['seconds'] / n_tok * 1e6:.0f} us/token")
    training._frozen_reference.clear()
    module = encoder.fresh_module()
    _, forgetting = once(
        lambda: training.measure_forgetting(encoder, module, RunContext(device="cpu"), "minilm")
    )
    log(f"minilm forgetting: {forgetting['seconds']:.1f} s")
    return {
        "load": load,
        "encode": encode,
        "tokenize": tokenize,
        "train_step": train,
        "forgetting": forgetting,
        "params": int(sum(p.numel() for p in encoder.model.parameters())),
        "blocks": len(encoder.blocks(encoder.model)),
    }


def make_step(wrapper, items: list, mode: str):
    """One real training step of the shared classifier (forward, backward, clipping, AdamW) on
    ``items`` as a function, and the tokens (text) or images it holds."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch import nn

    from tladvisor.strategies.lora import plain_pointwise_convs, target_modules
    from tladvisor.strategies.training import (
        Inputs,
        TrainingConfig,
        build_classifier,
        discriminative_groups,
        set_train_mode,
        set_trainable,
    )

    model = build_classifier(wrapper, 2, 0)
    if mode == "lora":
        if model.modality == "image":
            plain_pointwise_convs(model)
        targets = target_modules(model, wrapper, 2)
        config = LoraConfig(
            r=8, lora_alpha=16, target_modules=targets, modules_to_save=["classifier"]
        )
        model = get_peft_model(model, config)
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": 1e-3}]
    else:
        set_trainable(model, wrapper, 2 if mode == "partial" else None)
        groups = discriminative_groups(model, wrapper, 1e-3, TrainingConfig())
    optimizer = torch.optim.AdamW(groups)
    params = [p for g in groups for p in g["params"] if p.requires_grad]
    inputs = Inputs(wrapper, items, 224)
    idx = np.arange(len(items))
    y = torch.zeros(len(items), dtype=torch.long)
    set_train_mode(model, freeze_bn=True)

    def step() -> None:
        logits = model(inputs.batch(idx))
        loss = nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    units = int(inputs.batch(idx)["attention_mask"].sum()) if inputs.texts else len(items)
    return step, units


def interleaved(steps: dict, repeats: int = 3) -> dict:
    """Median timings of several functions called round-robin, so that other jobs on the cores
    slow them alike (the modes' ratios are what matter most), each with the probe around it."""
    from tladvisor.estimate import matmul_seconds

    for fn in steps.values():
        fn()  # warm-up
    times: dict = {name: [] for name in steps}
    probes = [matmul_seconds()]
    for _ in range(repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        probes.append(matmul_seconds())
    probe, load = statistics.median(probes), os.getloadavg()[0]
    return {
        name: {"seconds": statistics.median(t), "probe": probe, "load": load}
        for name, t in times.items()
    }


# ---------------------------------------------------------------- EfficientNet


def calibrate_image() -> dict:
    from tladvisor import catalog, forgetting
    from tladvisor.data import load_sample
    from tladvisor.strategies import training
    from tladvisor.strategies.base import RunContext

    net, load = once(lambda: catalog.load("efficientnet-lite0", device="cpu"))
    images = list(load_sample("mnist_digits").items[:64])
    forward = {"images": len(images), **timed(lambda: net.forward_batches(images), repeats=2)}
    log(f"efficientnet forward: {forward['seconds'] / len(images) * 1e3:.1f} ms/image")
    prepare = {"images": len(images), **timed(lambda: training.image_array(images, 224))}
    steps = {mode: make_step(net, images[:16], mode) for mode in MODES}
    train = {}
    for mode, t in interleaved({mode: fn for mode, (fn, _) in steps.items()}).items():
        train[mode] = {"images": steps[mode][1], **t}
        log(f"efficientnet train {mode}: {t['seconds'] / steps[mode][1] * 1e3:.0f} ms/image")
    training._frozen_reference.clear()
    forgetting.load_image_reference("natural")  # reading the files is not the measurement
    module = net.fresh_module()
    _, forgot = once(
        lambda: training.measure_forgetting(
            net, module, RunContext(device="cpu"), "efficientnet-lite0"
        )
    )
    log(f"efficientnet forgetting: {forgot['seconds']:.1f} s")
    return {
        "load": load,
        "forward": forward,
        "prepare": prepare,
        "train_step": train,
        "forgetting": forgot,
        "params": int(sum(p.numel() for p in net.body.parameters())),
        "blocks": len(net.blocks(net.body)),
    }


# ---------------------------------------------------------------- heads


def calibrate_heads() -> dict:
    """Logistic-regression heads: the C search on dense features, TF-IDF and pixels."""
    from tladvisor.data import load_sample
    from tladvisor.strategies.feature_extraction import fit_linear_probe
    from tladvisor.strategies.scratch import no_transfer_features

    rng = np.random.default_rng(0)
    dense = []
    for n, d, k in ((400, 384, 3), (1000, 1280, 10)):
        centres = rng.normal(size=(k, d))
        y = rng.integers(0, k, n + n // 2)
        x = (centres[y] * 0.3 + rng.normal(size=(len(y), d))).astype(np.float32)
        t = timed(lambda x=x, y=y, n=n, k=k: fit_linear_probe(x[:n], y[:n], x[n:], y[n:], k), 1)
        dense.append({"n_train": n, "dim": d, "classes": k, **t})
        log(f"dense probe {n}x{d}x{k}: {t['seconds']:.2f} s")
    texts = list(load_sample("rotten_tomatoes").items[:1000])
    labels = np.arange(len(texts)) % 2

    def tfidf() -> None:
        x_tr, (x_va,) = no_transfer_features("text", texts[:800], [texts[800:]])
        fit_linear_probe(x_tr, labels[:800], x_va, labels[800:], 2, standardize=False)

    tfidf_t = {"n_items": len(texts), "classes": 2, **timed(tfidf, repeats=2)}
    log(f"tf-idf + LR on 1000 texts: {tfidf_t['seconds']:.2f} s")
    images = list(load_sample("mnist_digits").items[:600])
    digits = np.arange(len(images)) % 10

    def pixels() -> None:
        x_tr, (x_va,) = no_transfer_features("image", images[:500], [images[500:]])
        fit_linear_probe(x_tr, digits[:500], x_va, digits[500:], 10)

    pixels_t = {"n_items": len(images), "classes": 10, **timed(pixels, repeats=1)}
    log(f"pixels + LR on 600 images: {pixels_t['seconds']:.2f} s")
    return {"dense": dense, "tfidf": tfidf_t, "pixels": pixels_t}


# ---------------------------------------------------------------- SmolLM2


def calibrate_lm(words: list[str]) -> dict:
    from tladvisor import catalog
    from tladvisor.backbones import _model_cache_dir
    from tladvisor.data import load_sample
    from tladvisor.strategies.prompting import LocalLMScorer, build_prompts

    was_cached = any(_model_cache_dir().glob("smollm2-*/model.safetensors"))
    lm, load = once(lambda: catalog.load("smollm2", device="cpu"))
    log(f"smollm2 load ({'cached' if was_cached else 'from GGUF'}): {load['seconds']:.1f} s")
    scorer = LocalLMScorer(lm, batch_size=16)
    minilm = catalog.load("minilm", device="cpu").tokenizer
    tok = lm.tokenizer
    sample = list(load_sample("rotten_tomatoes").items[:300])
    lm_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in sample)
    mini_tokens = sum(len(minilm(t, add_special_tokens=False)["input_ids"]) for t in sample)
    label_sets = {
        "single": ["positive", "negative"],
        "multi": ["very negative review", "neutral or mixed", "very positive review"],
    }
    batches = []
    scorer.score(build_prompts(["warm up"], ["a", "b"], [], 2000)[0], ["a", "b"], lambda a, b: None)
    for length in (20, 120, 400):
        queries = texts_of_length(minilm, words, length, 16)
        for labels in label_sets.values():
            for shots in (0, 4) if length == 120 else (0,):
                demos = [(q[:300], labels[i % len(labels)]) for i, q in enumerate(queries[:shots])]
                prompts, _ = build_prompts(queries, labels, demos, 2000)
                ids = [scorer.render(m) for m in prompts]
                shared = shared_prefix(ids)
                label_ids = [tok(w, add_special_tokens=False)["input_ids"] for w in labels]
                t = timed(
                    lambda p=prompts, labels=labels: scorer.score(p, labels, lambda a, b: None),
                    repeats=1,
                    warmup=0,
                )
                batches.append(
                    {
                        "batch": len(prompts),
                        "width": max(len(x) for x in ids) - shared,
                        "shared": shared,
                        "labels": len(labels),
                        "label_tokens": sum(len(x) for x in label_ids),
                        "extra_label_steps": max(len(x) for x in label_ids) - 1,
                        **t,
                    }
                )
                log(f"smollm2 score {batches[-1]}")
    single = [
        scorer.render(m) for m in build_prompts(["one", "two"], label_sets["single"], [], 2000)[0]
    ]
    return {
        "load": load,
        "loaded_from": "cache" if was_cached else "gguf",
        "params": scorer.total_params,
        "tokens_per_minilm_token": lm_tokens / mini_tokens,
        # Prefix of a zero-shot prompt less its label words (each word and a comma): the
        # chat template, system turn and instruction.
        "prefix_tokens_without_labels": shared_prefix(single) - 4,
        # Tokens after the query text: end of turn and the assistant's header.
        "query_tail_tokens": len(single[0]) - shared_prefix(single) - 1,
        "batches": batches,
        "vocab": int(lm.model.config.vocab_size),
        "layers": int(lm.model.config.num_hidden_layers),
        "kv_dim": int(
            lm.model.config.num_key_value_heads
            * (lm.model.config.hidden_size // lm.model.config.num_attention_heads)
        ),
    }


def shared_prefix(ids: list[list[int]]) -> int:
    """What ``LocalLMScorer.score`` runs once: the longest prefix shared by every prompt."""
    shared = min(len(x) for x in ids) - 1
    for x in ids[1:]:
        n = 0
        while n < shared and x[n] == ids[0][n]:
            n += 1
        shared = n
    return shared


def gguf_load() -> dict:
    """Timing of dequantising SmolLM2 from its GGUF (a first run's cost), in a fresh cache."""
    import shutil
    import tempfile

    from tladvisor import backbones, catalog

    old = os.environ.get("TLADVISOR_CACHE")
    tmp = tempfile.mkdtemp()
    os.environ["TLADVISOR_CACHE"] = tmp
    try:
        _, t = once(
            lambda: backbones.CausalLM.from_gguf(
                "smollm2", catalog.smollm2_dir(), catalog.SMOLLM2_GGUF, "cpu"
            )
        )
    finally:
        if old is None:
            os.environ.pop("TLADVISOR_CACHE")
        else:
            os.environ["TLADVISOR_CACHE"] = old
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"smollm2 from GGUF: {t['seconds']:.1f} s")
    return t


def main() -> int:
    started = time.perf_counter()
    import torch  # noqa: F401  (the process base below counts torch and transformers)
    import transformers  # noqa: F401

    from tladvisor.data import load_sample
    from tladvisor.runner import _rss_mb

    base_mb = _rss_mb()
    words = sorted({w for t in load_sample("rotten_tomatoes").items[:500] for w in t.split()})
    sections = {
        "minilm": lambda: calibrate_text(words),
        "efficientnet": calibrate_image,
        "heads": calibrate_heads,
        "smollm2": lambda: {**calibrate_lm(words), "gguf_load": gguf_load()},
    }
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else []
    unknown = sorted(set(only) - set(sections))
    if unknown:
        raise SystemExit(f"--only takes a comma-separated list of {', '.join(sections)}")
    result = json.loads(OUT.read_text()) if only and OUT.exists() else {}
    result.update(
        {
            "about": "per-unit costs for tladvisor.estimate, written by scripts/calibrate_cost.py; "
            "each timing carries the matmul probe (tladvisor.estimate.matmul_seconds) taken "
            "around it",
            "machine": machine(),
            "process_base_mb": base_mb,
        }
    )
    for name, calibrate in sections.items():
        if not only or name in only:
            result[name] = calibrate()
    result["calibration_seconds"] = time.perf_counter() - started
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {OUT.relative_to(ROOT)} in {result['calibration_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
