"""The LLM proposer: candidate kernels from any OpenAI-compatible endpoint.

The `openai` package (the project's `llm` extra) talks to OPENAI_BASE_URL with OPENAI_API_KEY;
the model is `--llm MODEL`. Prompts are Jinja2 templates (templates/system.j2, round.j2) holding
the spec, its semantics (the typed IR), the current best kernel, the target's constraints, the
schedule space with the current schedule's cost, worked examples from the kernel store and the
feedback of earlier rounds. A reply is a whole source (its first code block of the target's
language: ```python for Triton, ```cuda / ```cpp for the C++ targets) or a structured proposal
(a ```json schedule, which the tuner bakes into the generated kernel: always compilable).

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
_BLOCK = re.compile(r"```([\w+#-]*)[ \t]*\n(.*?)```", re.S)
# the fence tags a reply may give a candidate of each language (untagged blocks count too)
TAGS = {"python": ("python", "py"),
        "cpp": ("cuda", "cu", "hip", "cpp", "c++", "cxx", "c", "cc")}
SCHEDULE_TAGS = ("json",)


def _blocks(reply: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2).strip("\n") + "\n") for m in _BLOCK.finditer(reply)]


def extract_code(reply: str, language: str = "python") -> str | None:
    """The reply's first fenced code block of `language` ("python" or "cpp"; by its tag,
    else the first untagged block)."""
    blocks = _blocks(reply)
    tagged = next((b for tag, b in blocks if tag in TAGS[language]), None)
    return tagged if tagged is not None else next((b for tag, b in blocks if not tag), None)


def extract_schedule(reply: str) -> dict[str, Any] | str | None:
    """A structured proposal: the reply's first ```json block, an object of schedule keys (or
    {"schedule": {...}}). None when there is no such block; a string saying what is wrong
    with it otherwise."""
    text = next((b for tag, b in _blocks(reply) if tag in SCHEDULE_TAGS), None)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"the ```json block is not JSON: {e.msg} (line {e.lineno}, column {e.colno})"
    if isinstance(value, dict) and isinstance(value.get("schedule"), dict):
        value = value["schedule"]
    if not isinstance(value, dict):
        return "the ```json block must be an object of schedule keys, e.g. {\"0.BLOCK_R\": 64}"
    return value


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False)


@dataclass
class Proposal:
    """One reply: a whole source (`source`), or a schedule (`schedule`, a structured proposal
    the tuner bakes into the generated kernel), or neither (`error` says why)."""

    source: str | None
    reply: str
    tokens: int = 0
    error: str = ""
    seconds: float = 0.0
    schedule: dict[str, Any] | None = None


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
        language = context.get("language", "python")
        n = self.samples
        if n == 1:
            return [self._ask(system, user, round_no, 0, language)]
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda i: self._ask(system, user, round_no, i, language),
                                 range(n)))

    def _ask(self, system: str, user: str, round_no: int, sample: int,
             language: str = "python") -> Proposal:
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
        p = parse_reply(reply, language, tokens, error, time.monotonic() - t0)
        self._record({"round": round_no, "sample": sample, "model": self.model,
                      "messages": messages, "reply": reply, "tokens": tokens, "error": p.error,
                      "seconds": round(p.seconds, 3),
                      "kind": "schedule" if p.schedule is not None else
                      "source" if p.source is not None else "none"})
        return p

    def _record(self, item: dict[str, Any]) -> None:
        if self.transcript is None:
            return
        with self._lock:
            self.transcript.parent.mkdir(parents=True, exist_ok=True)
            with open(self.transcript, "a") as f:
                f.write(json.dumps(item) + "\n")


def parse_reply(reply: str, language: str, tokens: int = 0, error: str = "",
                seconds: float = 0.0) -> Proposal:
    """A reply as a proposal: its code block of `language` (a whole source) if it has one,
    else its ```json schedule."""
    p = Proposal(None, reply, tokens, error, seconds)
    if error or not reply:
        return p
    p.source = extract_code(reply, language)
    if p.source is not None:
        return p
    schedule = extract_schedule(reply)
    if isinstance(schedule, dict):
        p.schedule = schedule
    else:
        tag = TAGS[language][0]
        p.error = schedule or f"the reply holds no code block (```{tag}) and no ```json schedule"
    return p


def _retryable(e: Exception) -> bool:
    status = getattr(e, "status_code", None)
    if status is not None:
        return status in (408, 409, 429) or status >= 500
    name = type(e).__name__
    return name in ("APIConnectionError", "APITimeoutError", "ConnectionError", "TimeoutError")
