"""Puts the generated bindings (scripts/generate-bindings.sh) on the import path."""
import os
import pathlib
import sys

GENERATED = pathlib.Path(
    os.environ.get("TANDEM_PYTHON_BINDINGS", pathlib.Path(__file__).resolve().parents[2] / "generated" / "python")
)
if not (GENERATED / "tandem.py").exists():
    raise RuntimeError(f"no generated bindings in {GENERATED}: run scripts/generate-bindings.sh first")
sys.path.insert(0, str(GENERATED))
