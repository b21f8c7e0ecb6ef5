"""What every benchmark script ends with: its result as JSON on stdout, and in --json's file."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict | list, path: Path | None) -> int:
    """Print `result` (and write it to `path` when given); the script's exit status."""
    text = json.dumps(result, indent=2)
    if path:
        path.write_text(text + "\n")
    print(text)
    return 0
