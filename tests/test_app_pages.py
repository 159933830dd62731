"""AppTest checks of every dashboard page, against a real DuckDB file and real runs.

Each test points ``TLADVISOR_DB`` at its own file; the compare and detail pages read a store
filled by ``tladvisor.runner.execute`` (feature extraction on 160 Rotten Tomatoes snippets).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import dbfiles
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tladvisor import data, ui_state
from tladvisor.runner import execute
from tladvisor.store import Store
from tladvisor.strategies import LABELS, Strategy, applicable, get

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120  # the first page that loads MiniLM or the profile's models takes a while on a CPU


@pytest.fixture(scope="module")
def reviews() -> data.Dataset:
    full = data.load_sample("rotten_tomatoes")
    items, labels = full.items[:160], full.labels[:160]
    return data.Dataset("rt160", "text", items, labels, data.fingerprint_of("text", items, labels))


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory, reviews) -> Path:
    """Real finished runs (ada, bob) with different training sizes, a no-transfer baseline beside
    ada's (two strategies at one budget: the advice check has something to judge), and one failed
    run (bob)."""
    path = tmp_path_factory.mktemp("store") / "runs.duckdb"
    with Store(path) as store:
        for user, settings in (("ada", {"max_train": 40}), ("bob", {"max_train": 80, "seed": 1})):
            report = execute(store, reviews, "feature_extraction", settings, user=user)
            assert report.status == "done", report.error
        baseline = execute(store, reviews, "scratch", {"max_train": 40}, user="ada")
        assert baseline.status == "done", baseline.error
        failed = execute(
            store, reviews, "feature_extraction", {"model": "hf:/no/such/folder"}, user="bob"
        )
        assert failed.status == "failed"
    return path


@pytest.fixture
def app(tmp_path, monkeypatch):
    """A fresh app on an empty database of its own; call ``app(db)`` to use another file."""

    def make(db: Path | None = None) -> AppTest:
        monkeypatch.setenv("TLADVISOR_DB", str(db or tmp_path / "empty.duckdb"))
        return AppTest.from_file(APP, default_timeout=TIMEOUT)

    return make


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _as_shown(markdown: str) -> str:
    """Markdown text as a reader sees it: backslash escapes (``ui_state.plain``) dropped."""
    return re.sub(r"\\(.)", r"\1", markdown)


# -- who am I ----------------------------------------------------------------------------------


def test_app_opens_on_upload_page_offering_the_sample(app):
    at = app().run()
    _no_exception(at)
    assert at.radio(key="upload_source").value == "sample"
    assert at.selectbox(key="upload_sample").value == "rotten_tomatoes"
    assert at.button(key="upload_load_sample")
    assert at.sidebar.text_input(key="who_new")
    assert "New here?" in at.info[0].value


# Sidebar widgets are driven on a fresh app's first run and their effects read from session state
# and the URL; the browser test covers what is drawn there.


def test_a_typed_name_is_remembered_in_session_and_url(app):
    at = app().run()
    at.sidebar.text_input(key="who_new").input("  Ada   Lovelace ").run()
    _no_exception(at)
    assert at.session_state.user == "Ada Lovelace"
    assert at.query_params["user"] in ("Ada Lovelace", ["Ada Lovelace"])
    at.switch_page("views/compare.py").run()
    assert at.session_state.user == "Ada Lovelace"  # survives moving between pages
    assert at.query_params["user"] in ("Ada Lovelace", ["Ada Lovelace"])


def test_switch_person_forgets_the_name(app):
    at = app()
    at.query_params["user"] = "Ada"
    at.run()
    assert any("Working as **Ada**" in md.value for md in at.sidebar.markdown)
    at.sidebar.button(key="who_switch").click().run()
    _no_exception(at)
    assert at.session_state.user is None and "user" not in at.query_params


def test_a_bad_name_is_refused_with_a_message(app):
    at = app().run()
    at.sidebar.text_input(key="who_new").input("<script>").run()
    assert at.session_state.user is None
    assert "letters, digits" in at.session_state.who_error


def test_the_name_in_the_url_is_used(app):
    at = app()
    at.query_params["user"] = "bob"
    at.run()
    assert at.session_state.user == "bob"


def test_existing_teammates_can_be_picked(app, filled_db):
    at = app(filled_db).run()
    picker = at.sidebar.selectbox(key="who_pick")
    assert picker.options == ["ada", "bob"]
    picker.select("bob").run()
    assert at.session_state.user == "bob"


# -- upload & profile, advise ------------------------------------------------------------------


def test_loading_the_sample_through_the_page_profiles_it(app):
    at = app().run()
    at.checkbox(key="upload_with_models").uncheck()
    at.button(key="upload_load_sample").click().run()
    _no_exception(at)
    dataset = at.session_state.dataset
    assert dataset.name == "rotten_tomatoes" and len(dataset) == 2000
    assert at.session_state.measured is not None
    assert [m.value for m in at.metric][:2] == ["2,000", "2"]
    titles = [spec.get("title") for spec in _charts(at)]
    assert "Class balance" in titles
    assert at.dataframe[0].value["label"].isin(["positive", "negative"]).all()


@pytest.fixture(scope="module")
def measured(reviews):
    from tladvisor.profile import measure_profile

    return measure_profile(reviews, probe=False, unusualness=False)


def _with_data(at: AppTest, dataset, profile) -> AppTest:
    at.session_state["dataset"] = dataset
    at.session_state["measured"] = profile
    return at


def test_the_profile_shows_unusualness_with_its_meaning_and_signals(app, reviews, measured):
    from tladvisor.unusualness import Unusualness

    signals = {"fragmentation": 2.9, "embedding_distance": 0.8}
    scaled = {"fragmentation": 0.62, "embedding_distance": 0.87}
    unusual = Unusualness(0.745, signals, "Domain unusualness 0.75 (high): ...", 160, scaled)
    at = _with_data(app(), reviews, dataclasses.replace(measured, unusualness=unusual)).run()
    _no_exception(at)
    assert any("Domain unusualness: 0.74 (high)" in md.value for md in at.markdown)
    assert at.get("progress")[0].proto.value == 74
    assert "pretrained models learnt from (ordinary English)" in " ".join(
        c.value for c in at.caption
    )
    signals_table = at.dataframe[1].value  # after the preview
    assert list(signals_table["scaled 0-1"]) == [0.62, 0.87]


def test_advise_needs_a_data_set(app):
    at = app().run()
    at.switch_page("views/advise.py").run()
    _no_exception(at)
    assert "Upload & profile" in at.info[0].value


def test_advise_answers_change_the_recommendation(app, reviews, measured):
    at = _with_data(app(), reviews, measured)
    at.session_state["user"] = "ada"
    at.run()
    at.switch_page("views/advise.py").run()
    _no_exception(at)
    first = at.session_state.recommended
    assert at.success[0].value.startswith("### Recommended:")
    titles = [spec.get("title") for spec in _charts(at)]
    assert "Ranked alternatives" in titles
    assert "Expected accuracy against expected time" in titles
    assert at.toggle(key="advise_best_accuracy").value is False
    assert any("Expected accuracy" in md.value and "interval" in md.value for md in at.markdown)
    # 160 texts, nothing measured with a model: prompting, until output format is critical
    # (seed 003: "Yes -> Fine-tune") or inference latency matters.
    at.radio(key="advise_format_critical").set_value("Yes").run()
    _no_exception(at)
    after_format = at.session_state.recommended
    assert after_format != first, f"format_critical=Yes left the advice at {first}"
    assert LABELS[Strategy(after_format)] in at.success[0].value
    at.radio(key="advise_format_critical").set_value("Don't know").run()
    assert at.session_state.recommended == first
    at.checkbox(key="advise_latency_sensitive").check().run()
    assert at.session_state.recommended != first
    at.button(key="advise_run").click().run()
    _no_exception(at)
    assert at.selectbox(key="run_pick").value == at.session_state.recommended


@pytest.mark.slow
def test_choose_a_model_ranks_the_zoo_names_the_model_and_queues_the_top_k(app, reviews, measured):
    at = _with_data(app(), reviews, measured)
    at.session_state["user"] = "ada"
    at.run()
    at.switch_page("views/models.py").run()
    _no_exception(at)
    at.button(key="models_rank").click().run()
    _no_exception(at)
    ranking = at.session_state.rankings[reviews.fingerprint]
    assert {r["model"] for r in ranking} == {"minilm", "mpnet", "smollm2"}
    assert list(at.dataframe[0].value["model"]) == [r["model"] for r in ranking]
    titles = [spec.get("title") for spec in _charts(at)]
    assert "Score against cost: up and left is better" in titles
    at.switch_page("views/advise.py").run()  # it now names the model from this ranking
    _no_exception(at)
    names = {r["model"] for r in ranking}
    assert any(f"with {m}" in at.success[0].value for m in names | {"smollm2"})
    at.switch_page("views/models.py").run()
    before = len(at.session_state.my_runs)
    at.number_input(key="models_k").set_value(2).run()
    at.button(key="models_queue").click().run()
    _no_exception(at)
    queued = at.session_state.my_runs[before:]
    assert len(queued) == 2
    for run_id in queued:  # the test checks the queueing, not the runs
        ui_state.job_queue().cancel(run_id)


# -- run ---------------------------------------------------------------------------------------


def test_run_page_guards_and_lists_only_strategies_for_the_modality(app, reviews, measured):
    at = app().run()
    at.switch_page("views/run.py").run()
    assert "Upload & profile" in at.info[0].value
    at = _with_data(app(), reviews, measured).run()
    at.switch_page("views/run.py").run()
    assert "who you are" in at.info[0].value
    at.session_state["user"] = "ada"
    at.run()
    _no_exception(at)
    text_strategies = [LABELS[s] for s in Strategy if get(s).supports("text")]
    shown = [
        option.removesuffix("  (recommended)") for option in at.selectbox(key="run_pick").options
    ]
    assert shown == text_strategies
    at.selectbox(key="run_pick").select("feature_extraction").run()
    assert at.number_input(key="run_cfg_feature_extraction_max_train").value is None
    assert at.number_input(key="run_cfg_feature_extraction_seed").value == 0
    assert at.selectbox(key="run_model_feature_extraction").value == "minilm"


def test_run_page_refuses_bad_settings_without_writing(app, tmp_path, reviews, measured):
    at = _with_data(app(), reviews, measured)
    at.session_state["user"] = "ada"
    at.run()
    at.switch_page("views/run.py").run()
    at.selectbox(key="run_pick").select("feature_extraction").run()
    at.number_input(key="run_cfg_feature_extraction_max_train").set_value(1).run()
    at.button(key="run_submit").click().run()
    _no_exception(at)
    assert "max_train" in _as_shown(at.error[0].value)
    with Store(tmp_path / "empty.duckdb") as store:
        assert store.list_runs().empty


def test_run_page_shows_the_estimate_and_asks_before_a_long_run(app, tmp_path, reviews, measured):
    at = _with_data(app(), reviews, measured)
    at.session_state["user"] = "ada"
    at.run()
    at.switch_page("views/run.py").run()
    at.selectbox(key="run_pick").select("feature_extraction").run()
    _no_exception(at)
    assert any("Expected on this device" in md.value for md in at.markdown)
    assert not [box for box in at.checkbox if box.key == "run_confirm_feature_extraction"]
    assert not at.button(key="run_submit").disabled
    # 400 epochs of full fine-tuning: hours, so the run waits for a tick in the box.
    at.selectbox(key="run_pick").select("full_finetune").run()
    at.number_input(key="run_cfg_full_finetune_epochs").set_value(400).run()
    _no_exception(at)
    assert "minutes" in at.warning[0].value
    box = at.checkbox(key="run_confirm_full_finetune")
    assert box.label.startswith("Yes, start a run of about ")
    assert at.button(key="run_submit").disabled
    box.check().run()
    assert not at.button(key="run_submit").disabled
    with Store(tmp_path / "empty.duckdb") as store:
        assert store.list_runs().empty  # nothing queued until Start run is pressed


def test_run_page_queues_every_strategy_that_applies(app, tmp_path, reviews, measured):
    at = _with_data(app(), reviews, measured)
    at.session_state["user"] = "ada"
    at.run()
    at.switch_page("views/run.py").run()
    _no_exception(at)
    assert any("in all:** about" in md.value for md in at.markdown)
    boxes = [box for box in at.checkbox if box.key == "run_every_confirm"]
    if boxes:  # a long total waits for the tick, like one long run
        assert at.button(key="run_every").disabled
        boxes[0].check().run()
    before = len(at.session_state.my_runs)
    at.button(key="run_every").click().run()
    _no_exception(at)
    queued = at.session_state.my_runs[before:]
    queue = ui_state.job_queue()
    for run_id in queued:  # the test checks the queueing, not the runs
        queue.cancel(run_id)
    deadline = time.monotonic() + 300
    while queue.active() and time.monotonic() < deadline:  # the running one stops at its next
        time.sleep(0.2)  # check; a process that exits under a running job aborts
    assert not queue.active()
    assert len(queued) == len(applicable("text")) == len(set(queued))
    with Store(tmp_path / "empty.duckdb") as store:
        runs = store.list_runs()
    assert sorted(runs["strategy"]) == sorted(applicable("text"))
    assert set(runs["user_name"]) == {"ada"}


# -- compare and detail ------------------------------------------------------------------------


def test_compare_page_charts_real_runs_and_filters_by_person(app, filled_db):
    at = app(filled_db).run()
    at.switch_page("views/compare.py").run()
    _no_exception(at)
    specs = _charts(at)
    assert len(specs) >= 4
    text = json.dumps(specs)
    for needle in (
        "by strategy",
        "Pareto",
        "LogME",
        "Data efficiency",
        "Confusion matrix",
        "Was the advice right?",
    ):
        assert needle in text, needle
    table = at.dataframe[0].value
    assert set(table["user_name"]) == {"ada", "bob"} and set(table["status"]) == {"done"}
    at.multiselect(key="compare_user").select("bob").run()
    assert set(at.dataframe[0].value["user_name"]) == {"bob"}
    at.checkbox(key="compare_done").uncheck().run()
    assert set(at.dataframe[0].value["status"]) == {"done", "failed"}
    assert {b.key for b in at.get("download_button")} == {"compare_csv", "compare_parquet"}


def test_exports_are_made_only_when_a_signed_in_session_clicks(app, tmp_path):
    """No export is put under /media (served to anyone with the URL) while a page merely shows
    its button: the button carries a generator that runs on the click."""
    db, runs = _hostile_db(tmp_path)
    at = app(db).run()
    at.switch_page("views/compare.py").run()
    buttons = list(at.get("download_button"))
    at = app(db)
    at.query_params["run"] = runs["done"]
    at.run()
    at.switch_page("views/detail.py").run()
    _no_exception(at)
    buttons += list(at.get("download_button"))
    assert {b.key for b in buttons} == {"compare_csv", "compare_parquet", "detail_download"}
    for button in buttons:
        assert button.proto.url == "" and button.proto.deferred_file_id, button.key


def test_csv_export_neutralises_formula_cells():
    runs = pd.DataFrame(
        {"id": ["a"], "user_name": ["=HYPERLINK(1)"], "model": ["@x"], "accuracy": [-0.5],
         "config": [{"seed": 0}]}
    )  # fmt: skip
    text = ui_state.csv_bytes(runs).decode()
    assert "'=HYPERLINK(1)" in text and "'@x" in text
    assert ",-0.5," in text  # numbers stay numbers
    assert '""seed"": 0' in text  # dict columns exported as JSON


def test_detail_page_follows_the_url_and_only_the_owner_can_delete(app, filled_db, tmp_path):
    with Store(filled_db) as store:
        runs = store.list_runs(user="ada")
        total = len(store.list_runs())
    run_id = runs["id"].iloc[0]
    at = app(filled_db)
    at.query_params["run"] = run_id
    at.query_params["user"] = "bob"
    at.run()
    at.switch_page("views/detail.py").run()
    _no_exception(at)
    assert at.selectbox(key="detail_pick").value == run_id
    delete = at.button(key="detail_delete")
    assert delete.disabled and any("Only ada can delete" in c.value for c in at.main.caption)
    assert any("Confusion matrix" in json.dumps(spec) for spec in _charts(at))

    copy = tmp_path / "copy.duckdb"  # delete in a copy, so the shared store keeps its runs
    copy.write_bytes(filled_db.read_bytes())
    at = app(copy)
    at.query_params["run"] = run_id
    at.query_params["user"] = "ada"
    at.run()
    at.switch_page("views/detail.py").run()
    assert not at.button(key="detail_delete").disabled
    at.button(key="detail_delete").click().run()
    _no_exception(at)
    with Store(copy) as store:
        assert store.get_run(run_id) is None
        assert len(store.list_runs()) == total - 1


def test_detail_page_shows_a_failed_run_in_plain_words(app, filled_db):
    with Store(filled_db) as store:
        failed = store.list_runs(status="failed")["id"].iloc[0]
    at = app(filled_db)
    at.query_params["run"] = failed
    at.run()
    at.switch_page("views/detail.py").run()
    _no_exception(at)
    assert "local folder" in at.error[0].value
    assert os.environ["TLADVISOR_DB"] == str(filled_db)


def test_the_profile_shows_the_probe_with_its_baseline_and_zero_shot(app, reviews, measured):
    from tladvisor.profile import Probe

    probe = Probe("minilm", 64, 128, 32, 5, 0.66, 0.71, 0.5, 0.58, 0.64)
    at = _with_data(app(), reviews, dataclasses.replace(measured, probe=probe)).run()
    _no_exception(at)
    text = " ".join(md.value for md in at.markdown)
    assert "logistic regression 0.71" in text
    assert "no-transfer baseline (TF-IDF words or raw pixels) on the same rows scored 0.58" in text
    assert "scored 0.64 (80% interval 0.59-0.69) on all 160 probed rows" in text
    # Each measured accuracy carries its Wilson interval from the rows it was scored on.
    assert "best (80% interval 0.60-0.80)" in text
    assert "scored 0.58 (80% interval 0.47-0.69)" in text


def test_user_strings_show_as_text_and_look_alike_labels_merge_on_the_upload_page(app, tmp_path):
    """A file name and labels written as markdown image links stay text (no image, no link), and
    the look-alike note offers a merge that leaves one class per group."""
    pixel = "![n](http://127.0.0.1:9/x.png)"
    rows = [f"review {i},{lab}" for i, lab in enumerate(["good"] * 6 + ["Good"] * 2 + [pixel] * 8)]
    raw = ("text,label\n" + "\n".join(rows) + "\n").encode()
    dataset = data.load_text_csv(raw, name=pixel)
    at = app().run()
    at.checkbox(key="upload_with_models").uncheck()
    at.session_state["dataset"] = dataset
    at.session_state["measured"] = None
    at.run()
    _no_exception(at)
    shown = [h.value for h in at.header] + [c.value for c in at.caption]
    assert not any(pixel in text for text in shown)  # every occurrence is escaped
    assert any("\\!\\[n\\]" in text for text in shown)
    at.button(key="upload_merge_labels").click().run()
    _no_exception(at)
    assert at.session_state.dataset.class_counts == {"good": 8, pixel: 8}


# -- user strings are never markup -------------------------------------------------------------

PIXEL = "![n](http://127.0.0.1:9/x.png)"  # a markdown image: the browser would fetch it
TAG = '<img src="http://127.0.0.1:9/y.png">'
# Element kinds whose text fields are not markdown (values, tables, chart specs).
NOT_MARKDOWN = {"json", "code", "text", "dataframe", "arrow_data_frame", "arrow_vega_lite_chart"}
MARKDOWN_FIELDS = {"body", "label", "help", "text", "caption", "captions", "placeholder"}


def _hostile_db(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A store as an older version, an import or the CLI could have left it: a data set, a user,
    a model, class names, notes and errors written as markup, and a run with a saved head."""
    db = tmp_path / "hostile.duckdb"
    head = tmp_path / "artifacts" / "head"
    head.mkdir(parents=True)
    (head / "head.json").write_text("{}")
    runs = dbfiles.hostile(
        db, PIXEL, TAG, ("done", "failed", "cancelled"),
        artifact_path=str(head), notes=[f"label {PIXEL}"],
    )  # fmt: skip
    return db, runs


def _markdown_texts(node: object) -> list[str]:
    """Every text the page hands to its markdown renderer: bodies, labels, tooltips, captions."""
    out: list[str] = []
    for child in getattr(node, "children", {}).values():
        out += _markdown_texts(child)
    proto = getattr(node, "proto", None)
    if proto is not None and getattr(node, "type", None) not in NOT_MARKDOWN:
        out += _proto_texts(proto)
    return out


def _proto_texts(message: object) -> list[str]:
    out: list[str] = []
    for field, value in message.ListFields():
        values = list(value) if field.is_repeated else [value]
        if field.message_type is not None:
            for v in values:
                out += _proto_texts(v)
        elif field.name in MARKDOWN_FIELDS:
            out += [v for v in values if isinstance(v, str)]
    return out


def _assert_no_markup_from_users(at: AppTest, page: str) -> None:
    _no_exception(at)
    texts = _markdown_texts(at.main) + _markdown_texts(at.sidebar)
    raw = [t for t in texts if "![n](" in t or re.search(r"(?<!\\)<img", t)]
    assert not raw, (page, raw)


def test_user_strings_show_as_text_on_every_page(app, tmp_path):
    """Labels, a data set name, a user name, a model, notes and errors written as markdown or
    HTML reach no markdown renderer unescaped, on any page (the browser test checks that the
    browser then fetches nothing)."""
    db, runs = _hostile_db(tmp_path)
    rows = [f"review {i},{lab}" for i, lab in enumerate([PIXEL] * 6 + [TAG] * 6)]
    raw = ("text,label\n" + "\n".join(rows) + "\n").encode()
    dataset = data.load_text_csv(raw, name=PIXEL)
    from tladvisor.profile import measure_profile

    profile = measure_profile(dataset, probe=False, unusualness=False)
    at = _with_data(app(db), dataset, profile)
    at.session_state["user"] = PIXEL  # picked from the store's known users
    at.session_state["rankings"] = {
        dataset.fingerprint: [{"model": f"hf:{PIXEL}", "error": f"cannot read {PIXEL}"}]
    }
    at.run()
    _assert_no_markup_from_users(at, "upload")
    assert any("\\!\\[n\\]" in t for t in _markdown_texts(at.sidebar))  # shown, escaped
    for page in ("advise", "models", "run", "compare"):
        at.switch_page(f"views/{page}.py").run()
        _assert_no_markup_from_users(at, page)
    for run_id in (*runs.values(), PIXEL):  # a link naming no run quotes it back
        at = _with_data(app(db), dataset, profile)
        at.session_state["user"] = PIXEL
        at.query_params["run"] = run_id
        at.run()
        at.switch_page("views/detail.py").run()
        _assert_no_markup_from_users(at, f"detail {run_id}")
