"""`embedgate init`: a team's own data -> a suite that loads and runs as it is. A shipped BEIR set with its own split
(pointed at, not copied), a csv with mapped columns and document groups (the split never puts a group on both
sides, is seeded and reproducible), a saved Hugging Face DatasetDict with its own split; the README's numbers
checked against evaluate() and against the minimum detectable effect computed here from scipy; bad input and an
existing suite refused with exit 2, naming the column, row and value, and nothing written."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import TINY_TEXTS, write_beir
from embedgate.harness.shells.cli import main

REPO = Path(__file__).resolve().parents[1]
COLS = ["--query-col", "question", "--doc-col", "passage", "--relevance-col", "grade", "--title-col", "heading"]


# ------------------------------------------------------------------------------------------------ helpers


def team_rows() -> list[dict]:
    """A team's judged pairs: 10 source files of 3 chunks, 3 questions per file judging chunks of that file (one
    judged not relevant), one question judging chunks of files 0 and 1 (linking them), and one repeated row."""
    rows = []
    for g in range(10):
        source = f"contracts/file{g}.txt"
        chunks = [f"{TINY_TEXTS[(g + c) % len(TINY_TEXTS)]} clause {c} of file {g}" for c in range(3)]
        for k in range(3):
            question = f"what does file {g} say about {TINY_TEXTS[(g + k) % len(TINY_TEXTS)].split()[1]} {k}"
            rows.append({"question": question, "passage": chunks[k], "heading": f"file {g}", "source": source,
                         "grade": "2" if k == 0 else "1"})
            rows.append({"question": question, "passage": chunks[(k + 1) % 3], "heading": f"file {g}",
                         "source": source, "grade": "0"})
    rows.append({"question": "which files mention governing law and termination", "passage": rows[0]["passage"],
                 "heading": "file 0", "source": "contracts/file0.txt", "grade": "1"})
    rows.append({"question": "which files mention governing law and termination", "passage": rows[6]["passage"],
                 "heading": "file 1", "source": "contracts/file1.txt", "grade": "1"})
    rows.append(dict(rows[2]))  # the same judgment twice: merged, not an error
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def mde_independently(values: list[float], rho: float = 0.8) -> tuple[float, float, int, float]:
    """(sd of differences, MDE, queries for a 5% gain, base mean) from scipy alone: (t(.975) + t(.8)) sd / sqrt(n),
    sd(d) = sd(base) sqrt(2 (1 - rho))."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    sd_d = sd * math.sqrt(2 * (1 - rho))

    def mde(k: int) -> float:
        return (stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)) * sd_d / math.sqrt(k)

    need = 2
    while mde(need) > 0.05 * mean:
        need += 1 if need < 50 else max(1, need // 100)
    while need > 2 and mde(need - 1) <= 0.05 * mean:  # the smallest such n
        need -= 1
    return sd_d, mde(n), need, mean


def expected_sentence(values: list[float]) -> str:
    sd_d, mde, need, mean = mde_independently(values)
    n = len(values)
    tail = (f"a 5% improvement gate needs about {need:,} queries, so this suite can decide it" if need <= n else
            f"a 5% improvement gate would need about {need:,} queries")
    return f"with {n:,} queries this suite can detect about {mde:+.3f} NDCG@10 ({100 * mde / mean:.0f}%); {tail}"


def gates_of(folder: Path) -> list[dict]:
    return tomllib.loads((folder / "suite.toml").read_text())["gates"]


def run_init(args: list[str], capsys) -> tuple[int, str, str]:
    rc = main(["init", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("init-cache")


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("cand") / "model", TINY_TEXTS, seed=1)


@pytest.fixture(scope="module")
def team_suite(tmp_path_factory, tiny_model, cache):
    root = tmp_path_factory.mktemp("team")
    table = write_csv(root / "pairs.csv", team_rows())
    out = root / "suites" / "contracts"
    rc = main(["init", str(table), "--out", str(out), "--base", str(tiny_model), *COLS, "--group-col", "source",
               "--cache-dir", str(cache)])
    assert rc == 0
    return {"out": out, "table": table, "root": root}


# ------------------------------------------------------------------------------------------------ tests


def test_beir_set_with_its_own_split_is_pointed_at_not_copied_and_runs(datasets_dir, tiny_model, candidate, cache,
                                                                        tmp_path, capsys):
    from embedgate.harness import data as data_mod
    from embedgate.harness.evaluate import evaluate
    from embedgate.harness.suite import load_suite, run_suite

    out = tmp_path / "suites" / "acord-mini"
    rc, stdout, _ = run_init([datasets_dir / "acord", "--out", out, "--base", tiny_model, "--max-queries", 12,
                              "--corpus-size", 200, "--cache-dir", cache], capsys)
    assert rc == 0, stdout
    assert sorted(os.listdir(out)) == ["README.md", "suite.toml"]  # no copy of the shipped set
    suite = load_suite(out)
    ref = suite.data["main"]
    assert ref.path == (datasets_dir / "acord").resolve() and ref.split == "test"
    assert not Path(tomllib.loads((out / "suite.toml").read_text())["data"]["main"]["path"]).is_absolute()
    assert (ref.max_queries, ref.corpus_size, ref.seed) == (12, 200, 0)
    assert suite.references["bm25"].kind == "bm25"
    kinds = [(g.kind, getattr(g, "against", None)) for g in suite.gates]
    assert kinds == [("absolute", None), ("improvement", "base"), ("non_inferiority", "base"),
                     ("regression_budget", "base"), ("improvement", "bm25")]

    ds = data_mod.load(datasets_dir / "acord", "test").subset(max_queries=12, corpus_size=200, seed=0)
    measured = evaluate(ds, str(tiny_model), metrics=["ndcg@10"], cache=cache)
    text = (out / "README.md").read_text()
    assert f"| {len(ds.queries)} | {len(ds.corpus):,} | {measured.metrics['ndcg@10']:.4f} |" in text
    assert ds.content_hash in text
    values = [measured.per_query[q]["ndcg@10"] for q in sorted(measured.per_query)]
    assert expected_sentence(values) in text.replace("**With", "**with")

    result = run_suite(out, str(candidate), cache=cache)
    assert len(result.gates) == 5 and all(g.status != "error" for g in result.gates), [g.message for g in
                                                                                        result.gates]
    assert result.datasets["main"].data["content_hash"] == ds.content_hash
    assert result.gates[0].base == pytest.approx(measured.metrics["ndcg@10"])


def test_csv_with_groups_splits_by_group_and_the_suite_runs(team_suite, tiny_model, candidate, cache):
    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite, run_suite

    out = team_suite["out"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "README.md", "data/corpus.jsonl", "data/qrels/test.tsv", "data/qrels/train.tsv", "data/queries.jsonl",
        "suite.toml"]
    rows = team_rows()
    group_of_text = {r["passage"]: r["source"] for r in rows}
    docs = [json.loads(line) for line in (out / "data" / "corpus.jsonl").read_text().splitlines()]
    assert len(docs) == len(group_of_text)  # one document per distinct passage: ids from a hash of the text
    group_of = {d["_id"]: group_of_text[d["text"]] for d in docs}
    assert all(d["title"].startswith("file ") for d in docs)
    sides = {}
    for split in ("train", "test"):
        ds = data_mod.load(out / "data", split)
        sides[split] = {group_of[d] for rels in ds.qrels.values() for d in rels}
        assert len(ds.queries) >= 2
    assert sides["train"] and sides["test"] and not sides["train"] & sides["test"]
    linked = {"contracts/file0.txt", "contracts/file1.txt"}  # one question judges both: they go together
    assert linked <= sides["train"] or linked <= sides["test"]
    n_queries = len({r["question"] for r in rows})
    assert sum(len(data_mod.load(out / "data", s).qrels) for s in ("train", "test")) == n_queries
    assert "1 repeated row (same pair, same grade) merged" in (out / "README.md").read_text()

    suite = load_suite(out)
    assert suite.data["main"].path == (out / "data").resolve()
    result = run_suite(out, str(candidate), cache=cache)
    assert [g.kind for g in result.gates] == ["absolute", "improvement", "non_inferiority", "regression_budget",
                                              "improvement"]
    assert all(g.status != "error" for g in result.gates), [g.message for g in result.gates]


def test_the_split_is_seeded_and_reproducible(team_suite):
    from embedgate.harness.init import Columns, make_split, read_table

    cols = Columns(query="question", document="passage", relevance="grade", title="heading", group="source")
    pooled = read_table(team_suite["table"], cols)
    a, b = make_split(pooled, "test", 0.3, 0), make_split(pooled, "test", 0.3, 0)
    assert a.qrels == b.qrels
    written = (team_suite["out"] / "data" / "qrels" / "test.tsv").read_text().splitlines()[1:]
    assert sorted(q for q in a.qrels["test"]) == sorted({line.split("\t")[0] for line in written})
    others = [make_split(pooled, "test", 0.3, seed).qrels["test"] for seed in (1, 2, 3)]
    assert any(set(o) != set(a.qrels["test"]) for o in others)
    # the same rows in every table format give the same judgments
    rows = team_rows()
    import pandas as pd

    folder = team_suite["root"]
    pd.DataFrame(rows).to_parquet(folder / "pairs.parquet")
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("pairs.parquet", "pairs.jsonl"):
        other = read_table(folder / name, cols)
        assert (other.corpus, other.queries, other.qrels, other.groups) == (pooled.corpus, pooled.queries,
                                                                            pooled.qrels, pooled.groups)


def test_readme_holds_the_measured_numbers_the_hash_and_the_mde(team_suite, tiny_model, cache):
    from embedgate.harness import data as data_mod
    from embedgate.harness.evaluate import evaluate

    out = team_suite["out"]
    ds = data_mod.load(out / "data", "test")
    measured = evaluate(ds, str(tiny_model), metrics=["ndcg@10", "recall@10", "recall@100", "mrr@10"], cache=cache)
    text = (out / "README.md").read_text()
    m = measured.metrics
    assert (f"| {len(ds.queries)} | {len(ds.corpus)} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
            f"{m['recall@100']:.4f} | {m['mrr@10']:.4f} |") in text
    assert f"`{ds.content_hash}`" in text
    values = [measured.per_query[q]["ndcg@10"] for q in sorted(measured.per_query)]
    sentence = expected_sentence(values)
    assert sentence in text.replace("**With", "**with"), (sentence, text)
    assert f"pytest {out.as_posix()} --candidate PATH" in text
    assert "by document group" in text and "seed 0" in text and "test fraction 0.3" in text
    # the improvement gate asks for at least what the suite can detect: min_relative = MDE / base, rounded up
    _, mde, _, mean = mde_independently(values)
    gain = next(g for g in gates_of(out) if g["kind"] == "improvement" and "against" not in g)
    assert gain["min_relative"] == max(0.01, math.ceil(100 * mde / mean - 1e-9) / 100)
    assert gain["min_relative"] * mean >= mde
    floor = next(g for g in gates_of(out) if g["kind"] == "absolute")
    assert floor["min"] == math.floor((m["ndcg@10"] - 0.01) * 1000 + 1e-9) / 1000 < m["ndcg@10"]
    assert next(g for g in gates_of(out) if g.get("against") == "bm25")["kind"] == "improvement"


def test_a_dataset_dict_with_its_own_test_split_is_used_as_it_is(tmp_path, tiny_model, cache, capsys):
    from datasets import Dataset, DatasetDict

    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite

    rows = team_rows()
    test_questions = {r["question"] for r in rows[:12]}
    folder = tmp_path / "hf"
    DatasetDict({"train": Dataset.from_list([r for r in rows if r["question"] not in test_questions]),
                 "test": Dataset.from_list([r for r in rows if r["question"] in test_questions])}).save_to_disk(
        str(folder))
    out = tmp_path / "suites" / "hf"
    rc, stdout, _ = run_init([folder, "--out", out, "--base", tiny_model, *COLS, "--group-col", "source",
                              "--cache-dir", cache], capsys)
    assert rc == 0
    ds = data_mod.load(out / "data", "test")
    assert len(ds.qrels) == len(test_questions)
    expected = {"q" + hashlib.sha256(q.encode()).hexdigest()[:16] for q in test_questions}
    assert set(ds.qrels) == expected  # ids are a stable hash of the text
    assert "the dataset's own split" in (out / "README.md").read_text()
    assert "--group-col were not used" in stdout or "--group-col was not used" in stdout
    load_suite(out)


def test_an_existing_suite_is_not_overwritten_without_force(team_suite, tiny_model, cache, tmp_path, capsys):
    out = team_suite["out"]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "init", str(team_suite["table"]),
                           "--out", str(out), "--base", str(tiny_model), *COLS], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "already holds a suite (suite.toml, README.md, data/" in proc.stderr and "--force" in proc.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()} == before
    # with --force it is rewritten (on a copy, the fixture stays as it is)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "README.md").write_text("stale")
    rc, _, _ = run_init([team_suite["table"], "--out", copy, "--base", tiny_model, *COLS, "--group-col", "source",
                         "--cache-dir", cache, "--force"], capsys)
    assert rc == 0 and "embedgate init" in (copy / "README.md").read_text()
    assert (copy / "data" / "qrels" / "test.tsv").read_bytes() == (out / "data" / "qrels" / "test.tsv").read_bytes()


BASE_ROWS = [{"question": "governing law", "passage": TINY_TEXTS[0], "heading": "a", "source": "f1", "grade": "1"},
             {"question": "termination", "passage": TINY_TEXTS[1], "heading": "b", "source": "f2", "grade": "1"},
             {"question": "royalties", "passage": TINY_TEXTS[2], "heading": "c", "source": "f3", "grade": "1"}]


def _with(i: int, **changes) -> list[dict]:
    rows = [dict(r) for r in BASE_ROWS]
    rows[i].update(changes)
    return rows


@pytest.mark.parametrize("rows, extra, fragments", [
    (BASE_ROWS, ["--query-col", "query_text"],
     ["bad.csv: no column 'query_text' (--query-col); the columns are: question, passage, heading, source, grade"]),
    (BASE_ROWS + [dict(BASE_ROWS[0], grade="0")], [],
     [".csv:5: field 'grade': line 2 and line 5 judge the same (query, document) pair with different grades, 1 and 0",
      "query 'governing law'"]),
    (_with(1, question="  "), [], [".csv:3: field 'question': line 3: empty text"]),
    (_with(2, passage="", heading=""), [], [".csv:4: field 'passage': line 4: empty text"]),
    (_with(1, grade="high"), [], [".csv:3: field 'grade': line 3: relevance is an integer grade", "got 'high'"]),
    (BASE_ROWS + [dict(BASE_ROWS[0], question="other", source="f9")], ["--group-col", "source"],
     [".csv:5: field 'source': line 2 and line 5 put document", "two groups, 'f1' and 'f9'"]),
    (_with(2, source=""), ["--group-col", "source"], [".csv:4: field 'source': line 4: empty group"]),
    ([dict(r, source="one-file") for r in BASE_ROWS], ["--group-col", "source"],
     ["cannot split: the 3 judged queries all fall in one unit of linked document groups ('one-file')"]),
    (BASE_ROWS, ["--test-fraction", "0.3", "--split", "train"], ["field 'split'", "cannot be called 'train'"]),
], ids=["missing-column", "conflicting-grades", "empty-query", "empty-document", "bad-grade", "two-groups",
        "empty-group", "one-side-empty", "split-named-train"])
def test_bad_tables_exit_2_naming_file_line_column_and_value(tmp_path, tiny_model, capsys, rows, extra, fragments):
    table = write_csv(tmp_path / "bad.csv", rows)
    out = tmp_path / "suites" / "bad"
    cols = ["--query-col", "question", "--doc-col", "passage", "--relevance-col", "grade", "--title-col", "heading"]
    if "--query-col" in extra:
        cols = cols[2:]
    rc, _, err = run_init([table, "--out", out, "--base", tiny_model, *cols, *extra], capsys)
    assert rc == 2, err
    line = err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("embedgate: error: ")
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert not out.exists()  # nothing written


def test_parquet_rows_and_beir_checks_are_located(tmp_path, tiny_model, capsys):
    import pandas as pd

    rows = BASE_ROWS + [dict(BASE_ROWS[1], grade="3")]
    pd.DataFrame([dict(r, grade=int(r["grade"])) for r in rows]).to_parquet(tmp_path / "bad.parquet")
    rc, _, err = run_init([tmp_path / "bad.parquet", "--out", tmp_path / "o1", "--base", tiny_model, *COLS], capsys)
    assert rc == 2 and "bad.parquet:4: field 'grade': row 2 and row 4 judge the same" in err and "1 and 3" in err
    # a BEIR folder gets data.py's own checks; table options are refused for it
    beir = write_beir(tmp_path / "beir", {"d1": ("", "a text"), "d2": ("", "another")}, {"q1": "a", "q2": "b"},
                      {"q1": {"d1": 1}, "q2": {"d9": 1}})
    rc, _, err = run_init([beir, "--out", tmp_path / "o2", "--base", tiny_model], capsys)
    assert rc == 2 and re.search(r"qrels/test.tsv:3: field 'corpus-id': unknown document id 'd9'", err), err
    rc, _, err = run_init([beir, "--out", tmp_path / "o3", "--base", tiny_model, "--query-col", "q"], capsys)
    assert rc == 2 and "--query-col map the columns of a table" in err
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3"))


def test_a_beir_folder_without_the_split_is_pooled_split_by_query_and_written(tmp_path, tiny_model, cache, capsys):
    from embedgate.harness import data as data_mod
    from embedgate.harness.suite import load_suite

    corpus = {f"d{i}": ("", f"{t} number {i}") for i, t in enumerate(TINY_TEXTS * 2)}
    queries = {f"q{i}": f"question {i} about {TINY_TEXTS[i % 8].split()[1]}" for i in range(12)}
    qrels = {f"q{i}": {f"d{i}": 1 + i % 2, f"d{(i + 1) % 16}": 0} for i in range(12)}
    beir = write_beir(tmp_path / "own", corpus, queries, qrels, split="train")
    out = tmp_path / "suites" / "own"
    rc, _, err = run_init([beir, "--out", out, "--base", tiny_model, "--cache-dir", cache], capsys)
    assert rc == 0 and "no 'test' split (available: train)" in err
    train, test = (data_mod.load(out / "data", s) for s in ("train", "test"))
    assert {**train.qrels, **test.qrels} == qrels and not set(train.qrels) & set(test.qrels)

    def u(qid: str) -> float:  # the stated rule, computed here
        digest = hashlib.sha256(f"embedgate-init-split\x1f0\x1f{qid}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2 ** 64

    assert set(test.qrels) == {q for q in queries if u(q) < 0.3}
    assert "splits pooled: train" in (out / "README.md").read_text()
    assert load_suite(out).data["main"].path == (out / "data").resolve()
    # pooling needs one grade per pair across the qrels files
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t2\n")
    rc, _, err = run_init([beir, "--out", tmp_path / "o", "--base", tiny_model], capsys)
    assert rc == 2 and "('q0', 'd0') is judged 2 in dev.tsv and 1 here" in err and "train.tsv" in err, err


def test_a_beir_corpus_field_groups_the_split(tmp_path):
    from embedgate.harness.init import make_split, pool_beir

    folder = tmp_path / "grouped"
    corpus = {f"d{i}": ("", f"{TINY_TEXTS[i % 8]} number {i}") for i in range(16)}
    queries = {f"q{i}": f"question {i}" for i in range(16)}
    write_beir(folder, corpus, queries, {f"q{i}": {f"d{i}": 1} for i in range(16)}, split="train")
    with open(folder / "corpus.jsonl", "w") as fh:  # 4 source files of 4 chunks each
        for doc_id, (title, text) in corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text,
                                 "metadata": {"source": f"file{int(doc_id[1:]) // 4}"}}) + "\n")
    pooled = pool_beir(folder, "metadata.source")
    assert pooled.groups == {f"d{i}": f"file{i // 4}" for i in range(16)}
    split = make_split(pooled, "test", 0.3, 0)
    sides = {s: {pooled.groups[d] for rels in q.values() for d in rels} for s, q in split.qrels.items()}
    assert sides["train"] and sides["test"] and not sides["train"] & sides["test"]
