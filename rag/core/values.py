"""Setting values as the environment and archivist.toml give them (strings) made into the types
the settings sections hold (rag/core/sections.py uses these as pydantic validators)."""

from __future__ import annotations

import json
from typing import Any


def none_if_empty(value: Any) -> Any:
    return None if value == "" else value


def string_list(value: Any) -> Any:
    """A list from a JSON array or a comma-separated string (as environment variables hold them)."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_gpu_layers(value: Any) -> int | str:
    """ARCHIVIST_N_GPU_LAYERS: 'auto', or a layer count (-1: all, 0: none)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{value!r} is neither 'auto' nor a whole number of layers") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is neither 'auto' nor a whole number of layers")
    if value < -1:
        raise ValueError(f"{value} layers: use -1 for all, 0 for none, or a positive count")
    return value
