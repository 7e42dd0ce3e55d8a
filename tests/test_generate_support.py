"""Shared pieces for the `embedgate generate` tests: a small documents folder, a tiny model whose tokenizer knows
its words, and a fake Anthropic Messages API behind an httpx2 mock transport (the SDK is real; only the network is
not). Holds no tests of its own."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

import httpx2

TOPICS = [
    ("Termination of the lease", "lease", ["tenant", "landlord", "notice", "premises", "months", "rent"]),
    ("Royalty payments", "royalty", ["licensee", "quarterly", "statement", "percent", "sales", "audit"]),
    ("Confidential information", "secrecy", ["recipient", "disclosure", "trade", "secrets", "employees", "breach"]),
    ("Governing law and venue", "jurisdiction", ["courts", "york", "disputes", "arbitration", "venue", "claims"]),
    ("Limitation of liability", "damages", ["indirect", "consequential", "cap", "fees", "negligence", "losses"]),
    ("Insurance obligations", "insurance", ["policy", "coverage", "insurer", "certificate", "premium", "insured"]),
    ("Force majeure events", "majeure", ["flood", "strike", "pandemic", "delay", "performance", "excused"]),
    ("Assignment of rights", "assignment", ["consent", "successor", "merger", "transfer", "affiliate", "void"]),
    ("Warranty of title", "warranty", ["title", "liens", "encumbrances", "seller", "defects", "remedy"]),
    ("Payment terms and invoices", "invoice", ["invoice", "days", "interest", "late", "currency", "dispute"]),
    ("Data protection duties", "privacy", ["personal", "processor", "controller", "breach", "security", "consent"]),
    ("Non-compete covenant", "compete", ["competitor", "territory", "years", "solicit", "customers", "restricted"]),
]


def paragraph(topic_word: str, words: list[str], k: int) -> str:
    """Deterministic prose about one topic; paragraph k rotates the vocabulary."""
    w = words[k % len(words):] + words[:k % len(words)]
    return (f"The {topic_word} clause number {k} governs how the {w[0]} and the {w[1]} deal with each other in "
            f"practice. Under this clause the {w[2]} must be given in writing within {k + 3} business days, and "
            f"any {w[3]} that is not handled on time counts against the {w[4]}. Where the parties disagree about "
            f"the {w[5]}, the matter goes first to a meeting of senior managers and only then to the courts. "
            f"These duties survive the end of the agreement for {k + 1} years.")


def write_docs(folder: Path, n_docs: int = 12, paragraphs: int = 5) -> Path:
    """Markdown (title + sections) and plain text (title line) documents, one topic each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        title, word, vocab = TOPICS[i % len(TOPICS)]
        paras = [paragraph(word, vocab, k + i) for k in range(paragraphs)]
        if i % 2 == 0:
            sections = "\n\n".join(f"## {vocab[k % len(vocab)].title()} {word} rules for part {k}\n\n{p}"
                                   for k, p in enumerate(paras))
            (folder / f"doc{i:02d}.md").write_text(f"# {title} in agreement {i}\n\n{sections}\n", encoding="utf-8")
        else:
            (folder / f"doc{i:02d}.txt").write_text(f"{title} in agreement {i}\n\n" + "\n\n".join(paras) + "\n",
                                                    encoding="utf-8")
    return folder


def vocabulary_texts() -> list[str]:
    texts = []
    for i, (title, word, vocab) in enumerate(TOPICS):
        texts.append(title)
        texts.extend(paragraph(word, vocab, k) for k in range(len(vocab)))
    return texts


# ------------------------------------------------------------------------------------------ fake Messages API

PASSAGE_RE = re.compile(r"<passage>\n(.*)\n</passage>", re.S)


def fake_queries(passage: str, n: int) -> list[str]:
    """What the fake model answers for a passage: n queries built from its words, unique to the passage, that
    share no run of more than one word with it (so the filters keep them)."""
    tag = hashlib.sha256(passage.encode()).hexdigest()[:8]
    words = sorted(set(re.findall(r"[a-z]{5,}", passage.lower())))
    out = []
    for i in range(n):
        a, b = words[i % len(words)], words[-1 - (i % len(words))]
        out.append(f"how are {a} matters tied to {b} issues, case {tag}{i}")
    return out


def message(text: str, *, input_tokens: int, output_tokens: int, stop_reason: str = "end_turn",
            model: str = "claude-haiku-4-5") -> dict:
    """A Messages API response body of the real shape."""
    return {"id": "msg_" + hashlib.sha256(text.encode()).hexdigest()[:24], "type": "message", "role": "assistant",
            "model": model, "content": [{"type": "text", "text": text}], "stop_reason": stop_reason,
            "stop_sequence": None, "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


def error(status: int, kind: str, msg: str, headers: dict | None = None) -> httpx2.Response:
    return httpx2.Response(status, headers={"request-id": f"req_err_{status}", **(headers or {})},
                           json={"type": "error", "error": {"type": kind, "message": msg}})


class Crash(BaseException):
    """Stands for the process dying mid-run (a BaseException, so neither the SDK nor our code catches it)."""


class FakeAPI:
    """Serves /v1/messages. ``plan(passage, attempt)`` may return an httpx2.Response to serve instead of the
    normal answer (errors, malformed JSON) or raise; attempts count per passage."""

    def __init__(self, plan=None, *, forbid: bool = False, output_tokens: int | None = None):
        self.plan = plan
        self.output_tokens = output_tokens
        self.forbid = forbid
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.api_keys: set[str] = set()

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        if self.forbid:
            raise AssertionError(f"no request may be sent, got {request.method} {request.url}")
        assert request.url.path == "/v1/messages", request.url
        body = json.loads(request.content)
        user = body["messages"][0]["content"]
        passage = PASSAGE_RE.search(user).group(1)
        n = int(re.search(r"Write (\d+) different search queries", user).group(1))
        with self.lock:
            self.requests.append(body)
            auth = request.headers.get("authorization", "")  # this SDK sends the key as a bearer token
            self.api_keys.add(request.headers.get("x-api-key") or auth.removeprefix("Bearer "))
            attempt = self.attempts.get(passage, 0)
            self.attempts[passage] = attempt + 1
            served = len(self.requests)
        if self.plan is not None:
            special = self.plan(passage, attempt, served)
            if special is not None:
                return special
        text = json.dumps({"queries": fake_queries(passage, n)})
        prompt_chars = len(body.get("system", "")) + len(user)
        return httpx2.Response(200, headers={"request-id": f"req_{served}"}, json=message(
            text, input_tokens=prompt_chars // 4, output_tokens=self.output_tokens or len(text) // 4,
            model=body["model"]))

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler))

    def ok_response(self, passage: str, n: int, text: str | None = None, **kw) -> httpx2.Response:
        text = text if text is not None else json.dumps({"queries": fake_queries(passage, n)})
        return httpx2.Response(200, json=message(text, input_tokens=500, output_tokens=len(text) // 4, **kw))
