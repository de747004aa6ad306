"""Errors of the export step; each says what to do next."""

from __future__ import annotations

from pathlib import Path


class ExportError(Exception):
    """Export could not produce a bundle; nothing was left at the output path."""


class OutputExistsError(ExportError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists; pass --force (force=True) to replace it")
        self.path = path


class CheckpointError(ExportError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


class ValidationFailedError(ExportError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the tolerance (or int8 agreement is
    below the floor). ``differences`` maps each failing output to its measured value."""

    def __init__(self, variant: str, differences: dict[str, float],
                 limits: dict[str, float]) -> None:
        lines = [
            f"{name}: {value:.3g} (limit {limits[name]:.3g})"
            for name, value in sorted(differences.items())
        ]
        super().__init__(f"{variant} graph failed validation against PyTorch: " + "; ".join(lines))
        self.variant = variant
        self.differences = differences
        self.limits = limits
