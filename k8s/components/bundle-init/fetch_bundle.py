"""Download a model bundle tarball, check its sha256, unpack it and point `current` at it.

Run by the init container of components/bundle-init on a plain Python image, so it
uses the standard library only. Environment: BUNDLE_URL (https://, http:// or file://),
BUNDLE_SHA256, BUNDLE_DIR (default /models). Leaves BUNDLE_DIR/<sha256[:12]>/ and a relative
symlink BUNDLE_DIR/current to it, the layout the PVC mode uses too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

REQUIRED_FILES = ("manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json")


def fetch(url: str, sha256: str, bundle_dir: Path) -> Path:
    """Return the unpacked bundle's directory; raise ValueError on a bad digest or content."""
    bundle_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=bundle_dir, suffix=".tar.gz") as tmp:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (the URL is config)
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                tmp.write(chunk)
        tmp.flush()
        if digest.hexdigest() != sha256.lower():
            raise ValueError(f"{url}: sha256 {digest.hexdigest()} != expected {sha256}")
        target = bundle_dir / sha256.lower()[:12]
        staging = Path(tempfile.mkdtemp(dir=bundle_dir, prefix=".staging-"))
        try:
            with tarfile.open(tmp.name) as tar:
                tar.extractall(staging, filter="data")  # refuses absolute paths, links out
            # A tarball of the directory itself (bundle/manifest.json) or of its content.
            entries = list(staging.iterdir())
            root = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
            missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
            if missing:
                raise ValueError(f"{url}: bundle lacks {', '.join(missing)}")
            if not target.exists():
                root.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    link = bundle_dir / ".current.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(target.name)
    link.replace(bundle_dir / "current")  # rename(2): readers see the old or the new, never none
    return target


def main() -> int:
    try:
        target = fetch(
            os.environ["BUNDLE_URL"],
            os.environ["BUNDLE_SHA256"],
            Path(os.environ.get("BUNDLE_DIR", "/models")),
        )
    except (KeyError, ValueError, OSError) as exc:
        print(f"fetch_bundle: {exc!r}", file=sys.stderr)
        return 1
    print(f"fetch_bundle: {target} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
