"""Judgements cached on disk by a hash of (prompt version, judge, rubric, problem, reference, completion).

One sqlite file (stdlib, safe for several processes writing at once: the ranks of a distributed
run, a collect stage and an offline ``selfdistill score``). Only verdicts the judge itself gave are
stored (a score, or an answer it wrote that did not parse: greedy judges repeat themselves);
transport failures (timeouts, HTTP errors) are not, so they are retried next time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

from rewards.judge.prompt import PROMPT_VERSION


def cache_key(judge: str, rubric: str, problem: str, reference: str | None, completion: str) -> str:
    """sha256 of every input that changes a judgement."""
    blob = json.dumps([PROMPT_VERSION, judge, rubric, problem, reference, completion], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class JudgeCache:
    """``get(keys)`` / ``put(rows)`` over ``<dir>/judgements.sqlite``; ``dir=None`` keeps them in memory."""

    def __init__(self, directory: str | Path | None) -> None:
        self.path = None if directory is None else Path(directory) / "judgements.sqlite"
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path) if self.path else ":memory:", timeout=60, check_same_thread=False
        )
        with self._lock:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, score REAL, status TEXT "
                "NOT NULL, output TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.commit()

    def get(self, keys: list[str]) -> dict[str, tuple[float | None, str, str]]:
        """Cached ``key -> (score, status, judge output)`` for those of ``keys`` that are stored."""
        out: dict[str, tuple[float | None, str, str]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):  # sqlite's bound-parameter limit
                part = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, score, status, output FROM judgements WHERE key IN "
                    f"({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                out.update({k: (s, st, o) for k, s, st, o in rows})
        return out

    def put(self, rows: list[tuple[str, float | None, str, str]]) -> None:
        """Store ``(key, score, status, output)`` rows (a key written twice keeps the later row)."""
        if not rows:
            return
        now = time.time()
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?)",
                [(k, s, st, o, now) for k, s, st, o in rows],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
