"""A run's saved files: deleted with the run (and only by its owner), counted on disk, and
brought along by an import when reachable, with the runs whose files are not named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tladvisor import artifacts, cli
from tladvisor.store import Store


def _run_with_files(store: Store, root: Path, user: str = "ada", size: int = 3000) -> str:
    """A finished run whose artefact folder holds ``size`` bytes."""
    store.upsert_dataset("fp-a", "reviews", "text", 4, {"a": 2, "b": 2}, "test")
    run_id = store.create_run(
        user=user, dataset_fingerprint="fp-a", strategy="feature_extraction", model="minilm",
        config={}, seed=0,
    )  # fmt: skip
    folder = root / "artifacts" / run_id
    folder.mkdir(parents=True)
    (folder / "head.safetensors").write_bytes(b"x" * size)
    store.start_run(run_id, device="cpu", precision="fp32")
    store.finish_run(
        run_id, metrics=[("accuracy", 0.5, "test")], backend="test",
        details={"artifact_path": str(folder / "head.safetensors"), "classes": ["a", "b"]},
    )  # fmt: skip
    return run_id


def test_a_run_is_deleted_with_its_files_and_only_by_its_owner(tmp_path):
    with Store(tmp_path / "runs.duckdb") as store:
        mine = _run_with_files(store, tmp_path, size=3000)
        other = _run_with_files(store, tmp_path, size=1000)
        assert artifacts.disk_used(store) == (4000, 2)
        with pytest.raises(PermissionError):
            artifacts.delete_run(store, mine, user="bob")
        assert (tmp_path / "artifacts" / mine).is_dir()  # a refused delete removes nothing
        artifacts.delete_run(store, mine, user="ada")
        assert store.get_run(mine) is None
        assert not (tmp_path / "artifacts" / mine).exists()
        assert (tmp_path / "artifacts" / other / "head.safetensors").is_file()
        assert artifacts.disk_used(store) == (1000, 1)


def test_import_copies_reachable_files_and_names_the_runs_whose_files_are_not(tmp_path, capsys):
    team = tmp_path / "team"
    with Store(team / "runs.duckdb") as store:
        reachable = _run_with_files(store, team)
        lost = _run_with_files(store, team)
    shutil.rmtree(team / "artifacts" / lost)
    mine = tmp_path / "mine" / "runs.duckdb"
    mine.parent.mkdir()
    code = cli.main(["import", str(team / "runs.duckdb"), "--db", str(mine), "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert reachable in out and lost in out
    with Store(mine) as store:
        copied = Path(store.get_run(reachable)["details"]["artifact_path"])
        assert copied == mine.parent / "artifacts" / reachable / "head.safetensors"
        assert copied.read_bytes() == b"x" * 3000
        assert store.get_run(lost)["details"]["artifact_path"]  # the record stays as it was
        assert artifacts.disk_used(store) == (3000, 1)
    # Said in words without --json.
    again = tmp_path / "again.duckdb"
    assert cli.main(["import", str(team / "runs.duckdb"), "--db", str(again)]) == 0
    said = capsys.readouterr().out
    assert "1 runs' artefacts copied" in said and "not reachable" in said and lost[:8] in said


@pytest.mark.slow
def test_imported_runs_predict_from_their_copied_files(stored_runs, tmp_path, capsys):
    """A teammate's file, moved to another folder: its runs predict here once imported."""
    from stored_runs import rows_file, scored_rows

    run_id, ds, overrides = stored_runs.runs[("text", "lora")]
    mine = tmp_path / "mine.duckdb"
    assert cli.main(["import", str(stored_runs.db), "--db", str(mine)]) == 0
    capsys.readouterr()
    rows = rows_file(ds, scored_rows(ds, "lora", overrides), tmp_path)
    out = tmp_path / "out.csv"
    assert cli.main(["predict", run_id, str(rows), "-o", str(out), "--db", str(mine)]) == 0
    with Store(mine) as store:
        path = store.get_run(run_id)["details"]["artifact_path"]
        accuracy = store.get_run(run_id)["metrics"]["accuracy"]
    assert Path(path).is_relative_to(tmp_path / "artifacts")
    assert f"accuracy on the file's labels: {accuracy:.4f}" in capsys.readouterr().out
