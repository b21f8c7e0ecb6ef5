"""`archivist audit ...` and the CLI's own records: keys, verify (exit 0/1, naming the event),
list, export and verify --bundle on "another machine", prune, rotate-key, bad input, and a CLI
question killed mid-append."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rag.library import Library
from rag.models.loaded import Models
from service import cli
from service.cli import main
from tests.fakes import FakeEmbedder, FakeGenerator

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How many days of leave does a new employee get?"


@pytest.fixture
def env(tmp_path, monkeypatch, capsys):
    """An index with one document, the key files, ARCHIVIST_* pointing at them, fake models."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "leave.txt").write_text("A new employee gets 25 days of leave a year.\n")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("ARCHIVIST_MIN_SCORE", "0.1")
    monkeypatch.setattr(cli, "make_library", lambda settings: Library(
        settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator())))
    keys = tmp_path / "keys"
    keys.mkdir()
    assert main(["audit", "keygen", str(keys / "audit.key")]) == 0
    assert main(["audit", "keygen", "--signing", str(keys / "signing.pem")]) == 0
    monkeypatch.setenv("ARCHIVIST_AUDIT_KEY_FILE", str(keys / "audit.key"))
    monkeypatch.setenv("ARCHIVIST_AUDIT_SIGNING_KEY_FILE", str(keys / "signing.pem"))
    monkeypatch.setenv("ARCHIVIST_AUDIT_CHECKPOINT_EVERY", "4")
    assert main(["ingest"]) == 0
    capsys.readouterr()
    return tmp_path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_refuses_to_overwrite_and_bad_keys_are_clear_errors(env, capsys, monkeypatch):
    code, _, err = run(capsys, "audit", "keygen", str(env / "keys" / "audit.key"))
    assert code == 2 and "never overwritten" in err and "Traceback" not in err
    (env / "keys" / "broken.key").write_text("not a key\n")
    monkeypatch.setenv("ARCHIVIST_AUDIT_KEY_FILE", str(env / "keys" / "broken.key"))
    code, _, err = run(capsys, "ask", QUESTION)
    assert code == 2 and "is not an Archivist key file" in err and "hint: " in err


def test_cli_questions_and_changes_are_recorded_as_the_local_user(env, capsys):
    assert run(capsys, "ask", QUESTION)[0] == 0
    assert run(capsys, "search", QUESTION)[0] == 0
    assert run(capsys, "keys", "create", "--role", "reader", "--note", "intranet")[0] == 0
    assert run(capsys, "collections", "create", "legal")[0] == 0
    code, out, _ = run(capsys, "audit", "list", "--json", "--limit", "50")
    listing = json.loads(out)
    actions = [(e["action"], e["outcome"]) for e in reversed(listing["events"])]
    assert ("ingest", "ok") in actions and ("search", "answered") in actions
    assert ("key.create", "ok") in actions and ("collection.create", "ok") in actions
    asked = next(e for e in listing["events"] if e["action"] == "ask")
    assert asked["actor"].startswith("local CLI (") and asked["role"] == "local"
    assert asked["secret"]["question"] == QUESTION and asked["request_id"].startswith("cli-")
    code, out, _ = run(capsys, "audit", "list", "--action", "key.*", "--json")
    assert {e["action"] for e in json.loads(out)["events"]} == {"key.create"}
    code, out, _ = run(capsys, "audit", "list", "--since", "2999-01-01", "--json")
    assert json.loads(out)["events"] == []
    code, out, _ = run(capsys, "audit", "list", "--collection", "default")
    assert code == 0 and QUESTION in out and "answered" in out


def test_verify_exits_0_when_intact_and_1_naming_an_edited_event(env, capsys, monkeypatch):
    for i in range(3):
        run(capsys, "ask", f"{QUESTION} ({i})")
    # The auditor's view: no encryption key, the public key only.
    monkeypatch.delenv("ARCHIVIST_AUDIT_KEY_FILE")
    monkeypatch.delenv("ARCHIVIST_AUDIT_SIGNING_KEY_FILE")
    public = str(env / "keys" / "signing.pem.pub")
    code, out, _ = run(capsys, "audit", "verify", "--public-key", public)
    assert code == 0 and out.startswith("intact:")
    head = out.split("head ")[1].split()[0]
    db = sqlite3.connect(env / "index" / "audit.sqlite3")
    with db:
        db.execute("UPDATE audit_events SET outcome = 'refused' WHERE seq = 3")
    db.close()
    code, _, err = run(capsys, "audit", "verify", "--public-key", public)
    assert code == 1 and err.startswith("NOT INTACT: event 3: edited")
    assert run(capsys, "audit", "verify", "--public-key", public, "--expect-head", head)[0] == 1
    code, out, _ = run(capsys, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["bad_event"] == 3


def test_export_and_verify_a_bundle_elsewhere(env, capsys, monkeypatch, tmp_path):
    for i in range(3):
        run(capsys, "ask", f"{QUESTION} ({i})")
    bundle = tmp_path / "audit-2025.bundle"
    code, out, _ = run(capsys, "audit", "export", "--since", "2000-01-01", str(bundle))
    assert code == 0 and "exported events 1.." in out
    assert QUESTION not in bundle.read_text()
    # Another machine: no index, no keys but the public one.
    for name in ("ARCHIVIST_AUDIT_KEY_FILE", "ARCHIVIST_AUDIT_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "elsewhere"))
    public = str(env / "keys" / "signing.pem.pub")
    code, out, _ = run(capsys, "audit", "verify", "--bundle", str(bundle), "--public-key", public)
    assert code == 0 and out.startswith("intact:"), out
    lines = bundle.read_text().splitlines(keepends=True)
    (tmp_path / "cut.bundle").write_text("".join(lines[:-3]))
    code, _, err = run(capsys, "audit", "verify", "--bundle", str(tmp_path / "cut.bundle"),
                       "--public-key", public)
    assert code == 1 and "truncated" in err and "Traceback" not in err
    record = json.loads(lines[7])  # an auditor-bound copy with one event's outcome changed
    record["event"]["outcome"] = "tampered"
    lines[7] = json.dumps(record, separators=(",", ":")) + "\n"
    (tmp_path / "edited.bundle").write_text("".join(lines))
    code, _, err = run(capsys, "audit", "verify", "--bundle", str(tmp_path / "edited.bundle"),
                       "--public-key", public)
    assert code == 1 and err.startswith(f"NOT INTACT: event {record['event']['seq']}: edited")
    (tmp_path / "junk").write_bytes(os.urandom(300))
    code, _, err = run(capsys, "audit", "verify", "--bundle", str(tmp_path / "junk"))
    assert code == 1 and "NOT INTACT" in err and "Traceback" not in err
    code, _, err = run(capsys, "audit", "verify", "--bundle", str(bundle), "--public-key",
                       str(tmp_path / "junk"))
    assert code == 2 and "is not a PEM public key" in err


def test_prune_and_rotate_key_keep_the_log_verifiable(env, capsys, monkeypatch):
    for i in range(3):
        run(capsys, "ask", f"{QUESTION} ({i})")
    code, out, _ = run(capsys, "audit", "prune", "--before", "2999-01-01")
    assert code == 0 and "removed" in out
    assert "removed 3 recorded answers" in out  # the questions' records go with their events
    verified = run(capsys, "audit", "verify")
    assert verified[0] == 0, verified
    run(capsys, "ask", "Who approves leave?")
    new_key = env / "keys" / "new.key"
    assert run(capsys, "audit", "keygen", str(new_key))[0] == 0
    code, out, _ = run(capsys, "audit", "rotate-key", str(new_key))
    assert code == 0 and "re-sealed" in out
    code, _, err = run(capsys, "ask", "Who approves leave?")  # the old key no longer opens them
    assert code == 2 and "configured key file holds key" in err
    monkeypatch.setenv("ARCHIVIST_AUDIT_KEY_FILE", str(new_key))
    assert run(capsys, "ask", "Who approves leave?")[0] == 0
    code, out, _ = run(capsys, "audit", "verify", "--decrypt")
    assert code == 0 and "sealed parts opened and checked" in out
    actions = [e["action"] for e in json.loads(run(capsys, "audit", "list", "--json")[1])["events"]]
    assert "audit.prune" in actions and "audit.rotate-key" in actions


def test_a_cli_question_killed_mid_append_leaves_a_verifiable_log(env, capsys):
    child_env = {k: v for k, v in os.environ.items()}
    child_env.update(PYTHONPATH=str(ROOT), ARCHIVIST_FAULT="audit_after_insert:1")
    done = subprocess.run([sys.executable, "-m", "tests.fault_cli", "search", QUESTION],
                          env=child_env, cwd=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    listing = json.loads(run(capsys, "audit", "list", "--json")[1])
    assert "search" not in [e["action"] for e in listing["events"]]  # absent, not half there
