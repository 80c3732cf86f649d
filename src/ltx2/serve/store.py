"""The job store: one SQLite file in the data dir, and each job's files in a folder named by its id.

A job row holds what the API shows (status, progress, times, error) and the settings it runs with; the order of
the queue is the order of creation. Ids are made here; a client's text is matched against the id pattern before
it names anything on disk.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ID_PATTERN = re.compile(r"video_[0-9a-f]{24}")
# A job that was running when the server died runs once more; if the server dies again, the job fails.
MAX_ATTEMPTS = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL,
    error TEXT,
    remixed_from TEXT
)
"""


class QueueFull(Exception):
    """The queue holds --max-queue jobs already."""


@dataclass
class Job:
    """A row of the store: what the API shows and the settings the job runs with."""

    id: str
    status: str
    progress: int
    created_at: int
    completed_at: int | None
    attempts: int
    settings: dict[str, Any]
    error: dict[str, str] | None
    remixed_from: str | None


class Store:
    """Jobs in SQLite (one connection, one lock: writes are few and small) and their folders under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.videos = root / "videos"
        self.videos.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def folder(self, job_id: str) -> Path:
        if not ID_PATTERN.fullmatch(job_id):
            raise ValueError(f"not a video id: {job_id!r}")
        return self.videos / job_id

    def new_folder(self) -> tuple[str, Path]:
        """A fresh id and its (empty) folder, for the inputs a job is created with."""
        job_id = f"video_{secrets.token_hex(12)}"
        folder = self.folder(job_id)
        folder.mkdir()
        return job_id, folder

    def add(self, job_id: str, settings: dict[str, Any], max_queue: int, remixed_from: str | None = None) -> Job:
        """Queue a job whose folder `new_folder` made; QueueFull (its folder removed) if `max_queue` wait already."""
        with self._lock:
            (queued,) = self._db.execute("SELECT COUNT(*) FROM videos WHERE status = 'queued'").fetchone()
            if queued >= max_queue:
                shutil.rmtree(self.folder(job_id), ignore_errors=True)
                raise QueueFull(f"{queued} jobs are queued (--max-queue {max_queue})")
            self._db.execute(
                "INSERT INTO videos (id, status, created_at, settings, remixed_from) VALUES (?, 'queued', ?, ?, ?)",
                (job_id, int(time.time()), json.dumps(settings), remixed_from),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM videos WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def page(self, limit: int, after: str | None, descending: bool) -> tuple[list[Job], bool]:
        """Up to `limit` jobs in creation order (newest first when `descending`) after the job `after`; and
        whether more follow. KeyError if `after` is not a job."""
        order, compare = ("DESC", "<") if descending else ("ASC", ">")
        with self._lock:
            where, parameters = "", []
            if after is not None:
                row = self._db.execute("SELECT seq FROM videos WHERE id = ?", (after,)).fetchone()
                if row is None:
                    raise KeyError(after)
                where, parameters = f"WHERE seq {compare} ?", [row[0]]
            rows = self._db.execute(f"SELECT {COLUMNS} FROM videos {where} ORDER BY seq {order} LIMIT ?",
                                    (*parameters, limit + 1)).fetchall()
        return [_job(row) for row in rows[:limit]], len(rows) > limit

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM videos GROUP BY status").fetchall()
        return dict(rows)

    def start_next(self) -> Job | None:
        """The oldest queued job, now in progress (one more attempt counted)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM videos WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE videos SET status = 'in_progress', progress = 0, attempts = attempts + 1 "
                             "WHERE id = ?", row)
        return self.get(row[0])

    def set_progress(self, job_id: str, progress: int) -> None:
        with self._lock:
            self._db.execute("UPDATE videos SET progress = ? WHERE id = ?", (progress, job_id))

    def finish(self, job_id: str, error: dict[str, str] | None = None) -> bool:
        """Mark a running job completed (its files are in place) or failed; False if it was deleted meanwhile."""
        status, progress = ("failed", None) if error else ("completed", 100)
        with self._lock:
            cursor = self._db.execute(
                "UPDATE videos SET status = ?, progress = COALESCE(?, progress), completed_at = ?, error = ? "
                "WHERE id = ?", (status, progress, int(time.time()), json.dumps(error) if error else None, job_id))
        return cursor.rowcount == 1

    def requeue(self, job_id: str) -> None:
        """Put back a job the server stopped on purpose (that try is not counted)."""
        with self._lock:
            self._db.execute("UPDATE videos SET status = 'queued', progress = 0, attempts = attempts - 1 "
                             "WHERE id = ?", (job_id,))

    def delete(self, job_id: str) -> Job | None:
        """Remove a job and its folder; the job as it was, or None if there was none."""
        job = self.get(job_id)
        if job is None:
            return None
        with self._lock:
            self._db.execute("DELETE FROM videos WHERE id = ?", (job_id,))
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return job

    def recover(self) -> list[str]:
        """After a restart: the jobs that were running run again (or fail, if they already had their second try);
        half-written files and folders without a job go. Returns the ids re-queued."""
        with self._lock:
            running = self._db.execute("SELECT id, attempts FROM videos WHERE status = 'in_progress'").fetchall()
            error = json.dumps({"code": "interrupted",
                                "message": f"the server stopped {MAX_ATTEMPTS} times while this video was made"})
            for job_id, attempts in running:
                if attempts >= MAX_ATTEMPTS:
                    self._db.execute("UPDATE videos SET status = 'failed', completed_at = ?, error = ? WHERE id = ?",
                                     (int(time.time()), error, job_id))
                else:
                    self._db.execute("UPDATE videos SET status = 'queued', progress = 0 WHERE id = ?", (job_id,))
            known = {row[0] for row in self._db.execute("SELECT id FROM videos")}
        for folder in self.videos.iterdir():
            if folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for partial in folder.glob(".*"):
                partial.unlink(missing_ok=True)
        return [job_id for job_id, attempts in running if attempts < MAX_ATTEMPTS]

    def close(self) -> None:
        with self._lock:
            self._db.close()


COLUMNS = "id, status, progress, created_at, completed_at, attempts, settings, error, remixed_from"


def _job(row: tuple) -> Job:
    job_id, status, progress, created, completed, attempts, settings, error, remixed_from = row
    return Job(job_id, status, progress, created, completed, attempts, json.loads(settings),
               json.loads(error) if error else None, remixed_from)
