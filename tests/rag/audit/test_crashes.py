"""Appends under fire: kill -9 at each stage of an append and at random moments, a full disk, and
several processes (SQLite) or replicas (PostgreSQL) appending at once.  The writers are real
processes (tests/rag/audit/appender.py) killed with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.audit.log import AuditLog, AuditUnavailableError
from rag.audit.reading import verify_log
from rag.core.faults import AUDIT_POINTS
from tests.rag.audit.conftest import fill, open_log, public

ROOT = Path(__file__).resolve().parents[3]


def appender(target, count: int, keys=None, fault: str | None = None,
             go: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env["PYTHONPATH"] = str(ROOT)
    if go:
        env["APPENDER_GO"] = str(go)
    if fault:
        env["ARCHIVIST_FAULT"] = fault
    extra = [str(keys["aes"]), str(keys["signing"])] if keys else []
    return subprocess.Popen([sys.executable, "-m", "tests.rag.audit.appender", str(target),
                             str(count), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("point", AUDIT_POINTS)
def test_kill_9_at_each_append_stage_leaves_a_chain_that_verifies(point, tmp_path, keys):
    target = tmp_path / "audit.sqlite3"
    child = appender(target, 3, keys, fault=f"{point}:3")  # dies in its third append
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    log = open_log(target, keys, every=3)
    report = verify_log(log, public(keys))
    assert report.ok, report.problem
    committed = point == "audit_after_commit"
    assert log.count() == (3 if committed else 2)  # the third event wholly there, or wholly not
    assert [c.seq for c in log.checkpoints()] == ([1, 3] if committed else [1])
    fill(log, 2)  # and the next writer carries on from there
    assert verify_log(log, public(keys)).ok and log.count() == (5 if committed else 4)
    log.close()


def test_random_kill_9_of_two_writers_at_once_leaves_one_valid_chain(tmp_path, keys):
    target = tmp_path / "audit.sqlite3"
    AuditLog(target).close()  # created once, so the writers do not race to make the tables
    rng = random.Random(27)
    printed: list[int] = []
    for _ in range(3):
        writers = [appender(target, 0, keys) for _ in range(2)]
        time.sleep(1.5 + rng.random())  # each is importing, then appending as fast as it can
        for writer in writers:
            writer.send_signal(signal.SIGKILL)
        for writer in writers:
            out, _ = writer.communicate(timeout=60)
            printed += [int(line) for line in out.split()]
        log = open_log(target, keys)
        report = verify_log(log, public(keys))
        assert report.ok, report.problem
        stored = {e.seq for e in log.events()}
        log.close()
    assert printed and len(printed) == len(set(printed))  # no sequence number given twice
    assert set(printed) <= stored  # every append a writer saw committed is there


def test_a_full_database_fails_the_append_clearly_and_loses_nothing(tmp_path, keys):
    """SQLite's max_page_count makes the file full at its current size (a full disk, for SQLite)."""
    log = open_log(tmp_path / "audit.sqlite3", keys)
    fill(log, 5)
    pages = log.db.execute("PRAGMA page_count").fetchone()[0]
    log.db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(AuditUnavailableError) as err:
        for _ in range(500):  # until the last page is full
            fill(log, 1)
    assert "full" in err.value.message and "Free disk space" in err.value.hint
    stored = log.count()
    assert stored >= 5 and verify_log(log, public(keys)).ok
    log.db.execute("PRAGMA max_page_count = 1073741823")
    fill(log, 2)
    assert log.count() == stored + 2 and verify_log(log, public(keys)).ok
    log.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: a real full disk (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                            str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_fails_the_append_clearly_and_loses_nothing(small_disk, keys):
    log = open_log(small_disk / "audit.sqlite3", keys)
    fill(log, 5)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 512, 1):  # take every free byte
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    with pytest.raises(AuditUnavailableError) as err:
        for _ in range(2000):
            fill(log, 1)
    assert "full" in err.value.message and "Free disk space" in err.value.hint
    stored = log.count()
    filler.unlink()
    assert verify_log(log, public(keys)).ok
    fill(log, 1)
    assert log.count() == stored + 1 and verify_log(log, public(keys)).ok
    log.close()


def test_two_replicas_appending_at_once_on_postgresql_keep_one_chain(postgres_server, keys, tmp_path):
    url = postgres_server.fresh_database()
    AuditLog(url).close()
    writers = [appender(url, 150, keys, go=tmp_path / "go") for _ in range(2)]
    time.sleep(3)  # both have imported and connected, and wait for the signal
    (tmp_path / "go").touch()
    printed = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        printed.append([int(line) for line in out.split()])
    log = open_log(url, keys)
    report = verify_log(log, public(keys))
    log.close()
    assert report.ok and report.events == 300 and report.last_seq == 300, report.problem
    assert not set(printed[0]) & set(printed[1])  # interleaved, never the same number twice
    assert max(printed[0]) > min(printed[1]) and max(printed[1]) > min(printed[0])


def test_kill_9_of_a_replica_mid_append_on_postgresql(postgres_server, keys):
    url = postgres_server.fresh_database()
    AuditLog(url).close()
    child = appender(url, 3, keys, fault="audit_after_insert:3")
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    other = appender(url, 5, keys)  # its lock and transaction died with it: others go on
    other.communicate(timeout=120)
    assert other.returncode == 0
    log = open_log(url, keys)
    assert verify_log(log, public(keys)).ok and log.count() == 7
    log.close()


def test_the_file_is_valid_sqlite_after_the_kills(tmp_path, keys):
    """A sanity check of the premise: SQLite's own integrity check on a killed writer's file."""
    target = tmp_path / "audit.sqlite3"
    child = appender(target, 4, keys, fault="audit_after_checkpoint:3")
    child.communicate(timeout=120)
    db = sqlite3.connect(target)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
