"""``tladvisor predict``: every strategy's stored run, given its own test rows through the CLI,
reproduces the test accuracy it stored, exactly; and each way a prediction cannot be made ends
in a clear message, exit status 2, and an untouched database. The runs are the session's
``stored_runs`` (tests/stored_runs.py): real models on tiny data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from stored_runs import IMAGE_RUNS, TEXT_RUNS, rows_file, scored_rows

from tladvisor import cli
from tladvisor.store import Store

pytestmark = pytest.mark.usefixtures("isolated_embedding_cache")


@pytest.mark.slow
@pytest.mark.parametrize(
    "modality,strategy",
    [("text", s) for s in TEXT_RUNS] + [("image", s) for s in IMAGE_RUNS],
)
def test_predict_on_the_test_rows_reproduces_the_stored_accuracy(
    stored_runs, modality, strategy, tmp_path, capsys
):
    db, (run_id, ds, overrides) = stored_runs.db, stored_runs.runs[(modality, strategy)]
    rows = rows_file(ds, scored_rows(ds, strategy, overrides), tmp_path)
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
def test_predict_errors_are_clear_and_leave_the_database_as_it_was(stored_runs, tmp_path, capsys):
    db, root = stored_runs.db, stored_runs.root
    fe_text, ds, overrides = stored_runs.runs[("text", "feature_extraction")]
    fe_image = stored_runs.run_id("image", "feature_extraction")
    lora_text = stored_runs.run_id("text", "lora")
    texts = rows_file(ds, scored_rows(ds, "feature_extraction", overrides), tmp_path)
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
