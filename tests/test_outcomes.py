"""Tests for tladvisor.outcomes: intervals, the learning-curve fit, predictions, and how they
decide the advice (tladvisor.decision with an outcome model)."""

from __future__ import annotations

import json
import math

import pytest

from tladvisor import outcomes
from tladvisor.decision import TaskProfile, recommend
from tladvisor.outcomes import Anchors, Observation, fit, predict, wilson
from tladvisor.strategies.names import Strategy

S = Strategy


def test_wilson_matches_the_published_formula() -> None:
    # 8 of 10 at 95% (z = 1.96): Wilson gives 0.490-0.943 (Brown, Cai & DasGupta 2001, eq. 4).
    low, high = wilson(0.8, 10, z=1.96)
    assert low == pytest.approx(0.4902, abs=1e-3)
    assert high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(1.0, 50)[1] == pytest.approx(1.0) and wilson(0.0, 50)[0] == pytest.approx(0.0)
    assert wilson(0.5, 0) == (0.0, 1.0)
    # More rows, narrower interval.
    assert wilson(0.7, 400)[1] - wilson(0.7, 400)[0] < wilson(0.7, 40)[1] - wilson(0.7, 40)[0]


def test_a_gap_counts_only_beyond_its_uncertainty() -> None:
    assert outcomes.gap_is_real(0.97, 0.72, 61, 61)  # the speeches: far outside
    assert not outcomes.gap_is_real(0.65, 0.52, 24, 24)  # 13 points on 24 rows: noise
    assert outcomes.gap_is_real(0.65, 0.52, 400, 400)  # the same 13 points on 400 rows: real
    assert not outcomes.gap_is_real(1.0, 1.0, 100, 100)


def test_error_space_round_trips() -> None:
    for chance in (0.5, 0.1):
        for acc in (chance + 0.05, 0.7, 0.95):
            assert outcomes.from_error(outcomes.to_error(acc, chance), chance) == pytest.approx(acc)
    # Below chance is kept (zero-shot lands there), up to 1 / (1 - chance) at accuracy 0.
    assert outcomes.to_error(0.2, 0.5) == pytest.approx(1.6)
    assert outcomes.from_error(outcomes.to_error(0.2, 0.5), 0.5) == pytest.approx(0.2)
    assert outcomes.to_error(0.0, 0.5) == pytest.approx(2.0)


def _synthetic(alpha: float, beta: float, datasets: int = 4) -> list[Observation]:
    """Observations that follow the model exactly: log e_S = log e_probe + alpha + beta * x."""
    obs = []
    for d in range(datasets):
        probe = 0.6 + 0.05 * d
        for k in (8, 16, 64, 256):
            anchors = Anchors(chance=0.5, per_class=k, probe=probe, shots=8, rows=200)
            anchor, _ = anchors.value("probe")
            e = outcomes.to_error(anchor, 0.5) * math.exp(alpha + beta * math.log2(k / 8))
            obs.append(Observation(f"d{d}", "text", S.LORA, outcomes.from_error(e, 0.5), anchors))
    return obs


def test_a_curve_that_rises_with_more_labels_is_held_flat() -> None:
    """More labels never raise the predicted error: a rising fit (noise on a few sets) is clipped
    to 0, so a prediction never falls below the same strategy's prediction at fewer labels."""
    model = fit(_synthetic(alpha=-0.1, beta=0.3))
    curve = model.anchored["text/lora"]
    assert curve.beta == 0.0
    assert curve.gamma <= 0.0
    few, many = (
        predict(model, "text", S.LORA, Anchors(chance=0.5, per_class=k, probe=0.7, shots=8,
                                               rows=200)).point
        for k in (8, 256)
    )  # fmt: skip
    assert many == pytest.approx(few)


def test_fit_recovers_a_known_curve_and_predicts_inside_its_interval() -> None:
    model = fit(_synthetic(alpha=-0.1, beta=-0.2))
    curve = model.anchored["text/lora"]
    # Ridge shrinkage of the slopes moves a noiseless fit by a hair, no more.
    assert curve.alpha == pytest.approx(-0.1, abs=0.02)
    assert curve.beta == pytest.approx(-0.2, abs=0.02)
    assert curve.gamma == pytest.approx(0.0, abs=0.05)
    assert curve.datasets == 4
    anchors = Anchors(chance=0.5, per_class=64, probe=0.7, shots=8, rows=200)
    pred = predict(model, "text", S.LORA, anchors)
    anchor, _ = anchors.value("probe")  # the Wilson centre: 0.7 on 200 rows, barely moved
    assert anchor == pytest.approx(0.7, abs=0.005)
    expected = outcomes.from_error(outcomes.to_error(anchor, 0.5) * math.exp(-0.1 - 0.2 * 3), 0.5)
    assert pred.point == pytest.approx(expected, abs=0.01)
    assert pred.low <= pred.point <= pred.high
    # The interval carries the anchor's sampling error: fewer rows, wider.
    few = predict(model, "text", S.LORA, Anchors(0.5, 64, probe=0.7, shots=8, rows=20))
    assert few.high - few.low > pred.high - pred.low


def test_an_anchor_needs_enough_rows_and_is_shrunk_towards_a_half() -> None:
    assert Anchors(0.5, 8, probe=1.0, rows=2).value("probe") == (None, 2)
    value, rows = Anchors(0.5, 8, probe=1.0, rows=20).value("probe")
    assert rows == 20 and 0.9 < value < 1.0


def test_unmeasured_predictions_fall_back_honestly() -> None:
    empty = predict(outcomes.OutcomeModel(), "image", S.SCRATCH, Anchors(chance=0.1, per_class=10))
    assert (empty.low, empty.high) == (0.1, 1.0)
    model = fit(_synthetic(-0.1, -0.2))
    unanchored = predict(model, "text", S.LORA, Anchors(chance=0.5, per_class=64))
    assert "nothing measured" in unanchored.basis
    assert unanchored.low <= unanchored.point <= unanchored.high


def test_model_round_trips_through_json(tmp_path) -> None:
    model = fit(_synthetic(-0.1, -0.2), source="test")
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    assert outcomes.load_model(path).to_dict() == model.to_dict()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="regenerate it"):
        outcomes.load_model(tmp_path / "bad.json")
    assert outcomes.load_model(tmp_path / "absent.json").anchored == {}


# ── the advice with predictions ───────────────────────────────────────────────────────────────
def _model() -> outcomes.OutcomeModel:
    """A model in which fine-tuning gains 30% of the probe's error, scratch follows the baseline."""
    curves = {
        "text/feature_extraction": (0.0, -0.05),
        "text/lora": (-0.3, -0.05),
        "text/partial_finetune": (-0.2, -0.05),
        "text/full_finetune": (-0.2, -0.05),
        "text/lp_ft": (-0.2, -0.05),
        "text/scratch": (0.0, -0.1),
        "text/zero_shot": (0.0, 0.0),
        "text/prompting": (0.3, 0.0),
    }
    return outcomes.OutcomeModel(
        anchored={
            k: outcomes.Curve(alpha=a, beta=b, q_low=-0.15, q_high=0.15, n=20, datasets=5)
            for k, (a, b) in curves.items()
        },
        source="test",
    )


def _measured(**kw) -> TaskProfile:
    base = dict(
        modality="text",
        n_labeled=600,
        n_classes=2,
        domain_unusualness=0.2,
        unusualness_measured=True,
        probe_accuracy=0.75,
        baseline_accuracy=0.70,
        zero_shot_accuracy=0.6,
        probe_rows=200,
        probe_shots=64,
        zero_shot_rows=328,
        gpu_memory_gb=0.0,
    )
    return TaskProfile(**(base | kw))


def test_every_alternative_carries_an_ordered_interval_and_cost() -> None:
    costs = {s: {"seconds": 10.0 * (i + 1), "peak_memory_mb": 100.0} for i, s in enumerate(S)}
    rec = recommend(_measured(), outcome_model=_model(), costs=costs)
    out = rec.to_dict()
    assert out["decided_by"] == "predictions"
    for alt in out["alternatives"]:
        e = alt["expected_accuracy"]
        assert e["low"] <= e["point"] <= e["high"], alt
        assert alt["expected_cost"]["seconds"] > 0
    # After the pick, ranked by expected accuracy.
    points = [a["expected_accuracy"]["point"] for a in out["alternatives"][1:]]
    assert points == sorted(points, reverse=True)


def test_a_measured_baseline_gap_wins_on_a_familiar_looking_domain() -> None:
    rec = recommend(
        _measured(n_labeled=189, probe_accuracy=0.72, baseline_accuracy=0.97, probe_rows=61),
        outcome_model=_model(),
    )
    assert rec.strategy is S.SCRATCH
    assert "profile.baseline_beats_probe" in {r.rule for r in rec.reasons}


def test_cost_aware_choice_and_the_best_accuracy_setting() -> None:
    # LoRA is expected best, partial fine-tuning under a point behind it; LoRA costs 180x more.
    costs = {s: {"seconds": 5.0} for s in S} | {S.LORA: {"seconds": 900.0}}
    profile = _measured(probe_accuracy=0.90, baseline_accuracy=0.6, probe_rows=200)
    balanced = recommend(profile, outcome_model=_model(), costs=costs)
    best = recommend(profile, outcome_model=_model(), costs=costs, preference="accuracy")
    assert best.strategy is S.LORA
    assert balanced.strategy is not S.LORA
    assert balanced.alternatives[0].expected.point >= best.alternatives[0].expected.low
    assert balanced.alternatives[0].expected.point >= best.alternatives[0].expected.point - 0.01
    reason = next(r for r in balanced.reasons if r.rule == "predicted.cheaper_within_interval")
    assert "saving about" in reason.text
    # Nearly two points behind is more than "balanced" trades (decision.TRADE_MAX).
    weaker = _measured(probe_accuracy=0.80, baseline_accuracy=0.6, probe_rows=40)
    kept = recommend(weaker, outcome_model=_model(), costs=costs)
    assert kept.strategy is S.LORA
    assert kept.alternatives[1].expected.point < kept.alternatives[0].expected.point - 0.01
    with pytest.raises(ValueError, match="preference"):
        recommend(profile, preference="cheap")


def test_without_measurements_the_rules_decide() -> None:
    rec = recommend(
        TaskProfile(modality="text", n_labeled=20000, n_classes=5, gpu_memory_gb=6),
        outcome_model=_model(),
    )
    assert rec.decided_by == "rules"
    assert rec.strategy is S.LORA  # seed002.lora_memory, as the rule table says
    assert all(a.expected is not None for a in rec.alternatives)


def test_fine_tuning_is_anchored_on_the_openings_when_the_probe_chunked() -> None:
    """Long texts: the probe read them whole (chunks), fine-tuning reads only the opening."""
    whole = _measured(probe_accuracy=0.9, probe_rows=100, truncated_share=0.9)
    cut = _measured(
        probe_accuracy=0.9, probe_rows=100, truncated_share=0.9, probe_truncated_accuracy=0.6
    )
    model = _model()
    lora_whole = next(
        a for a in recommend(whole, outcome_model=model).alternatives if a.strategy is S.LORA
    )
    rec = recommend(cut, outcome_model=model)
    lora_cut = next(a for a in rec.alternatives if a.strategy is S.LORA)
    fe_cut = next(a for a in rec.alternatives if a.strategy is S.FEATURE_EXTRACTION)
    assert lora_cut.expected.point < lora_whole.expected.point - 0.1
    assert fe_cut.expected.point > lora_cut.expected.point  # FE keeps the whole-text anchor
    assert "profile.long_texts" in {r.rule for r in rec.reasons}
