"""The model zoo on a data set: every candidate ranked with timed scores, and the advice names one."""

from __future__ import annotations

import json

import pytest

from tladvisor import catalog
from tladvisor.cli import main
from tladvisor.data.samples import load_sample
from tladvisor.model_choice import choose_model


def _row(model: str, kind: str, logme: float, probe: float, ms: float, rows: int = 400) -> dict:
    return {
        "model": model,
        "title": model.upper(),
        "kind": kind,
        "scores": {"logme": logme, "linear_probe_accuracy": probe},
        "seconds": {"logme": 0.1},
        "cost": {"ms_per_item": ms, "params": 1_000_000, "weights_mb": 3.8},
        "rows": rows,
    }


BIG = _row("big", "text_encoder", -0.40, 0.80, 100.0)
SMALL = _row("small", "text_encoder", -0.55, 0.78, 20.0)
LM = _row("lm", "instruction_lm", -0.30, 0.79, 120.0)


def test_the_leader_by_logme_is_named_with_its_margin_and_cost():
    choice = choose_model([BIG, SMALL], "feature_extraction", preference="accuracy")
    assert choice.model == "big"
    assert "Ranked first by LogME" in choice.reasons[0] and "100.0 ms an item" in choice.reasons[0]
    assert "+0.150" in choice.reasons[1]  # LogME margin over the next


def test_balanced_takes_a_cheaper_model_within_the_probes_uncertainty():
    choice = choose_model([BIG, SMALL], "feature_extraction")
    assert choice.model == "small"  # 0.80 vs 0.78 on 400 rows: no real gap, a fifth of the cost
    assert any("within the uncertainty" in r for r in choice.reasons)
    # A real gap keeps the leader.
    clear = _row("small", "text_encoder", -0.55, 0.60, 20.0)
    assert choose_model([BIG, clear], "feature_extraction").model == "big"


def test_the_strategy_decides_which_candidates_apply():
    # The LM's hidden states feed a linear probe, but tladvisor cannot fine-tune through them.
    assert choose_model([LM, BIG], "feature_extraction", "accuracy").model == "lm"
    assert choose_model([LM, BIG], "lora", "accuracy").model == "big"
    for strategy in ("zero_shot", "prompting", "scratch"):
        assert choose_model([LM, BIG], strategy).model is None


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory):
    """100 real review snippets (50 a class), as a user's CSV."""
    ds = load_sample("rotten_tomatoes")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(ds.labels):
        by_class.setdefault(label, []).append(i)
    rows = [i for label in sorted(by_class) for i in by_class[label][:50]]
    path = tmp_path_factory.mktemp("zoo") / "reviews.csv"
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([ds.items[i], ds.labels[i]] for i in rows)
    return path


@pytest.mark.slow
def test_score_ranks_every_text_candidate_with_timed_scores(capsys, reviews_csv):
    code, out = run_cli(capsys, "score", str(reviews_csv), "--json")
    assert code == 0
    table = json.loads(out)
    assert [r["model"] for r in table if "error" not in r] != []
    assert {r["model"] for r in table} == {"minilm", "mpnet", "smollm2"}
    logmes = [r["scores"]["logme"] for r in table]
    assert logmes == sorted(logmes, reverse=True) and [r["rank"] for r in table] == [1, 2, 3]
    for row in table:
        assert {"logme", "h_score", "knn_accuracy", "linear_probe_accuracy"} <= set(row["scores"])
        assert set(row["scores"]) <= set(row["seconds"]) and row["seconds"]["total"] > 0
        assert row["cost"]["ms_per_item"] > 0 and row["rows"] == 100
        assert row["cost"]["params"] == catalog.get_spec(row["model"]).params
    # Review sentiment is what the sentence encoders were trained near: both probe above chance.
    probes = {r["model"]: r["scores"]["linear_probe_accuracy"] for r in table}
    assert probes["mpnet"] > 0.6 and probes["minilm"] > 0.55
    cost = {r["model"]: r["cost"]["ms_per_item"] for r in table}
    assert cost["mpnet"] > cost["minilm"]  # 109M against 23M parameters


@pytest.mark.slow
def test_advise_names_the_model_and_its_reasons(capsys, reviews_csv):
    code, out = run_cli(capsys, "advise", str(reviews_csv), "--json")
    assert code == 0
    advice = json.loads(out)
    assert advice["model"] in catalog.CATALOG
    ranked = [c["model"] for c in advice["model_candidates"]]
    if advice["strategy"] in ("feature_extraction", "lora", "partial_finetune", "full_finetune"):
        assert advice["model"] in ranked and advice["model_reasons"]
    for alt in advice["alternatives"]:
        e = alt["expected_accuracy"]
        assert e["low"] <= e["point"] <= e["high"]
    # --no-models skips the zoo: on 8 reviews a class, as the profile is not what is tested.
    import csv

    with reviews_csv.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    few = reviews_csv.with_name("few.csv")
    with few.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows[:8], *rows[50:58]])  # 8 of each class
    code, out = run_cli(capsys, "advise", str(few), "--json", "--no-models")
    assert code == 0 and json.loads(out)["model_candidates"] == []
