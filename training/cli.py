"""``logprompt train`` and ``logprompt evaluate``; heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the training commands to the ``logprompt`` app."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)


def train_command(
    config: Annotated[Path | None, typer.Option(
        help="TOML file with TrainConfig fields; flags override it.")] = None,
    dataset: Annotated[str | None, typer.Option(help="hdfs, hdfs_2k, bgl_templated, ...")] = None,
    datasets_root: Annotated[Path | None, typer.Option(
        help="Loghub data (default ../shared/datasets).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Checkpoint directory.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Local HF encoder dir (default all-MiniLM-L6-v2).")] = None,
    mode: Annotated[str | None, typer.Option(help="full (fine-tune) or soft (frozen encoder).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt template name.")] = None,
    max_length: Annotated[int | None, typer.Option()] = None,
    loss: Annotated[str | None, typer.Option(help="focal or ce.")] = None,
    focal_alpha: Annotated[float | None, typer.Option()] = None,
    focal_gamma: Annotated[float | None, typer.Option()] = None,
    label_fraction: Annotated[float | None, typer.Option(
        help="Label budget as a fraction of training windows.")] = None,
    label_count: Annotated[int | None, typer.Option(help="Label budget as a window count.")] = None,
    label_sample: Annotated[int | None, typer.Option(
        help="Which reproducible label sample (its seed).")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    train_layers: Annotated[int | None, typer.Option(
        help="Tune only the top N encoder layers (lower ones cached).")] = None,
    ensemble: Annotated[int | None, typer.Option(
        help="Members (seeds seed..seed+N-1) sharing the frozen lower layers.")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue the run in this checkpoint directory (its state/).")] = None,
) -> None:
    """Prompt-tune the model on a few labelled windows; write a checkpoint directory."""
    import logging

    from training.config import TrainConfig, load_config
    from training.train import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if resume is not None and config is None and (resume / "train_config.json").exists():
        base = TrainConfig.model_validate_json((resume / "train_config.json").read_text())
        cfg = base.model_copy(update={"output": output or resume})
    else:
        overrides = {
            "dataset": dataset, "datasets_root": datasets_root, "output": output,
            "base_model": model, "mode": mode, "prompt_template": prompt,
            "max_length": max_length, "loss": loss, "focal_alpha": focal_alpha,
            "focal_gamma": focal_gamma, "label_sample": label_sample, "seed": seed,
            "epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
            "device": device, "train_layers": train_layers, "ensemble": ensemble,
            "label_budget.fraction": label_fraction,
            "label_budget.count": label_count,
        }
        try:
            cfg = load_config(config, overrides)
        except ValueError as exc:
            typer.echo(f"error: invalid training config: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        path = train(cfg, resume=resume)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"checkpoint written to {path}")


def evaluate_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint directory from `train`.")],
    out: Annotated[Path | None, typer.Option(help="Report dir (default CHECKPOINT/report).")] = None,
    datasets_root: Annotated[Path | None, typer.Option()] = None,
    rescore: Annotated[bool, typer.Option(help="Score again instead of reusing scores.npz.")] = False,
) -> None:
    """Model and baselines on validation/test: P, R, F1, specificity, PR-AUC, PR curves."""
    from training.evaluate import evaluate

    if not (checkpoint / "checkpoint.json").exists():
        typer.echo(f"error: {checkpoint} has no checkpoint.json", err=True)
        raise typer.Exit(2)
    report = evaluate(checkpoint, out, datasets_root=datasets_root, reuse_scores=not rescore)
    for name, r in report["results"].items():
        t = r["test"]
        typer.echo(f"{name:28s} P {t['precision']:.3f} R {t['recall']:.3f} F1 {t['f1']:.3f} "
                   f"spec {t['specificity']:.3f} PR-AUC {t['pr_auc']:.3f}")
    typer.echo(f"report written to {out or checkpoint / 'report'}")
