"""The LLM proposer: candidate kernels from any OpenAI-compatible endpoint.

The `openai` package (the project's `llm` extra) talks to OPENAI_BASE_URL with OPENAI_API_KEY;
the model is `--llm MODEL`. Prompts are Jinja2 templates (templates/system.j2, round.j2) holding
the spec, its semantics (the typed IR), the current best kernel, the target's constraints and
the feedback of earlier rounds. The reply's first ```python block is the candidate.

Budgets: `max_tokens_total` (prompt + completion tokens over the session, from the replies'
usage) and `max_seconds`; each request is retried with exponential backoff. Every exchange is
appended to a JSON-lines transcript.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

_TEMPLATES = Path(__file__).parent / "templates"
_CODE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def extract_code(reply: str) -> str | None:
    """The reply's first fenced code block (preferring a python-tagged one)."""
    tagged = re.search(r"```(?:python|py)[ \t]*\n(.*?)```", reply, re.S)
    m = tagged or _CODE.search(reply)
    return m.group(1).strip("\n") + "\n" if m else None


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False)


@dataclass
class Proposal:
    source: str | None
    reply: str
    tokens: int = 0
    error: str = ""
    seconds: float = 0.0


@dataclass
class LLMProposer:
    model: str
    base_url: str | None = None
    api_key: str | None = None
    samples: int = 1                  # parallel samples per round
    temperature: float = 0.7
    max_tokens: int = 8192            # per reply
    max_tokens_total: int | None = None
    max_seconds: float | None = None
    retries: int = 4
    backoff: float = 1.0              # seconds, doubled per retry
    timeout: float = 300.0
    transcript: Path | None = None
    tokens_used: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _client: Any = field(default=None, repr=False)

    def client(self):
        if self._client is None:
            try:
                import openai
            except ImportError:
                from ..errors import KspecError
                raise KspecError("the LLM proposer needs the openai package: "
                                 "pip install 'kspec[llm]'") from None
            self._client = openai.OpenAI(
                base_url=self.base_url or os.environ.get("OPENAI_BASE_URL"),
                api_key=self.api_key or os.environ.get("OPENAI_API_KEY") or "unset",
                timeout=self.timeout, max_retries=0)
        return self._client

    def exhausted(self) -> str | None:
        if self.max_tokens_total is not None and self.tokens_used >= self.max_tokens_total:
            return f"token budget spent ({self.tokens_used} >= {self.max_tokens_total})"
        if self.max_seconds is not None and time.monotonic() - self.started > self.max_seconds:
            return f"time budget spent ({self.max_seconds:.0f} s)"
        return None

    def render(self, context: dict[str, Any]) -> tuple[str, str]:
        env = environment()
        return (env.get_template("system.j2").render(**context),
                env.get_template("round.j2").render(**context))

    def propose(self, context: dict[str, Any], round_no: int) -> list[Proposal]:
        system, user = self.render(context)
        n = self.samples
        if n == 1:
            return [self._ask(system, user, round_no, 0)]
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda i: self._ask(system, user, round_no, i), range(n)))

    def _ask(self, system: str, user: str, round_no: int, sample: int) -> Proposal:
        t0 = time.monotonic()
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        reply, tokens, error = "", 0, ""
        for attempt in range(self.retries + 1):
            why = self.exhausted()
            if why:
                error = why
                break
            try:
                r = self.client().chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature,
                    max_tokens=self.max_tokens)
                reply = r.choices[0].message.content or ""
                usage = getattr(r, "usage", None)
                tokens = int(getattr(usage, "total_tokens", 0) or 0) if usage else 0
                error = ""
                break
            except Exception as e:  # noqa: BLE001 - network, rate limits, server errors
                error = f"{type(e).__name__}: {str(e)[:300]}"
                if attempt < self.retries and _retryable(e):
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                break
        with self._lock:
            self.tokens_used += tokens
        p = Proposal(extract_code(reply) if reply else None, reply, tokens, error,
                     time.monotonic() - t0)
        if not error and p.source is None:
            p.error = "the reply holds no code block"
        self._record({"round": round_no, "sample": sample, "model": self.model,
                      "messages": messages, "reply": reply, "tokens": tokens, "error": p.error,
                      "seconds": round(p.seconds, 3)})
        return p

    def _record(self, item: dict[str, Any]) -> None:
        if self.transcript is None:
            return
        with self._lock:
            self.transcript.parent.mkdir(parents=True, exist_ok=True)
            with open(self.transcript, "a") as f:
                f.write(json.dumps(item) + "\n")


def _retryable(e: Exception) -> bool:
    status = getattr(e, "status_code", None)
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    name = type(e).__name__
    return name in ("APIConnectionError", "APITimeoutError", "ConnectionError", "TimeoutError")
