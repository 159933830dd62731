"""The runner and job queue on real data, a real model and a real DuckDB file."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tladvisor import data
from tladvisor.jobs import JobQueue
from tladvisor.runner import execute, record_queued_run
from tladvisor.store import Store


@pytest.fixture(scope="module")
def reviews() -> data.Dataset:
    """600 Rotten Tomatoes snippets from the bundled sample, balanced."""
    full = data.load_sample("rotten_tomatoes")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(full.labels):
        by_class.setdefault(label, []).append(i)
    keep = sorted(i for rows in by_class.values() for i in rows[:300])
    items = [full.items[i] for i in keep]
    labels = [full.labels[i] for i in keep]
    return data.Dataset("rt600", "text", items, labels, data.fingerprint_of("text", items, labels))


def test_feature_extraction_run_is_recorded_with_every_metric(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    report = execute(store, reviews, "feature_extraction", {"seed": 1}, user="ada")
    assert report.status == "done", report.error
    assert report.metrics["accuracy"] > 0.6  # MiniLM features: well above chance (0.5)
    assert 0 < report.metrics["macro_f1"] <= 1
    assert report.cost["seconds"] > 0 and report.cost["peak_mem_mb"] > 100
    assert 0 < report.cost["trainable_params"] < report.cost["total_params"]
    assert {"logme", "h_score", "knn_accuracy"} <= set(report.transferability)
    run = store.get_run(report.run_id)
    assert run["status"] == "done" and run["user_name"] == "ada"
    assert run["metrics"]["accuracy"] == pytest.approx(report.metrics["accuracy"])
    assert run["details"]["classes"] == ["negative", "positive"]
    assert sum(map(sum, run["details"]["confusion"])) == run["details"]["split"]["test"]
    assert "torch" in run["details"]["versions"]
    json.dumps(report.to_dict())  # the CLI's --json


def test_a_failing_run_leaves_a_failed_row_and_no_metrics(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    report = execute(
        store, reviews, "feature_extraction", {"model": "hf:/no/such/folder"}, user="ada"
    )
    assert report.status == "failed" and "local folder" in report.error
    run = store.get_run(report.run_id)
    assert run["status"] == "failed" and "local folder" in run["error"]
    assert run["metrics"] == {}


def test_bad_settings_raise_before_anything_is_written(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    with pytest.raises(ValueError, match="epochs"):
        execute(store, reviews, "feature_extraction", {"epochs": 0}, user="ada")
    with pytest.raises(ValueError, match="unknown setting"):
        execute(store, reviews, "feature_extraction", {"nonsense": 1}, user="ada")
    assert store.list_runs().empty


def test_time_limit_fails_the_run_cleanly(tmp_path, reviews, monkeypatch):
    monkeypatch.setenv("TLADVISOR_MAX_RUN_SECONDS", "0.000001")
    store = Store(tmp_path / "runs.duckdb")
    report = execute(store, reviews, "full_finetune", {"epochs": 1, "max_train": 40}, user="ada")
    assert report.status == "failed" and "time limit" in report.error
    assert store.get_run(report.run_id)["metrics"] == {}


def test_two_teammates_queue_runs_and_both_complete(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    jobs = JobQueue(store)
    try:
        first = jobs.submit(reviews, "feature_extraction", {"seed": 0}, user="ada")
        second = jobs.submit(reviews, "zero_shot", {}, user="grace")
        assert {s.run_id for s in jobs.active()} <= {first, second}
        assert jobs.wait(first, timeout=300).status == "done"
        assert jobs.wait(second, timeout=300).status == "done"
    finally:
        jobs.shutdown()
    runs = store.list_runs()
    assert sorted(runs["user_name"]) == ["ada", "grace"]
    assert set(runs["status"]) == {"done"} and runs["id"].is_unique


def test_cancel_before_start_marks_the_run_cancelled(tmp_path, reviews):
    store = Store(tmp_path / "runs.duckdb")
    jobs = JobQueue(store)
    try:
        running = jobs.submit(reviews, "full_finetune", {"epochs": 1, "max_train": 60}, user="ada")
        waiting = jobs.submit(reviews, "feature_extraction", {}, user="ada")
        assert jobs.cancel(waiting)
        assert jobs.cancel(running)
        assert jobs.wait(running, timeout=300).status == "cancelled"
        assert jobs.wait(waiting, timeout=60).status == "cancelled"
    finally:
        jobs.shutdown()
    assert set(store.list_runs()["status"]) == {"cancelled"}


def test_memory_cap_fails_the_run_with_its_message_and_keeps_earlier_runs(
    tmp_path, reviews, monkeypatch
):
    import resource

    from tladvisor.run_limits import rss_mb

    monkeypatch.delenv("TLADVISOR_MAX_RUN_MEMORY_MB", raising=False)
    store = Store(tmp_path / "runs.duckdb")
    earlier = execute(store, reviews, "scratch", {}, user="ada", with_transferability=False)
    assert earlier.status == "done", earlier.error
    ceiling = resource.getrlimit(resource.RLIMIT_DATA)
    # 64 MB above this process now: fine-tuning MiniLM needs its gradients and Adam's two moments,
    # three more copies of its 90 MB of weights, so it must go past the cap.
    cap = round(rss_mb() + 64)
    monkeypatch.setenv("TLADVISOR_MAX_RUN_MEMORY_MB", str(cap))
    capped = execute(
        store,
        reviews,
        "full_finetune",
        {"epochs": 1, "max_train": 40},
        user="ada",
        with_transferability=False,
    )
    assert capped.status == "failed"
    assert f"memory limit of {cap} MB (TLADVISOR_MAX_RUN_MEMORY_MB)" in capped.error
    assert "raise the cap" in capped.error
    assert resource.getrlimit(resource.RLIMIT_DATA) == ceiling  # the process is itself again
    runs = store.list_runs()
    assert dict(zip(runs["id"], runs["status"], strict=True)) == {
        earlier.run_id: "done",
        capped.run_id: "failed",
    }
    assert store.get_run(earlier.run_id)["metrics"]["accuracy"] == pytest.approx(
        earlier.metrics["accuracy"]
    )
    failed = store.get_run(capped.run_id)
    assert failed["error"] == capped.error and failed["metrics"] == {}
    store.close()


@pytest.mark.slow  # encodes 15,400 texts with MiniLM: a minute or more on two cores
def test_transferability_on_many_rows_samples_the_accuracies_and_says_so(tmp_path, monkeypatch):
    from tladvisor.data import TaskData, split_dataset
    from tladvisor.runner import transferability_scores
    from tladvisor.transferability.knn import MAX_ROWS

    monkeypatch.setenv("TLADVISOR_CACHE", str(tmp_path / "cache"))
    words = {"good": ["good", "great", "fine"], "bad": ["bad", "awful", "poor"]}
    labels = ["good" if i % 2 == 0 else "bad" for i in range(15_400)]
    items = [f"{words[label][i % 3]} {i % 97}" for i, label in enumerate(labels)]
    ds = data.Dataset("many", "text", items, labels, data.fingerprint_of("text", items, labels))
    task = TaskData(ds, split_dataset(ds, seed=0))
    assert len(task.split.train) > MAX_ROWS
    notes: list[str] = []
    scores = transferability_scores(task, "tfidf", "cpu", notes)
    assert scores["knn_accuracy"] > 0.9 and scores["linear_probe_accuracy"] > 0.9
    assert notes == [
        f"kNN and linear-probe accuracy scored on a stratified sample of {MAX_ROWS:,} of the "
        f"{len(task.split.train):,} training rows (their cost grows faster than the rows); the "
        "other transferability scores use every row"
    ]


# ------------------------------------------------------------- one example a class: zero-shot only


def one_photo_a_class_zip() -> bytes:
    """A zero-shot check: five photos from scikit-image, each its own class, as class folders."""
    from PIL import Image
    from skimage import data as photos

    pictures = {
        "astronaut": photos.astronaut(),
        "coffee": photos.coffee(),
        "cat": photos.chelsea(),
        "rocket": photos.rocket(),
        "camera": photos.camera(),  # the cameraman: greyscale, converted to RGB by the loader
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, pixels in pictures.items():
            png = io.BytesIO()
            Image.fromarray(pixels).resize((192, 144)).save(png, format="PNG")
            zf.writestr(f"{name}/1.png", png.getvalue())
    return buf.getvalue()


@pytest.fixture(scope="module")
def five_photos() -> data.Dataset:
    return data.load_image_zip(one_photo_a_class_zip(), name="five-photos")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLADVISOR_CACHE", str(tmp_path / "cache"))


def test_zero_shot_scores_every_photo_of_a_one_example_a_class_set(tmp_path, five_photos, cache):
    assert any("5 distinct labels for 5 examples" in n for n in five_photos.notes)
    store = Store(tmp_path / "runs.duckdb")
    report = execute(store, five_photos, "zero_shot", {}, user="ada")
    assert report.status == "done", report.error
    assert report.backend == "ConSE(efficientnet-lite0 top-10, minilm)"
    run = store.get_run(report.run_id)
    assert run["status"] == "done"
    assert run["metrics"]["accuracy"] == pytest.approx(report.metrics["accuracy"])
    assert 0 <= run["metrics"]["accuracy"] <= 1
    assert run["metrics"]["n_test"] == 5 and run["metrics"]["n_train"] == 0
    assert run["details"]["split"] == {"train": 0, "val": 0, "test": 5}
    assert sum(map(sum, run["details"]["confusion"])) == 5
    assert any("scored on all 5 examples" in n for n in report.notes)
    print(f"ConSE on five photos, one a class: accuracy {report.metrics['accuracy']:.2f}")


@pytest.mark.parametrize(
    "strategy",
    ["feature_extraction", "partial_finetune", "full_finetune", "lp_ft", "lora", "scratch"],
)
def test_training_strategies_refuse_one_example_a_class_and_write_nothing(
    tmp_path, five_photos, strategy
):
    store = Store(tmp_path / "runs.duckdb")
    with pytest.raises(data.DataError) as refused:
        record_queued_run(store, five_photos, strategy, {}, user="ada")
    message = str(refused.value)
    assert f"{strategy} trains on part of the data and tests on the rest" in message
    assert "5 examples are too few to split 5 classes" in message
    assert "Add examples so that each class has several" in message
    assert "or run zero_shot, which trains on nothing" in message
    assert store.list_runs().empty and store.list_datasets().empty


def test_a_refused_training_run_leaves_the_other_runs_alone(tmp_path, five_photos, cache):
    store = Store(tmp_path / "runs.duckdb")
    done = execute(store, five_photos, "zero_shot", {}, user="ada")
    before = store.list_runs()
    with pytest.raises(data.DataError, match="feature_extraction trains on part of the data"):
        execute(store, five_photos, "feature_extraction", {}, user="grace")
    after = store.list_runs()
    assert after["id"].tolist() == before["id"].tolist() == [done.run_id]
    assert after["status"].tolist() == ["done"]


@pytest.mark.slow
def test_prompting_runs_on_one_text_a_class_and_refuses_demonstrations(tmp_path, cache):
    topics = "text,label\nthe striker scored twice,sport\nrates rose again,finance\n"
    topics += (
        "a new vaccine trial,health\nthe band's new album,music\nheavy rain tomorrow,weather\n"
    )
    ds = data.load_text_csv(topics.encode(), name="topics")
    store = Store(tmp_path / "runs.duckdb")
    with pytest.raises(data.DataError, match="prompting with shots=1 takes its demonstrations"):
        execute(store, ds, "prompting", {"shots": 1}, user="ada")
    with pytest.raises(data.DataError, match="or run zero_shot or prompting"):
        execute(store, ds, "lora", {}, user="ada")
    assert store.list_runs().empty
    report = execute(store, ds, "prompting", {}, user="ada", with_transferability=False)
    assert report.status == "done", report.error
    run = store.get_run(report.run_id)
    assert run["metrics"]["n_test"] == 5 and 0 <= run["metrics"]["accuracy"] <= 1


@pytest.mark.slow
def test_cli_runs_zero_shot_on_a_zip_of_one_photo_a_class(tmp_path, capsys, cache):
    from tladvisor.cli import main

    archive = tmp_path / "five.zip"
    archive.write_bytes(one_photo_a_class_zip())
    db = str(tmp_path / "cli.duckdb")
    code = main(["--db", db, "run", str(archive), "--strategy", "zero_shot", "--json"])
    out, _ = capsys.readouterr()
    report = json.loads(out)
    assert code == 0 and report["status"] == "done", report
    assert 0 <= report["metrics"]["accuracy"] <= 1
    code = main(["--db", db, "run", str(archive), "--strategy", "lora", "--json"])
    _, err = capsys.readouterr()
    assert code == 2 and "lora trains on part of the data" in err and "run zero_shot" in err
    assert len(Store(db).list_runs()) == 1
