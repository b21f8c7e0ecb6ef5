"""A real `archivist serve` process (one API replica), and `archivist` CLI commands, configured
only through ARCHIVIST_* environment variables, as a deployment would configure them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.server import free_port, start_process

ARCHIVIST = Path(sys.executable).parent / "archivist"


def archivist_env(root: Path, **settings: str) -> dict[str, str]:
    """The environment for a process whose data and index folders are under `root` (as on its own
    host), with `settings` as ARCHIVIST_<NAME> variables; nothing of the caller's ARCHIVIST_*.
    Commands run in `root`, where there is no archivist.toml."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update({"ARCHIVIST_DATA_DIR": str(root / "data"), "ARCHIVIST_INDEX_DIR": str(root / "index"),
                "ARCHIVIST_WATCH": "false"})
    env.update({f"ARCHIVIST_{name.upper()}": value for name, value in settings.items()})
    return env


def run_cli(root: Path, *args: str, timeout_s: float = 600, **settings: str) -> subprocess.CompletedProcess:
    """`archivist ARGS` with that environment; raises with its output when it fails."""
    done = subprocess.run([str(ARCHIVIST), *args], env=archivist_env(root, **settings), cwd=root,
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise AssertionError(f"archivist {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


class Replica:
    """`archivist serve` on a free loopback port; its log is kept in root/serve.log."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        self._proc: subprocess.Popen | None = None

    def start(self) -> Replica:
        env = archivist_env(self.root, port=str(self.port), **self.settings)
        # start_process discards output; the log is what a failing test wants to show
        self._proc = start_process(
            ["/bin/sh", "-c", f'exec "{ARCHIVIST}" serve >>"{self.root}/serve.log" 2>&1'],
            f"{self.url}/v1/health", "archivist serve", timeout_s=180, env=env, cwd=self.root)
        return self

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=30)
            self._proc = None
