"""``export-onnx CHECKPOINT OUTPUT``: a thin layer over :func:`export.exporter.export_bundle`;
the heavy imports (torch, onnx) happen only when it runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="export-onnx",
        description="Export a trained LogPrompt checkpoint to a validated ONNX model bundle.",
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (training output)")
    parser.add_argument("output", type=Path, help="bundle directory to write")
    graph = parser.add_argument_group("graph")
    graph.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17)")
    graph.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True,
                       help="also write model.int8.onnx (dynamic quantization; default on)")
    check = parser.add_argument_group("validation")
    check.add_argument("--validation-windows", type=int, default=256, metavar="N",
                       help="distinct windows compared with PyTorch (default 256)")
    check.add_argument("--datasets-root", type=Path, default=None,
                       help="Loghub data sets (default $LOGPROMPT_DATASETS or ../shared/datasets)")
    check.add_argument("--min-int8-agreement", type=float, default=None, metavar="SHARE",
                       help="fail when int8 changes more decisions than this allows (e.g. 0.995)")
    out = parser.add_argument_group("output")
    out.add_argument("--force", action="store_true", help="replace an existing OUTPUT")
    out.add_argument("--archive", action="store_true", help="also write OUTPUT.tar.gz")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from export.exceptions import ExportError
    from export.exporter import export_bundle

    try:
        path = export_bundle(
            args.checkpoint, args.output, int8=args.int8, opset=args.opset, force=args.force,
            archive=args.archive, validation_windows=args.validation_windows,
            datasets_root=args.datasets_root, min_int8_agreement=args.min_int8_agreement,
        )
    except ExportError as exc:
        print(f"export-onnx: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
