"""BM25 with bm25s over each document's title + text. The index is cached under ``<cache>/bm25/<key>/`` (bm25s'
own numpy + json format, loaded without pickle), keyed by the corpus content and every setting, so a warm gate
only scores its queries. Scores are computed for every document and ranked with the harness's tie rule (score
desc, then document id desc), so a BM25 run orders ties as trec_eval would, like the dense runs."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..retrieve import id_ranks, top_k
from ..schema import BM25System
from . import SystemRun


def check_bm25(spec: BM25System) -> None:
    import importlib.util

    if importlib.util.find_spec("bm25s") is None:
        raise ConfigError("BM25 needs the bm25s package: pip install bm25s", field="kind")
    if spec.stemmer is not None:
        try:
            import Stemmer
        except ImportError:
            raise ConfigError("a BM25 stemmer needs PyStemmer: pip install PyStemmer (or set stemmer = \"none\")",
                              field="stemmer") from None
        if spec.stemmer not in Stemmer.algorithms():
            raise ConfigError(f"unknown stemmer {spec.stemmer!r} (PyStemmer knows: {', '.join(Stemmer.algorithms())})",
                              field="stemmer")


def settings(spec: BM25System) -> dict:
    """What the result states about this BM25 (and what its index is keyed by)."""
    return {"kind": "bm25", "library": f"bm25s {version('bm25s')}", "method": spec.method, "k1": spec.k1,
            "b": spec.b, **({"delta": spec.delta} if spec.method in ("bm25l", "bm25+") else {}),
            "tokenizer": "bm25s.tokenize (lowercase)" if spec.lower else "bm25s.tokenize",
            "stemmer": f"PyStemmer {spec.stemmer}" if spec.stemmer else None, "stopwords": spec.stopwords,
            "fields": "title + text"}


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its own logger to DEBUG on import
    return bm25s


class _Tokenizer:
    def __init__(self, spec: BM25System):
        self.spec = spec
        self.stemmer = None
        if spec.stemmer:
            import Stemmer

            self.stemmer = Stemmer.Stemmer(spec.stemmer)

    def __call__(self, texts: list[str], ids: bool):
        return _bm25s().tokenize(texts, lower=self.spec.lower, stopwords=self.spec.stopwords, stemmer=self.stemmer,
                              return_ids=ids, show_progress=False)


def _index_key(spec: BM25System, doc_ids: list[str], texts: list[str]) -> str:
    h = hashlib.sha256(json.dumps(settings(spec), sort_keys=True).encode())
    for d, t in zip(doc_ids, texts):
        h.update(f"{d}\x1f{t}\x1e".encode())
    return h.hexdigest()[:40]


def build_index(spec: BM25System, doc_ids: list[str], texts: list[str], cache_root: Path | None):
    """(retriever, whether it came from the cache). A damaged cached index is rebuilt."""
    bm25s = _bm25s()

    folder = cache_root / "bm25" / _index_key(spec, doc_ids, texts) if cache_root is not None else None
    if folder is not None and (folder / "ids.json").is_file():
        try:
            retriever = bm25s.BM25.load(str(folder), load_corpus=False, allow_pickle=False)
            if json.loads((folder / "ids.json").read_text(encoding="utf-8")) == doc_ids:
                return retriever, True
        except Exception:  # truncated or foreign files: rebuild below
            pass
    tokenize = _Tokenizer(spec)
    retriever = bm25s.BM25(k1=spec.k1, b=spec.b, delta=spec.delta, method=spec.method)
    retriever.index(tokenize(texts, ids=True), show_progress=False)
    if folder is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        try:
            retriever.save(str(tmp), allow_pickle=False)
            (tmp / "ids.json").write_text(json.dumps(doc_ids), encoding="utf-8")  # written last: marks complete
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return retriever, False


def index_bytes(retriever) -> int:
    arrays = sum(int(np.asarray(a).nbytes) for a in retriever.scores.values() if hasattr(a, "nbytes"))
    return arrays + sum(len(t.encode()) + 8 for t in retriever.vocab_dict)


def score_all(retriever, tokens: list[str], n_docs: int) -> np.ndarray:
    """One query's BM25 score for every document (float32, bm25s' precision); a query with no indexed term
    scores 0 everywhere."""
    if not tokens or not retriever.get_tokens_ids(tokens):
        return np.zeros(n_docs, dtype=np.float32)
    return np.asarray(retriever.get_scores(tokens), dtype=np.float32)


def run_bm25(name: str, spec: BM25System, dataset, *, depth: int, cache) -> SystemRun:
    check_bm25(spec)
    t0 = time.perf_counter()
    doc_ids = list(dataset.corpus)
    texts = [dataset.corpus[d].full_text for d in doc_ids]
    retriever, cached = build_index(spec, doc_ids, texts, cache.root if cache else None)
    t1 = time.perf_counter()
    tokenize = _Tokenizer(spec)
    qids = list(dataset.queries)
    q_tokens = tokenize([dataset.queries[q] for q in qids], ids=False)
    ranks = id_ranks(doc_ids)
    rankings = {q: top_k(score_all(retriever, toks, len(doc_ids)), doc_ids, ranks, depth)
                for q, toks in zip(qids, q_tokens)}
    t2 = time.perf_counter()

    def search_one(text: str):
        return top_k(score_all(retriever, tokenize([text], ids=False)[0], len(doc_ids)), doc_ids, ranks, depth)

    return SystemRun(name=name, kind="bm25", rankings=rankings, info=settings(spec),
                     index_bytes=index_bytes(retriever),
                     timings={"index_s": round(t1 - t0, 3), "index_cached": cached, "retrieve_s": round(t2 - t1, 3)},
                     conventions={"similarity": "BM25 score (bm25s, float32)",
                                  "tie_break": "score desc, then document id desc (trec_eval's order)"},
                     search_one=search_one)
