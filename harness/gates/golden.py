"""``golden``: named queries keep named documents within the top k."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from ..schema import FAIL, PASS, GateResult, Strict
from . import Gate, GateContext


class GoldenQuery(Strict):
    query: str = Field(min_length=1)
    documents: list[str] = Field(min_length=1)


class Golden(Gate):
    summary = "every named (query, document) pair stays within the candidate's top k"
    example = {"k": 5, "queries": [{"query": "q1", "documents": ["d1", "d2"]}]}

    kind: Literal["golden"] = "golden"
    queries: list[GoldenQuery] = Field(min_length=1)
    k: PositiveInt = 10

    def rule(self) -> str:
        return f"golden queries within top {self.k}"

    def requirement(self, confidence: float) -> str:
        return f"every golden document in top {self.k}"

    def depth(self) -> int:
        return self.k

    def shown_queries(self) -> set[str]:
        return {q.query for q in self.queries}

    def toml(self, comment: str = "") -> str:
        lines = ["[[gates]]", 'kind = "golden"' + (f"    # {comment}" if comment else ""), f"k = {self.k}",
                 "queries = ["]
        lines += [f'  {{ query = "{q.query}", documents = [{", ".join(chr(34) + d + chr(34) for d in q.documents)}] }},'
                  for q in self.queries]
        return "\n".join(lines + ["]"])

    def evaluate(self, ctx: GateContext) -> GateResult:
        rows, missing = [], []
        for entry in self.queries:
            qid = entry.query
            if qid not in ctx.candidate_rankings:
                raise KeyError(f"golden query {qid!r} is not a query of this split")
            cand = [d for d, _ in ctx.candidate_rankings[qid]]
            base = [d for d, _ in ctx.base_rankings[qid]]
            for doc in entry.documents:
                c_rank = cand.index(doc) + 1 if doc in cand else None
                b_rank = base.index(doc) + 1 if doc in base else None
                hit = c_rank is not None and c_rank <= self.k
                rows.append({"query_id": qid, "text": ctx.queries.get(qid, ""), "document": doc,
                             "candidate_rank": c_rank, "base_rank": b_rank, "hit": hit})
                if not hit:
                    missing.append(rows[-1])
        ok = not missing
        lines = [f"  {len(rows) - len(missing)} of {len(rows)} golden (query, document) pairs within the top {self.k}"]
        for r in missing[:5]:
            lines.append(f"  missing: \"{r['text'][:70]}\" -> {r['document']} at candidate rank "
                         f"{r['candidate_rank'] or '>depth'} (base rank {r['base_rank'] or '>depth'})")
        return self.result(ctx.dataset_label, PASS if ok else FAIL, lines, requirement=self.requirement(0.95),
                           observed=f"{len(rows) - len(missing)} of {len(rows)} pairs found", decided_by="pairs",
                           threshold={"k": self.k}, n_queries=len({r["query_id"] for r in rows}),
                           details={"pairs": rows, "missing": len(missing)})
