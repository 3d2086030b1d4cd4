"""A judge behind an OpenAI-compatible server (vLLM, SGLang): ``POST <url>/chat/completions``.

Stdlib only (``urllib``). Each request has a deadline (``timeout_s``); a timeout, a connection
error or a 5xx/429 answer is retried ``retries`` more times with exponential backoff; at most
``concurrency`` requests are in flight. A request that still fails gives no text and a status
(``TIMEOUT`` or ``INFRA_ERROR``), which the reward turns into ``None``: a broken server never
scores a completion 0 or 1.

The server's tokenizer is not visible from here, so the completion is escaped against the generic
control tokens of common templates plus anything shaped like ``<|...|>`` (see `prompt.neutralize`);
vLLM and SGLang render ``messages`` with the model's template and parse special-token strings in
them, which is exactly what that escaping prevents.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from rewards.common import Status
from rewards.judge.config import JudgeConfig
from rewards.judge.prompt import build_messages
from rewards.judge.types import JudgeItem, Outcome

_BACKOFF_S = 0.25  # first retry waits this long, then twice as long each time (capped at 4 s)


class HttpJudge:
    """`complete(items) -> outcomes` against ``cfg.url`` (see module docstring)."""

    def __init__(self, cfg: JudgeConfig, loader: str | None = None) -> None:
        self.cfg = cfg
        self.endpoint = cfg.url.rstrip("/") + "/chat/completions"
        self.requests_sent = 0  # attempts, retries included (tests and logs read it)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def body(self, item: JudgeItem) -> dict:
        """The request body for one completion."""
        cfg = self.cfg
        messages = build_messages(
            cfg.rubric,
            item.problem,
            item.reference,
            item.completion,
            max_chars=cfg.max_chars,
            score_first=cfg.score_first,
        )
        body = {
            "model": cfg.model,
            "messages": messages,
            "max_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature,
        }
        if (
            cfg.score_first
        ):  # vLLM/SGLang: continue the prefilled assistant message instead of opening a new one
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def _attempt(self, data: bytes) -> tuple[str | None, Status, str, bool]:
        """One POST: (text, status, detail, worth retrying)."""
        self.requests_sent += 1
        req = urllib.request.Request(self.endpoint, data=data, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                payload = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            retry = exc.code >= 500 or exc.code == 429
            return None, Status.INFRA_ERROR, f"HTTP {exc.code} from {self.endpoint}", retry
        except TimeoutError:
            return None, Status.TIMEOUT, f"no answer within {self.cfg.timeout_s} s", True
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return None, Status.TIMEOUT, f"no answer within {self.cfg.timeout_s} s", True
            return None, Status.INFRA_ERROR, f"cannot reach {self.endpoint}: {exc.reason}", True
        except (OSError, ValueError) as exc:  # connection reset mid-answer, a body that is not JSON
            return None, Status.INFRA_ERROR, f"{type(exc).__name__}: {exc}"[:300], True
        try:
            text = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None, Status.INFRA_ERROR, f"unexpected answer shape: {str(payload)[:200]}", False
        if not isinstance(text, str):
            return None, Status.INFRA_ERROR, f"message content is {type(text).__name__}, not text", False
        return text, Status.JUDGED, "", False

    def _one(self, item: JudgeItem) -> Outcome:
        data = json.dumps(self.body(item)).encode("utf-8")
        for attempt in range(self.cfg.retries + 1):
            text, status, detail, retry = self._attempt(data)
            if text is not None or not retry:
                break
            if attempt < self.cfg.retries:
                time.sleep(min(4.0, _BACKOFF_S * 2**attempt))
        detail = f"{detail} (after {attempt + 1} attempt{'s' if attempt else ''})" if text is None else ""
        return Outcome(text, str(status), detail)

    def complete(self, items: list[JudgeItem]) -> list[Outcome]:
        """Judge every item, ``concurrency`` at a time; outcomes in input order."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.cfg.concurrency, len(items))) as pool:
            return list(pool.map(self._one, items))

    def close(self) -> None:
        pass
