"""A synthetic search log from a retrieval set's judgments, to train from with ``[train] log = ...``.

Deterministic for a seed. For every judged (query, document) of the split with relevance >= --min-relevance, 1 to
--max-impressions impressions of --results results each: the judged document at a seeded position, the others
drawn from a small per-query pool of documents not judged for that query (so the same distractors recur across a
query's impressions, as real result lists do). The judged document is clicked with probability --click-prob, with a
dwell drawn around 40 s (Gaussian, sd 12, at least 1 s); with probability --noise-prob one distractor is also clicked,
with a short dwell (1-8 s, below the default min_dwell_s of 10). Timestamps are spread uniformly over
[--start, --end) (ISO 8601, UTC, one second apart at least within a query, so query + timestamp identifies an
impression), so a time cut such as ``before = "2026-06-01"`` leaves the later rows out.

Columns: query, doc_id, position (1 = top), clicked, dwell_s (empty when not clicked), timestamp, and, for
inspection only (no rule reads them), query_id and synthetic_relevance (the judged grade; 0 for distractors).
Lower-graded judged documents never appear, so they are neither positives nor negatives.

    python bench/make_click_log.py --out runs/acord-clicks.parquet            # ACORD train, grades >= 3, seed 0
    python bench/make_click_log.py --out runs/acord-clicks.parquet --seed 1 --data $EMBEDGATE_DATA/acord
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATA = Path(os.environ.get("EMBEDGATE_DATA", REPO.parent / "shared" / "datasets")) / "acord"


def build_log(data: str | Path = DEFAULT_DATA, *, split: str = "train", min_relevance: int = 3, seed: int = 0,
              results: int = 10, max_impressions: int = 3, click_prob: float = 0.9, noise_prob: float = 0.3,
              pool: int = 30, start: str = "2026-01-01", end: str = "2026-08-01"):
    """The log as a pandas DataFrame, one row per result shown."""
    import pandas as pd

    from embedgate.harness import data as data_mod

    ds = data_mod.load(data, split)
    rng = random.Random(seed)
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    span = int((datetime.fromisoformat(end).replace(tzinfo=timezone.utc) - t0).total_seconds())
    doc_ids = sorted(ds.corpus)
    rows = []
    for qid in sorted(ds.queries):
        query = ds.queries[qid]
        rels = ds.qrels[qid]
        unjudged = sorted(set(doc_ids) - set(rels))
        distractors = rng.sample(unjudged, min(pool, len(unjudged)))
        used: set[int] = set()
        for doc in sorted(d for d, r in rels.items() if r >= min_relevance):
            for _ in range(rng.randint(1, max_impressions)):
                second = rng.randrange(span)
                while second in used:  # query + timestamp identifies an impression
                    second = (second + 1) % span
                used.add(second)
                stamp = (t0 + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
                position = rng.randint(1, results)
                others = rng.sample(distractors, results - 1)
                ranking = others[:position - 1] + [doc] + others[position - 1:]
                dwell = {}
                if rng.random() < click_prob:
                    dwell[doc] = max(1.0, round(rng.gauss(40.0, 12.0), 1))
                if rng.random() < noise_prob:
                    dwell[rng.choice(others)] = round(rng.uniform(1.0, 8.0), 1)
                for pos, d in enumerate(ranking, start=1):
                    rows.append({"query": query, "doc_id": d, "position": pos, "clicked": d in dwell,
                                 "dwell_s": dwell.get(d), "timestamp": stamp, "query_id": qid,
                                 "synthetic_relevance": rels[d] if d == doc else 0})
    frame = pd.DataFrame(rows)
    frame["dwell_s"] = frame["dwell_s"].astype("float64")  # NaN where not clicked
    return frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the parquet file to write")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="a retrieval-set folder (default: ACORD)")
    ap.add_argument("--split", default="train", help="whose judgments become clicks (default train)")
    ap.add_argument("--min-relevance", type=int, default=3, help="judged grades that get clicks (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=int, default=10, help="results per impression")
    ap.add_argument("--max-impressions", type=int, default=3, help="impressions per judged pair: 1 to this many")
    ap.add_argument("--click-prob", type=float, default=0.9, help="chance the judged document is clicked")
    ap.add_argument("--noise-prob", type=float, default=0.3, help="chance of a short noise click per impression")
    ap.add_argument("--start", default="2026-01-01")
    ap.add_argument("--end", default="2026-08-01")
    args = ap.parse_args(argv)
    frame = build_log(args.data, split=args.split, min_relevance=args.min_relevance, seed=args.seed,
                      results=args.results, max_impressions=args.max_impressions, click_prob=args.click_prob,
                      noise_prob=args.noise_prob, start=args.start, end=args.end)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out)
    print(f"{out}: {len(frame)} rows, {frame['timestamp'].nunique()} timestamps, {int(frame['clicked'].sum())} "
          f"clicks, {frame['query'].nunique()} queries (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
