"""The headless interface: ``tladvisor advise | run | predict | export | score | runs | import |
check | models | serve``.

Every command has ``--help``; ``--json`` prints one JSON object (or list) on stdout and nothing else.
Bad input, and a database file that cannot be used, exit with status 2 and a one-paragraph message
on stderr, never a traceback; ``check`` exits with 1 when it finds a problem.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from tladvisor.strategies.names import Strategy

EXIT_BAD_INPUT = 2
EXIT_UNHEALTHY = 1  # `tladvisor check` found a problem


class CliError(Exception):
    """Shown to the user as 'error: ...' with exit status 2."""


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


INTERRUPTED = "the process running it stopped (killed or crashed) before it finished"


def _open_store(args: argparse.Namespace):
    """Open the store; runs another process left 'running' are marked interrupted (DuckDB's file
    lock means no live process can still be running them once we hold the file)."""
    from tladvisor.store import Store

    store = Store(args.db)
    store.mark_interrupted(INTERRUPTED)
    return store


def _add_data_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "data",
        nargs=None if required else "?",
        help="labelled CSV, folder-per-class ZIP "
        "or folder, or sample:NAME (sample:rotten_tomatoes, sample:mnist_digits)",
    )
    p.add_argument("--text-col", help="text column (default: auto-detected)")
    p.add_argument("--label-col", help="label column (default: auto-detected)")
    p.add_argument("--image-col", help="image file-name column of an image CSV")
    p.add_argument("--images", help="folder or ZIP with the images named in the CSV")
    p.add_argument(
        "--merge-labels",
        action="store_true",
        help="merge labels that differ only by case, spacing, character form or numeric "
        "spelling (café/Café, 1/1.0/01) into their most frequent spelling",
    )


def _load_data(args: argparse.Namespace):
    from tladvisor import data

    ds = _load_source(args)
    return data.merge_lookalikes(ds) if getattr(args, "merge_labels", False) else ds


def _load_source(args: argparse.Namespace):
    from tladvisor import data

    source = args.data
    if source.startswith("sample:"):
        return data.load_sample(source.split(":", 1)[1])
    path = Path(source)
    if not path.exists():
        raise CliError(f"no such file or folder: {source}")
    if args.images:
        return data.load_image_csv(
            path, args.images, image_col=args.image_col, label_col=args.label_col, name=path.name
        )
    if path.is_dir() or path.suffix.lower() == ".zip":
        return (
            data.load_image_zip(path, name=path.name)
            if path.suffix.lower() == ".zip"
            else data.load_path(path)
        )
    return data.load_text_csv(
        path, text_col=args.text_col, label_col=args.label_col, name=path.name
    )


# ---------------------------------------------------------------- commands


def cmd_models(args: argparse.Namespace) -> int:
    """The packaged catalogue, then the models found on disk (``--scan``, ``TLADVISOR_MODELS``,
    the HF cache). Each row says whether it loads here: a cheap file check, or a real load with
    ``--load``. JSON rows: name, modality, kind, params, feature_dim, size_mb, source, loads and
    note, plus the catalogue's fields (and ``available`` / ``status``, the older names)."""
    from tladvisor import catalog, families, model_scan

    check = families.availability if args.load else families.installed
    rows = []
    for spec in catalog.list_models():
        ok, why = check(spec.name)
        try:
            size = (
                round(spec.archive.size / 2**20, 1)  # the parts, as installed
                if spec.archive is not None
                else model_scan.folder_size_mb(catalog.weights_path(spec))
            )
        except catalog.ModelUnavailable:
            size = None
        rows.append({**spec.to_dict(), "size_mb": size, "loads": ok, "note": why})
    for item in model_scan.scan(args.scan or ()):
        row = item.to_dict()
        ok, why = check(item.name) if item.family else (False, "")
        row.update(loads=ok, note="; ".join(x for x in (item.note, why) if x))
        rows.append(row)
    for row in rows:
        row.update(available=row["loads"], status=row["note"])
    if args.json:
        _print_json(rows)
        return 0
    found = [r for r in rows if not r["packaged"]]
    for r in rows:
        if found and r is found[0]:
            print("\nFound on this machine (--scan DIR, TLADVISOR_MODELS, the Hugging Face cache):")
        mark = "ok " if r["loads"] else "-- "
        params = f"{r['params'] / 1e6:.1f}M" if r["params"] else "?"
        size = f"{r['size_mb']:.0f} MB" if r["size_mb"] is not None else "? MB"
        print(f"{mark}{r['name']:<20} {r['kind'] or '?':<17} {params:>7} {size:>8}  {r['note']}")
        print(f"    {r['source']}" + (f" ({r['license']})" if r.get("license") else ""))
    print(
        "\nYour own models: --model hf:/path/to/folder | clip:/path/to/folder | lm:/path/to/folder | "
        "open_clip:ARCH:/path/to/checkpoint; `models --scan DIR` finds them"
    )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    store = _open_store(args)
    df = store.list_runs(user=args.user, strategy=args.strategy, status=args.status)
    if args.json:
        _print_json(json.loads(df.to_json(orient="records", date_format="iso")))
        return 0
    if df.empty:
        print(
            "no runs yet: try  tladvisor run sample:rotten_tomatoes --strategy feature_extraction"
        )
        return 0
    cols = [
        c
        for c in (
            "id",
            "user_name",
            "status",
            "strategy",
            "model",
            "accuracy",
            "macro_f1",
            "seconds",
            "created_at",
        )
        if c in df.columns
    ]
    print(df[cols].to_string(index=False, max_colwidth=24))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Merge a teammate's (or a benchmark's) database file into this one."""
    from tladvisor import artifacts

    store = _open_store(args)
    added = {"runs_added": 0, "runs_present": 0, "runs_active": 0, "datasets_added": 0}
    copied, missing = [], []
    for source in args.files:
        try:
            summary, files = artifacts.import_runs(
                store, source, artifacts.default_root(store.path)
            )
        except FileNotFoundError as exc:
            raise CliError(str(exc)) from exc
        for key in added:
            added[key] += getattr(summary, key)
        copied += files.copied
        missing += files.missing
        if not args.json:
            print(
                f"{source}: {summary.runs_added} runs added, {summary.runs_present} already "
                f"here, {summary.runs_active} still running there (skipped); "
                f"{summary.datasets_added} data sets added; {files.summary()}"
            )
    if args.json:
        _print_json(
            {
                **added,
                "artifacts_copied": copied,
                "artifacts_missing": missing,
                "db": str(store.path),
            }
        )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Verify a database file and its runs' artefacts, read-only; exit 1 on any problem."""
    from tladvisor.db_check import check_database
    from tladvisor.store import default_db_path

    report = check_database(args.db or default_db_path())
    if args.json:
        _print_json(report.to_dict())
    else:
        print(f"checking {report.path}")
        for finding in report.findings:
            print(f"  {'ok     ' if finding.ok else 'PROBLEM'}  {finding.text}")
        problems = len(report.problems)
        print("healthy" if report.healthy else f"{problems} problem(s): see PROBLEM above")
    return 0 if report.healthy else EXIT_UNHEALTHY


def cmd_serve(args: argparse.Namespace) -> int:
    import subprocess

    app = Path(__file__).resolve().parent.parent / "app.py"
    env = dict(os.environ)
    if args.db:
        env["TLADVISOR_DB"] = str(Path(args.db).resolve())
    if args.ray:  # the dashboard's queue sends every run to this cluster
        env["TLADVISOR_RAY_ADDRESS"] = args.ray
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.headless",
        "true",
    ]
    if os.environ.get("TLADVISOR_MAX_UPLOAD_MB"):  # keep Streamlit's cap equal to the data loader's
        cmd += ["--server.maxUploadSize", os.environ["TLADVISOR_MAX_UPLOAD_MB"]]
    print(f"tladvisor dashboard on http://{args.host}:{args.port}", file=sys.stderr)
    return subprocess.call(cmd, env=env)


def cmd_predict(args: argparse.Namespace) -> int:
    """Label a file with a stored run; prints accuracy when the file has labels."""
    from tladvisor.data.unlabelled import load_unlabelled
    from tladvisor.predict import load_run, predict

    store = _open_store(args)
    run = load_run(store, args.run_id)
    path = Path(args.data)
    if not path.exists():
        raise CliError(f"no such file or folder: {args.data}")
    if args.images and not Path(args.images).exists():
        raise CliError(f"no such file or folder: {args.images}")
    rows = load_unlabelled(
        path,
        run.modality,
        images=args.images,
        text_col=args.text_col,
        image_col=args.image_col,
        label_col=args.label_col,
    )
    result = predict(store, run.run_id, rows, device=args.device)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(result.to_csv())
    summary = {
        "run_id": run.run_id,
        "rows": len(rows),
        "output": str(out),
        "accuracy": result.accuracy,
        "notes": result.notes,
    }
    if args.json:
        _print_json(summary)
        return 0
    print(f"{len(rows)} predictions by run {run.run_id} ({run.strategy}) written to {out}")
    if result.accuracy is not None:
        print(f"  accuracy on the file's labels: {result.accuracy:.4f}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a stored run as a folder that loads without tladvisor."""
    from tladvisor.export import export_run
    from tladvisor.predict import load_run

    store = _open_store(args)
    run = load_run(store, args.run_id)
    folder = export_run(store, run, Path(args.dir), command=" ".join(["tladvisor", *sys.argv[1:]]))
    if args.json:
        _print_json({"run_id": run.run_id, "folder": str(folder)})
    else:
        print(f"run {run.run_id} ({run.strategy}) exported to {folder}; see its README.md")
    return 0


def _profile_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "format_critical": args.format_critical,
        "frequent_updates": args.frequent_updates,
        "needs_new_knowledge": args.needs_new_knowledge,
        "gpu_memory_gb": args.gpu_memory_gb,
        "latency_sensitive": args.latency_sensitive,
    }


def _advise(args: argparse.Namespace):
    """Measure the data when given (flags override), else build the profile from the flags."""
    from tladvisor import decision

    answers = {k: v for k, v in _profile_args(args).items() if v is not None}
    measured = ds = None
    if args.data:
        from tladvisor.profile import measure_profile

        ds = _load_data(args)
        measured = measure_profile(ds, probe=not args.no_probe)
        profile = measured.to_task_profile(**answers)
        overrides = {
            "n_labeled": args.n_labeled,
            "n_classes": args.n_classes,
            "domain_unusualness": args.domain_unusualness,
            "modality": args.modality,
        }
        for key, value in overrides.items():
            if value is not None:
                setattr(profile, key, value)
                if key == "domain_unusualness":
                    profile.unusualness_measured = False
    else:
        if args.n_labeled is None:
            raise CliError(
                "give a data file, or describe the task with at least --n-labeled "
                "(and --n-classes, --modality, --domain-unusualness)"
            )
        profile = decision.TaskProfile(
            modality=args.modality or "text",
            n_labeled=args.n_labeled,
            n_classes=args.n_classes or 2,
            domain_unusualness=args.domain_unusualness,
            **answers,
        )
    from tladvisor.advice import advise, rank_for_advice

    preference = "accuracy" if args.best_accuracy else "balanced"
    ranking = None
    if ds is not None and not (args.no_probe or args.no_models):
        ranking = rank_for_advice(ds)
    return advise(profile, ds, preference=preference, ranking=ranking), measured


def cmd_advise(args: argparse.Namespace) -> int:
    rec, measured = _advise(args)
    out = rec.to_dict()
    if measured is not None:
        out["measured"] = measured.to_dict()
    if args.json:
        _print_json(out)
        return 0
    print(f"Recommended: {rec.strategy.value} with {out['model']}  (decided by {rec.decided_by})")
    for line in out["model_reasons"]:
        print(f"  model: {line}")
    print("Alternatives (expected accuracy, 80% interval; expected time on this device):")
    for a in out["alternatives"]:
        e = a.get("expected_accuracy") or {}
        cost = a.get("expected_cost") or {}
        seconds = f"  ~{cost['seconds']:.0f} s" if cost.get("seconds") is not None else ""
        print(
            f"  {a['strategy']:<20} {e.get('point', float('nan')):.2f} "
            f"[{e.get('low', float('nan')):.2f}-{e.get('high', float('nan')):.2f}]{seconds}"
        )
    print("\nWhy:")
    for r in out["reasons"]:
        print(f"  - {r['text']}\n      [{r['rule']}] {r['source']}")
    if out.get("advice"):
        print("\nAlso consider:")
        for a in out["advice"]:
            print(f"  - {a.get('title', '')}: {a.get('text', '')}")
    if out.get("data_needs"):
        print(f"\nData needs: {out['data_needs']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    ds = _load_data(args)
    if args.strategy == "all":
        return _run_every_strategy(args, ds)
    strategy = args.strategy
    if strategy == "auto":
        from tladvisor.advice import advise, rank_for_advice
        from tladvisor.profile import measure_profile

        # The same advice as `tladvisor advise`: measured (probe, baseline, zero-shot), cost-aware,
        # and the model it names unless --model says otherwise.
        profile = measure_profile(ds).to_task_profile()
        rec = advise(profile, ds, ranking=rank_for_advice(ds))
        strategy = rec.strategy.value
        if args.model is None and rec.model is not None:
            args.model = rec.model
        if not args.json:
            print(
                f"auto: the advisor recommends {strategy} with {args.model or 'the default model'}",
                file=sys.stderr,
            )
    estimate, report = _execute_run(args, ds, strategy, *_run_target(args))
    if args.json:
        _print_json({**report.to_dict(), "estimate": estimate.to_dict() if estimate else None})
    else:
        _print_report(report)
    return 0 if report.status == "done" else 1


def _run_every_strategy(args: argparse.Namespace, ds) -> int:
    """``--strategy all``: every strategy that applies to the data, one after another, each on
    its default model, then a table of what each reached (the dashboard's "Queue every strategy")."""
    from tladvisor.strategies import applicable

    if args.model:
        raise CliError(
            "--model names one model, but the strategies need different kinds (prompting a "
            "language model, the others an encoder): with --strategy all each runs on its "
            "default model; run one strategy with --model to choose it"
        )
    results, target = [], _run_target(args)  # one store and cluster for every run
    for strategy in applicable(ds.modality):
        if not args.json:
            print(f"== {strategy}", file=sys.stderr)
        estimate, report = _execute_run(args, ds, strategy, *target)
        results.append({**report.to_dict(), "estimate": estimate.to_dict() if estimate else None})
        if not args.json:
            _print_report(report)
    if args.json:
        _print_json(results)
    else:
        print("\nstrategy             accuracy  macro-F1  seconds")
        ranked = sorted(results, key=lambda r: -(r["metrics"].get("accuracy") or -1.0))
        for r in ranked:
            m, c = r["metrics"], r["cost"]
            print(
                f"{r['strategy']:<20} {_num(m.get('accuracy'))}  {_num(m.get('macro_f1'))}"
                f"  {_num(c.get('train_seconds', c.get('seconds')), '8.0f')}"
                + ("" if r["status"] == "done" else f"  ({r['status']})")
            )
    return 0 if all(r["status"] == "done" for r in results) else 1


def _num(value: Any, fmt: str = "8.3f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else f"{'-':>8}"


def _run_target(args: argparse.Namespace):
    """(store, Ray address or None) the runs go to; an unreachable cluster is reported before
    anything is recorded."""
    from tladvisor import ray_runs

    address = ray_runs.configured_address(args.ray)
    if address:
        ray_runs.connect(address)
    return _open_store(args), address


def _execute_run(args: argparse.Namespace, ds, strategy: str, store, address: str | None):
    """(the estimate printed before it, the finished run's report) of one run as ``args`` set it."""
    from tladvisor import ray_runs
    from tladvisor.artifacts import default_root
    from tladvisor.runner import execute

    overrides = {
        "model": args.model,
        "seed": args.seed,
        "epochs": args.epochs,
        "max_train": args.max_train,
        "batch_size": args.batch_size,
        "lr": args.lr,
    }
    if args.llm_url:
        overrides["llm_url"] = args.llm_url
    for item in args.set or []:
        key, _, value = item.partition("=")
        overrides[key.strip()] = json.loads(value) if value[:1] in '[{0123456789-tfn"' else value
    estimate = _run_estimate(ds, strategy, overrides, args.device)
    progress = _tqdm_progress(args.json)
    report = (functools.partial(ray_runs.execute, address=address) if address else execute)(
        store,
        ds,
        strategy,
        overrides,
        user=args.user,
        device=args.device,
        progress=progress,
        artifact_root=default_root(store.path),
    )
    progress(1.0, "")
    return estimate, report


def _print_report(report) -> None:
    where = report.executor.get("node")
    print(
        f"run {report.run_id}: {report.status}  {report.strategy} on {report.model}"
        f" [{report.backend}] {report.device}/{report.precision}"
        + (f" on ray node {where}" if where else "")
    )
    for name, value in {**report.metrics, **report.cost}.items():
        print(f"  {name:<18} {value:.4g}")
    for group in ("transferability", "forgetting"):
        values = getattr(report, group)
        if values:
            print(f"  {group}: " + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    for note in report.notes:
        print(f"  note: {note}")
    if report.error:
        print(f"error: {report.error}", file=sys.stderr)


def _run_estimate(ds, strategy: str, overrides: dict[str, Any], device: str | None):
    """Print the run's expected time on this device to stderr before it starts (issue #13)."""
    from tladvisor import catalog, estimate

    try:
        est = estimate.estimate_for_dataset(
            ds, strategy, overrides, device=catalog.select_device(device)
        )
    except (OSError, ValueError, catalog.ModelUnavailable) as exc:
        print(f"no time estimate: {exc}", file=sys.stderr)
        return None
    print(f"estimated time on this device: {est.summary()}; from {est.basis}", file=sys.stderr)
    return est


def _tqdm_progress(quiet: bool):
    if quiet:
        return lambda fraction, message: None
    from tqdm import tqdm

    bar = tqdm(total=1000, file=sys.stderr, bar_format="{l_bar}{bar}| {desc}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_description_str(message[:40])
        bar.refresh()
        if fraction >= 1.0:
            bar.close()

    return progress


def cmd_score(args: argparse.Namespace) -> int:
    from tladvisor.scoring import rank_models

    ds = _load_data(args)
    models = args.models.split(",") if args.models else None
    table = rank_models(ds, models=models)
    if args.json:
        _print_json(table)
        return 0
    for row in table:
        if "error" in row:
            print(f"-. {row['model']:<20} not scored: {row['error']}")
            continue
        scores = ", ".join(
            f"{k}={v:.3g} ({row['seconds'][k]:.2f} s)" for k, v in row["scores"].items()
        )
        print(
            f"{row['rank']}. {row['model']:<20} {scores}; encoding {row['seconds']['encode']:.1f} s, "
            f"feature extraction {row['cost']['ms_per_item']:.1f} ms an item"
        )
    return 0


# ---------------------------------------------------------------- parser


def _add_global_args(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--db",
        default=default,
        help="DuckDB file (default: $TLADVISOR_DB or data/tladvisor.duckdb); before or after "
        "the command",
    )


def _add_ray_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on the Ray cluster whose head is at HOST:PORT (or ray://HOST:10001); default "
        "$TLADVISOR_RAY_ADDRESS, else this machine",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tladvisor",
        description="Advise on, run and compare transfer-learning strategies for a labelled data set.",
    )
    _add_global_args(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    # Global options are accepted after the command too (`tladvisor runs --db F`): each
    # subcommand repeats them with SUPPRESS as the default, so a value given before the command
    # is not overwritten by the subcommand's absent one.
    common = argparse.ArgumentParser(add_help=False)
    _add_global_args(common, default=argparse.SUPPRESS)
    command = functools.partial(sub.add_parser, parents=[common])

    p = command(
        "models",
        help="list the model catalogue, and the models found on disk, and whether each loads here",
    )
    p.add_argument("--load", action="store_true", help="really load each model (slow for the LM)")
    p.add_argument(
        "--scan",
        action="append",
        metavar="DIR",
        help="also look for Hugging Face model folders (sentence-transformers, CLIP, causal LM, "
        "image classifier) under DIR; repeatable. TLADVISOR_MODELS (a path list) and the Hugging "
        "Face cache are always looked in. Nothing is loaded or downloaded",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = command("runs", help="list stored runs")
    p.add_argument("--user")
    p.add_argument("--strategy")
    p.add_argument("--status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = command(
        "import", help="copy the finished runs of other tladvisor database files into this one"
    )
    p.add_argument("files", nargs="+", help=".duckdb files written by tladvisor")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_import)

    p = command(
        "check",
        help="verify a database file (readable through, schema version, writable) and the "
        "heads/adapters its runs saved; read-only. Exit 0 when healthy, 1 with what to do",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = command("serve", help="start the dashboard")
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1: local only)"
    )
    p.add_argument("--port", type=int, default=8501)
    _add_ray_arg(p)
    p.set_defaults(func=cmd_serve)

    p = command("advise", help="recommend a strategy, measuring the data when given")
    _add_data_args(p, required=False)
    p.add_argument("--modality", choices=["text", "image"])
    p.add_argument("--n-labeled", type=int)
    p.add_argument("--n-classes", type=int)
    p.add_argument("--domain-unusualness", type=float, help="0 (ordinary) .. 1 (very unusual)")
    p.add_argument("--format-critical", action="store_true", default=None)
    p.add_argument("--frequent-updates", action="store_true", default=None)
    p.add_argument("--needs-new-knowledge", action="store_true", default=None)
    p.add_argument("--latency-sensitive", action="store_true", default=None)
    p.add_argument("--gpu-memory-gb", type=float)
    p.add_argument("--no-probe", action="store_true", help="skip the cheap kNN/linear probe")
    p.add_argument(
        "--no-models",
        action="store_true",
        help="do not rank the model zoo on the data (the advice keeps the default model)",
    )
    p.add_argument(
        "--best-accuracy",
        action="store_true",
        help="recommend the most accurate strategy whatever the cost (default: the cheapest "
        "whose expected accuracy lies within the interval of the best)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_advise)

    p = command("run", help="run a strategy and store its metrics")
    _add_data_args(p, required=True)
    p.add_argument(
        "--strategy",
        required=True,
        choices=[s.value for s in Strategy] + ["auto", "all"],
        help="auto: the advisor's pick; all: every strategy that applies, one after another",
    )
    p.add_argument("--model", help="catalogue name or hf:/clip:/open_clip: path")
    p.add_argument("--user", default=os.environ.get("USER", "anonymous"))
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-train", type=int, help="cap on training examples (stratified)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="cpu, cuda or auto (default)")
    p.add_argument("--llm-url", help="OpenAI-compatible endpoint for the prompting strategy")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other strategy setting, e.g. --set shots=4",
    )
    _add_ray_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    p = command(
        "predict",
        help="label a file with a stored run: one row per input row with the prediction and "
        "each class's probability; prints accuracy when the file has a label column",
    )
    p.add_argument("run_id", help="the run's id (or the 8 characters the dashboard shows)")
    p.add_argument(
        "data", help="CSV with a text column (text runs); ZIP or folder of images (image runs)"
    )
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--images", help="folder or ZIP with the images a CSV names")
    p.add_argument("--text-col", help="text column (default: 'text' or the like)")
    p.add_argument("--image-col", help="image file-name column of a CSV")
    p.add_argument("--label-col", help="label column to score against (default: 'label' if any)")
    p.add_argument("--device", help="cpu, cuda or auto (default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = command(
        "export",
        help="write a stored run as a folder that loads without tladvisor (sentence-transformers, "
        "transformers, peft or safetensors) with a README.md model card",
    )
    p.add_argument("run_id", help="the run's id (or the 8 characters the dashboard shows)")
    p.add_argument("dir", help="folder to create (it must not exist, or be empty)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = command("score", help="rank models for a data set by transferability, no training")
    _add_data_args(p, required=True)
    p.add_argument("--models", help="comma-separated catalogue names (default: all that apply)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from tladvisor.catalog import ModelUnavailable
    from tladvisor.data import DataError

    try:
        return args.func(args)
    except (CliError, DataError, ModelUnavailable, ValueError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RuntimeError as exc:  # e.g. the store is locked by another process
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tladvisor ... | head`: the reader left, nothing to report
        return 0
    except Exception as exc:
        # A DuckDB failure after the file opened (e.g. the disk filled up mid-run). DuckDB is only
        # imported by the commands that use a database, so it is looked up, not imported, here.
        duckdb = sys.modules.get("duckdb")
        if duckdb is None or not isinstance(exc, duckdb.Error):
            raise
        print(
            f"error: the database failed: {exc}. Run `tladvisor check --db FILE` on it to see "
            "whether it is damaged, and what to do.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
