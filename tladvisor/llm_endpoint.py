"""Score label words with an OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI, OpenAI).

The prompting strategy asks one question of a language model: how likely is each label word as
the answer to this prompt? Two routes answer it over HTTP, with only the standard library:

1. ``POST {base}/completions`` with ``echo=true, logprobs=1, max_tokens=0`` (the GPT-3 paper's way
   of scoring answers, Brown et al. 2020): the server returns the log-probability of every token
   of prompt + label, and the label's tokens are summed, exactly like the local path. Servers that
   refuse ``max_tokens=0`` are asked again with ``max_tokens=1`` (the generated token falls outside
   the label's characters and is ignored). The prompt is rendered as plain "Role: text" turns,
   since the server's chat template is unknown on this route.
2. ``POST {base}/chat/completions`` with ``logprobs=true, top_logprobs=20, max_tokens=1``, for
   servers without echo (OpenAI's chat models): each label is scored by the log-probability of
   the first answer token it starts with. Coarser: labels sharing a first token are not told apart
   (reported in ``notes``), and a label absent from the top 20 gets an upper bound.

``mode="auto"`` tries route 1 and falls back to route 2 when the server refuses it. Errors name
the URL and what the server answered.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Messages = list[dict[str, str]]
MODES = ("auto", "completions", "chat")
TOP_LOGPROBS = 20  # OpenAI's maximum for chat completions


class EndpointError(RuntimeError):
    """The server could not be reached or answered something unusable; the message says which."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def base_url(url: str) -> str:
    """``http://host:8000``, ``.../v1`` or ``.../v1/chat/completions`` -> ``http://host:8000/v1``."""
    url = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url if re.search(r"/v\d+$", url) else url + "/v1"


def render_plain(messages: Messages) -> str:
    """Chat turns as plain text for a completions endpoint; the answer follows "Assistant:"."""
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(turns) + "\n\nAssistant:"


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


@dataclass
class EndpointScorer:
    """``LabelScorer`` over HTTP; ``score`` returns (n_prompts, n_labels) log-likelihoods."""

    url: str
    model: str
    timeout: float = 60.0
    batch_size: int = 16  # prompts per completions request; concurrent requests in chat mode
    mode: str = "auto"
    api_key: str | None = None  # default: the TLADVISOR_LLM_API_KEY environment variable
    total_params: int = 0  # unknown behind an API
    notes: list[str] = field(default_factory=list)
    description: str = field(init=False)
    _route: str | None = field(default=None, init=False, repr=False)
    _max_tokens: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.base = base_url(self.url)
        if self.api_key is None:
            self.api_key = os.environ.get("TLADVISOR_LLM_API_KEY") or None
        self._route = None if self.mode == "auto" else self.mode
        self.description = f"{self.model} at {self.base}"

    # ------------------------------------------------------------ HTTP

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode("utf-8", "replace")[:500]
            raise EndpointError(
                f"{url} answered HTTP {exc.code} {exc.reason}: {answer or '(empty body)'}", exc.code
            ) from None
        except TimeoutError:  # socket.timeout is an alias since 3.10
            raise EndpointError(
                f"{url} did not answer within {self.timeout:g} s; raise llm_timeout or check the "
                "server's load"
            ) from None
        except urllib.error.URLError as exc:
            raise EndpointError(
                f"could not reach {url}: {exc.reason}. Check that the server is running and the URL "
                "(e.g. http://127.0.0.1:8000/v1)."
            ) from None
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            raise EndpointError(
                f"{url} answered with something that is not JSON: {body[:200]!r}. Is this an "
                "OpenAI-compatible API?"
            ) from None

    # ------------------------------------------------------------ scoring

    def score(
        self,
        prompts: Sequence[Messages],
        labels: Sequence[str],
        on_batch: Callable[[int, int], None],
    ) -> np.ndarray:
        out = np.zeros((len(prompts), len(labels)), dtype=np.float64)
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            out[start : start + len(batch)] = self._score_batch(batch, labels)
            on_batch(start + len(batch), len(prompts))
        return out

    def _score_batch(self, prompts: Sequence[Messages], labels: Sequence[str]) -> np.ndarray:
        if self._route in (None, "completions"):
            try:
                scores = self._completions(prompts, labels)
                self._route = "completions"
                return scores
            except EndpointError as exc:
                if self._route == "completions" or exc.status in (None, 401, 403):
                    raise  # chosen explicitly, unreachable or unauthorised: falling back won't help
                self.notes.append(
                    f"{self.base}/completions could not score label words ({exc}); used chat "
                    "completions with top-20 first-token log-probabilities instead"
                )
                self._route = "chat"
        self.description = f"{self.model} at {self.base} (chat first-token log-probabilities)"
        return self._chat(prompts, labels)

    def _completions(self, prompts: Sequence[Messages], labels: Sequence[str]) -> np.ndarray:
        texts = [render_plain(m) for m in prompts]
        conts = [" " + w for w in labels]
        payload = {
            "model": self.model,
            "prompt": [t + c for t in texts for c in conts],
            "echo": True,
            "logprobs": 1,
            "max_tokens": self._max_tokens,
            "temperature": 0,
        }
        try:
            answer = self._post("/completions", payload)
        except EndpointError as exc:
            if self._max_tokens == 0 and exc.status in (400, 422):
                # vLLM and others reject max_tokens=0; one generated token is outside the window.
                self._max_tokens = payload["max_tokens"] = 1
                answer = self._post("/completions", payload)
            else:
                raise
        choices = answer.get("choices")
        if not isinstance(choices, list) or len(choices) != len(payload["prompt"]):
            raise EndpointError(
                f"{self.base}/completions answered {len(choices or [])} choices for "
                f"{len(payload['prompt'])} prompts; the server may not accept a list of prompts",
                status=400,
            )
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        out = np.zeros((len(texts), len(labels)))
        for k, choice in enumerate(choices):
            i, j = divmod(k, len(labels))
            out[i, j] = self._continuation_logprob(
                choice, len(texts[i]), len(texts[i]) + len(conts[j])
            )
        return out

    def _continuation_logprob(self, choice: dict[str, Any], begin: int, end: int) -> float:
        """Sum of the log-probabilities of the echoed tokens covering characters [begin, end)."""
        lp = choice.get("logprobs") or {}
        tokens, logprobs, offsets = (
            lp.get("tokens"),
            lp.get("token_logprobs"),
            lp.get("text_offset"),
        )
        if not tokens or logprobs is None or offsets is None:
            raise EndpointError(
                f"{self.base}/completions returned no echoed token log-probabilities "
                "(echo=true, logprobs=1 unsupported)",
                status=400,
            )
        if not len(tokens) == len(logprobs) == len(offsets):
            raise EndpointError(
                f"{self.base}/completions returned {len(tokens)} tokens but {len(logprobs)} "
                f"log-probabilities and {len(offsets)} offsets",
                status=400,
            )
        total, found = 0.0, False
        for token, logprob, offset in zip(tokens, logprobs, offsets, strict=True):
            if offset < end and offset + len(token) > begin:  # the token overlaps the label
                if logprob is None:
                    raise EndpointError(
                        f"{self.base}/completions gave no log-probability for label token {token!r}",
                        status=400,
                    )
                total += float(logprob)
                found = True
        if not found:
            raise EndpointError(
                f"{self.base}/completions echoed no tokens for the label; the echo did not "
                "include the prompt",
                status=400,
            )
        return total

    def _chat(self, prompts: Sequence[Messages], labels: Sequence[str]) -> np.ndarray:
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(prompts)))) as pool:
            rows = list(pool.map(lambda m: self._chat_one(m, labels), prompts))
        return np.array(rows, dtype=np.float64)

    def _chat_one(self, messages: Messages, labels: Sequence[str]) -> list[float]:
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
            "temperature": 0,
        }
        answer = self._post("/chat/completions", payload)
        try:
            top = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
        except (KeyError, IndexError, TypeError, ValueError):
            raise EndpointError(
                f"{self.base}/chat/completions returned no top_logprobs (answer began "
                f"{json.dumps(answer)[:200]}); the server must support logprobs=true and "
                "top_logprobs, or /v1/completions with echo"
            ) from None
        if not pairs:
            raise EndpointError(f"{self.base}/chat/completions returned an empty top_logprobs list")
        return first_token_scores(pairs, labels, self.notes)


def first_token_scores(
    pairs: list[tuple[str, float]], labels: Sequence[str], notes: list[str]
) -> list[float]:
    """Score each label from a first-token top-k list: log-sum over the tokens it starts with.

    Case and leading spaces are ignored ("Positive", " positive" and "pos" all start
    "positive"). A label with no such token gets an upper bound on its probability: the smaller
    of the lowest listed one and the mass left outside the list.
    """
    floor = min(
        min(lp for _, lp in pairs),
        math.log(max(1e-12, 1.0 - sum(math.exp(lp) for _, lp in pairs))),
    )
    scores, matched = [], []
    for label in labels:
        word = label.strip().lower()
        hits = [(t, lp) for t, lp in pairs if t.strip() and word.startswith(t.strip().lower())]
        matched.append({t.strip().lower() for t, _ in hits})
        scores.append(_logsumexp([lp for _, lp in hits]) if hits else floor)
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            if matched[a] & matched[b]:
                note = (
                    f"labels {labels[a]!r} and {labels[b]!r} start with the same token, which "
                    "chat first-token scoring cannot tell apart; give them distinct first words"
                )
                if note not in notes:
                    notes.append(note)
    return scores
