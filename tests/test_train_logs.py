"""Training pairs from a search log: a synthetic log built from ACORD's train judgments plus noise (bench/
make_click_log.py), with every outcome computed again here, row by row, from the log itself: the pairs, the
skip-above negatives, the time cut, the counts; then the recipe path, the contamination guard, and bad logs."""
from __future__ import annotations

import importlib.util
import io
import json
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from conftest import SMALL_CORPUS, SMALL_QRELS, SMALL_QUERIES, write_beir
from embedgate.harness.errors import ConfigError, DataError
from embedgate.harness.schema import LogColumns, LogRules
from embedgate.trainers.logs import apply_rules, pairs_from_log, read_log
from embedgate.trainers.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
CUT = "2026-06-01"
CUT_T = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
MIN_RELEVANCE = 3  # the builder clicks ACORD's 4- and 5-star clauses


def _builder():
    spec = importlib.util.spec_from_file_location("make_click_log", REPO / "bench" / "make_click_log.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def acord(datasets_dir) -> Path:
    return datasets_dir / "acord"


@pytest.fixture(scope="module")
def log(acord, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The log as bench/make_click_log.py writes it (seed 0), and the frame it wrote."""
    out = tmp_path_factory.mktemp("log") / "acord-clicks.parquet"
    assert _builder().main(["--out", str(out), "--data", str(acord), "--seed", "0"]) == 0
    return out, pd.read_parquet(out)


# ------------------------------------------------------------------------------------- the rules, again by hand


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def expected(frame: pd.DataFrame, *, before: float | None = CUT_T, min_dwell: float = 10.0, min_clicks: int = 1,
             max_negatives: int = 3) -> dict:
    """The outcome of the documented rules, computed with plain loops over the log's rows."""
    rows = [r for r in frame.to_dict("records") if before is None or _t(r["timestamp"]) < before]
    clicked = defaultdict(set)  # query -> every document clicked for it, any dwell
    for r in rows:
        if r["clicked"]:
            clicked[r["query"]].add(r["doc_id"])
    clicks = [r for r in rows if r["clicked"]]
    qualifying = [r for r in clicks if r["dwell_s"] >= min_dwell]
    counts = Counter((r["query"], r["doc_id"]) for r in qualifying)
    pairs = {k: n for k, n in counts.items() if n >= min_clicks}
    shown = defaultdict(list)  # impression (query, timestamp) -> [(position, doc)]
    for r in rows:
        shown[(r["query"], r["timestamp"])].append((r["position"], r["doc_id"]))
    skipped: dict[tuple, dict[str, list]] = defaultdict(dict)
    for r in qualifying:
        key = (r["query"], r["doc_id"])
        if key not in pairs:
            continue
        for pos, doc in shown[(r["query"], r["timestamp"])]:
            if pos < r["position"] and doc not in clicked[r["query"]]:
                n, dist = skipped[key].get(doc, (0, 99))
                skipped[key][doc] = (n + 1, min(dist, r["position"] - pos))
    negatives = {k: sorted(skipped[k], key=lambda d: (-skipped[k][d][0], skipped[k][d][1], d))[:max_negatives]
                 for k in pairs}
    return {"rows": rows, "clicked": clicked, "clicks": clicks, "qualifying": qualifying, "pairs": pairs,
            "negatives": negatives, "all_skipped": {k: set(v) for k, v in skipped.items()}}


def run(path: Path, acord: Path, **rules):
    return apply_rules(read_log(path), LogRules(**rules), corpus={d: None for d in _corpus_ids(acord)},
                       corpus_path=acord)


_IDS: dict[Path, set[str]] = {}


def _corpus_ids(acord: Path) -> set[str]:
    if acord not in _IDS:
        with open(acord / "corpus.jsonl", encoding="utf-8") as fh:
            _IDS[acord] = {json.loads(line)["_id"] for line in fh if line.strip()}
    return _IDS[acord]


# ------------------------------------------------------------------------------------------------ outcomes


def test_the_pairs_are_the_judged_pairs_whose_clicks_qualify(log, acord):
    path, frame = log
    result = run(path, acord, before=CUT)
    got = {(p.query, p.document): p.clicks for p in result.pairs}
    exp = expected(frame)
    assert got == exp["pairs"]
    # independently of the rules: the judged clauses clicked for >= 10 s before the cut, with their click counts
    before = frame[frame["timestamp"].map(_t) < CUT_T]
    judged = before[(before["synthetic_relevance"] >= MIN_RELEVANCE) & before["clicked"] & (before["dwell_s"] >= 10)]
    assert got == Counter(zip(judged["query"], judged["doc_id"]))
    assert len(got) > 200 and max(got.values()) >= 2  # deduplicated: one pair per (query, document)
    # the noise clicks (short dwell on unjudged clauses) exist, and min_dwell drops every one of them
    noise = before[before["clicked"] & (before["synthetic_relevance"] == 0)]
    assert len(noise) > 50 and (noise["dwell_s"] < 10).all()
    assert not set(zip(noise["query"], noise["doc_id"])) & set(got)
    assert result.stats["dropped"]["short_dwell"] == int((before["clicked"] & (before["dwell_s"] < 10)).sum())
    # pairs come query by query, the most clicked first
    order = [(p.query, -p.clicks, p.document) for p in result.pairs]
    assert order == sorted(order)


def test_skip_above_negatives_are_the_unclicked_results_above_a_click(log, acord):
    path, frame = log
    exp = expected(frame, max_negatives=100)
    every = run(path, acord, before=CUT, max_negatives=100)  # nothing capped (3 impressions x 9 above)
    for p in every.pairs:
        assert set(p.negatives) == exp["all_skipped"].get((p.query, p.document), set())
        assert list(p.negatives) == exp["negatives"][(p.query, p.document)]
        assert not set(p.negatives) & exp["clicked"][p.query]  # never a document clicked for that query
    # the exclusion is not vacuous: documents skipped above a click that were clicked (noise) elsewhere
    excluded = 0
    for r in exp["qualifying"]:
        excluded += sum(1 for o in exp["rows"] if o["query"] == r["query"] and o["timestamp"] == r["timestamp"]
                        and o["position"] < r["position"] and not o["clicked"]
                        and o["doc_id"] in exp["clicked"][r["query"]])
    assert excluded > 0
    capped = run(path, acord, before=CUT)  # max_negatives = 3: most skipped, then nearest above, then id
    exp3 = expected(frame)
    assert {(p.query, p.document): list(p.negatives) for p in capped.pairs} == exp3["negatives"]
    assert capped.stats["negatives"] == sum(len(v) for v in exp3["negatives"].values())
    assert capped.stats["negatives_before_cap"] == sum(len(v) for v in exp["all_skipped"].values())
    assert max(len(p.negatives) for p in capped.pairs) == 3 and any(not p.negatives for p in capped.pairs)


def test_the_time_cut_comes_before_everything_else(log, acord):
    path, frame = log
    late = frame[frame["timestamp"].map(_t) >= CUT_T]
    assert 0 < len(late) < len(frame)
    cut, full = run(path, acord, before=CUT), run(path, acord)
    assert cut.stats["rows_after_time_cut"] == len(frame) - len(late)
    assert cut.stats["dropped"]["at_or_after_time_cut"] == len(late)
    assert full.stats["rows_after_time_cut"] == len(frame)
    assert {(p.query, p.document): p.clicks for p in full.pairs} == expected(frame, before=None)["pairs"]
    # the pairs whose qualifying clicks all came later are gone; the others count only their earlier clicks
    only_late = {(p.query, p.document) for p in full.pairs} - {(p.query, p.document) for p in cut.pairs}
    qual = frame[frame["clicked"] & (frame["dwell_s"] >= 10)]
    assert only_late
    for q, d in only_late:
        stamps = qual[(qual["query"] == q) & (qual["doc_id"] == d)]["timestamp"].map(_t)
        assert len(stamps) and (stamps >= CUT_T).all()
    assert sum(p.clicks for p in full.pairs) - sum(p.clicks for p in cut.pairs) == int((qual["timestamp"].map(_t)
                                                                                          >= CUT_T).sum())
    # "clicked anywhere in the log" is read after the cut too: a clause clicked for a query only in the gated
    # period is still an earlier negative (what happens later is not known at training time)
    late_clicked = defaultdict(set)
    for q, d in zip(late["query"][late["clicked"]], late["doc_id"][late["clicked"]]):
        late_clicked[q].add(d)
    every = run(path, acord, before=CUT, max_negatives=100)
    assert any(d in late_clicked[p.query] for p in every.pairs for d in p.negatives)
    assert not any(d in late_clicked[p.query] for p in run(path, acord, max_negatives=100).pairs for d in p.negatives)


def test_the_counts_are_exact(log, acord):
    path, frame = log
    for rules, kw in [({"before": CUT}, {}), ({"before": CUT, "min_clicks": 2}, {"min_clicks": 2}),
                      ({"min_dwell_s": 30.0}, {"before": None, "min_dwell": 30.0})]:
        st = run(path, acord, **rules).stats
        exp = expected(frame, **kw)
        clicks_qualifying = Counter((r["query"], r["doc_id"]) for r in exp["qualifying"])
        assert st["rows_read"] == len(frame)
        assert st["rows_after_time_cut"] == len(exp["rows"])
        assert st["clicks"] == len(exp["clicks"])
        assert st["qualifying_clicks"] == len(exp["qualifying"])
        assert st["pairs"] == len(exp["pairs"])
        assert st["queries"] == len({q for q, _ in exp["pairs"]})
        assert st["clicks_in_pairs"] == sum(exp["pairs"].values())
        assert st["negatives"] == sum(len(v) for v in exp["negatives"].values())
        assert st["impressions"] == len({(r["query"], r["timestamp"]) for r in exp["rows"]})
        assert st["dropped"] == {
            "at_or_after_time_cut": len(frame) - len(exp["rows"]), "empty_query": 0, "empty_document": 0,
            "not_clicked": len(exp["rows"]) - len(exp["clicks"]), "click_without_dwell": 0,
            "short_dwell": len(exp["clicks"]) - len(exp["qualifying"]),
            "below_min_clicks": sum(n for n in clicks_qualifying.values() if n < kw.get("min_clicks", 1))}
        assert sum(st["dropped"].values()) + st["clicks_in_pairs"] == st["rows_read"]
    assert run(path, acord, before=CUT, min_clicks=2).stats["dropped"]["below_min_clicks"] > 0


# ------------------------------------------------------------------------------------------------ recipes


RECIPE = """name = "clicks"

[base]
model = "{model}"

[train]
log = "{log}"
corpus = "{suite}"

[train.log_rules]
before = "2026-06-01"
{extra}
[schedule]
max_steps = 2
batch_size = 4
keep = "last"
"""


def write_recipe(folder: Path, log: Path, *, model: str = "sentence-transformers/all-MiniLM-L6-v2",
                 suite: str | Path = REPO / "suites" / "legal", extra: str = "", name: str = "recipe.toml") -> Path:
    path = folder / name
    path.write_text(RECIPE.format(model=model, log=log, suite=suite, extra=extra))
    return path


def test_a_recipe_with_a_log_gives_the_trainer_its_rows(log, acord, tmp_path):
    from embedgate.trainers.train import build_pairs, check_contamination

    path, frame = log
    recipe = load_recipe(write_recipe(tmp_path, path))
    assert recipe.train.source.kind == "log" and recipe.train.corpus.resolve() == acord.resolve()
    assert recipe.suite == (REPO / "suites" / "legal" / "suite.toml").resolve()  # the corpus's suite is guarded
    assert recipe.dev is None and recipe.schedule.keep == "last"
    pairs, dev = build_pairs(recipe)
    assert dev is None
    exp = expected(frame)
    with_neg = {k for k, v in exp["negatives"].items() if v}
    assert {(p.query, p.positive_id) for p in pairs.pairs} == with_neg
    st = pairs.describe()["stats"]
    assert st["negative_columns"] == 3 and st["pairs_without_negative"] == len(exp["pairs"]) - len(with_neg)
    assert st["training_rows"] == len(pairs.pairs) == len(with_neg)
    ds = pairs.to_dataset()
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    texts = {}
    with open(acord / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            texts[rec["_id"]] = f"{rec['title']} {rec['text']}".strip() if rec["title"] else rec["text"]
    for p, row in zip(pairs.pairs, ds):
        negs = exp["negatives"][(p.query, p.positive_id)]
        assert row["anchor"] == p.query and row["positive"] == texts[p.positive_id]
        assert [row[f"negative_{i}"] for i in (1, 2, 3)] == [texts[negs[i % len(negs)]] for i in range(3)]
        assert p.clicks == exp["pairs"][(p.query, p.positive_id)]
    # mining never takes a clicked document: every click of a query counts as its judged positive
    assert pairs.judged[frame["query"].iloc[0]] == {texts[d] for d in exp["clicked"][frame["query"].iloc[0]]}
    assert pairs.judged_label == "clicked documents"  # what mining's statistics, the log and the card call them
    info = pairs.describe()
    assert info["kind"] == "click-log" and info["rules"]["before"] == CUT and info["columns"]["session"] is None
    # the guard checks the log's queries, positives and negatives against the suite's held-out queries
    report = check_contamination(recipe, pairs, allow=False)
    assert report.clean and report.training_texts["query"] == len({p.query for p in pairs.pairs})
    assert {s["name"].split(" (")[0] for s in report.checked_against} == {"legal/main", "legal/science"}


def test_a_held_out_query_in_the_log_is_a_leak(log, acord, tmp_path):
    from embedgate.trainers.contamination import ContaminationError
    from embedgate.trainers.train import build_pairs, check_contamination

    path, frame = log
    leak = json.loads((acord / "queries.jsonl").read_text().splitlines()[2])  # acord_q003, a test query
    assert "acord_q003" in (acord / "qrels" / "test.tsv").read_text()
    extra = frame.iloc[:1].copy()
    extra[["query", "clicked", "dwell_s", "timestamp"]] = [leak["text"], True, 30.0, "2026-05-01T00:00:00Z"]
    leaky = tmp_path / "leaky.parquet"
    pd.concat([frame, extra]).to_parquet(leaky)
    recipe = load_recipe(write_recipe(tmp_path, leaky, extra="skip_above = false\n"))
    pairs, _ = build_pairs(recipe)
    with pytest.raises(ContaminationError, match="acord_q003"):
        check_contamination(recipe, pairs, allow=False)


def test_the_shipped_clicks_recipe_resolves(log, acord):
    from embedgate.trainers.train import build_pairs

    path, frame = log
    recipe = load_recipe(REPO / "trainers" / "recipes" / "legal-clicks.toml", [f"train.log={path}"])
    assert recipe.suite in recipe.contamination.suites and recipe.mining is not None
    assert recipe.dev.source.path.resolve() == acord.resolve() and recipe.dev.source.split == "dev"
    pairs, _ = build_pairs(recipe)
    assert {(p.query, p.positive_id) for p in pairs.pairs} == set(expected(frame)["pairs"])
    assert pairs.to_dataset().column_names == ["anchor", "positive"] and len(pairs.corpus) == len(_corpus_ids(acord))


def test_the_builder_is_deterministic(acord, log):
    b = _builder()
    again = b.build_log(acord, seed=0)
    pd.testing.assert_frame_equal(again, log[1])
    assert not again.equals(b.build_log(acord, seed=1))


# ------------------------------------------------------------------------------------------------ other logs


def test_text_logs_with_sessions_and_epoch_seconds(tmp_path):
    rows = [  # session s1 shows a, b, c for "q"; c clicked; b clicked in s2 for "q": never a negative of "q"
        {"query": "q", "text": "doc a", "sess": "s1", "pos": 1, "click": 0, "t": 1780000000},
        {"query": "q", "text": "doc b", "sess": "s1", "pos": 2, "click": 0, "t": 1780000000},
        {"query": "q", "text": "doc c", "sess": "s1", "pos": 3, "click": 1, "t": 1780000001},
        {"query": "q", "text": "doc b", "sess": "s2", "pos": 1, "click": 1, "t": 1780000100},
        {"query": "q", "text": "doc d", "sess": "s2", "pos": 2, "click": 0, "t": 1780000100},
        {"query": "other", "text": "doc a", "sess": "s1", "pos": 1, "click": 1, "t": 1780000002},
        {"query": "q", "text": "doc e", "sess": "s3", "pos": 1, "click": 0, "t": 1790000000},  # after the cut
        {"query": "q", "text": "doc f", "sess": "s3", "pos": 2, "click": 1, "t": 1790000000},
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cols = LogColumns(document="text", session="sess", position="pos", clicked="click", timestamp="t")
    # epoch seconds: 1780000000 is 2026-05-28, 1790000000 is 2026-09-21
    ps = pairs_from_log(path, columns=cols, rules=LogRules(before="2026-06-30"))
    st = ps.source["stats"]
    assert st["rows_after_time_cut"] == 6 and st["impressions"] == 3 and st["pairs"] == 3
    rows_by = {(p.query, p.positive): p.negatives for p in ps.pairs}
    # c: a skipped above it in s1 (b was clicked for "q" in s2); b: nothing unclicked above; "other": a at the top
    assert rows_by == {("q", "doc c"): ("doc a",)}
    assert st["pairs_without_negative"] == 2 and ps.corpus is None and st["dropped"]["below_min_clicks"] == 0


def test_the_log_without_optional_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("query,doc_id\nq1,d0\nq1,d0\nq2,d1\n")
    corpus = write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, SMALL_QRELS)
    ps = pairs_from_log(path, corpus=corpus)  # no clicked column: every row is a click; no positions: no negatives
    assert [(p.query, p.positive_id, p.clicks) for p in ps.pairs] == [("q1", "d0", 2), ("q2", "d1", 1)]
    assert ps.source["stats"]["skip_above"].startswith("not available") and ps.n_negatives == 0
    with pytest.raises(ConfigError, match="needs positions") as info:
        pairs_from_log(path, corpus=corpus, rules=LogRules(skip_above=True))
    assert info.value.field == "log_rules.skip_above"


# ------------------------------------------------------------------------------------------------ bad input


@pytest.fixture
def small(tmp_path) -> Path:
    return write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, SMALL_QRELS)


GOOD_CSV = ("query,doc_id,clicked,dwell_s,position,timestamp\n"
            "q1,d0,1,30,1,2026-05-01T10:00:00Z\n"
            "q1,d1,0,,2,2026-05-01T10:00:00Z\n"
            "q1,d2,1,40,3,2026-05-01T10:00:00Z\n"
            "q2,d3,1,3,1,2026-05-02T10:00:00Z\n")


@pytest.mark.parametrize("csv, columns, rules, field, line, words", [
    (GOOD_CSV, {"dwell_s": "dwell"}, {}, "dwell", None,
     ["no such column (log_columns.dwell_s = 'dwell')", "query, doc_id, clicked, dwell_s, position, timestamp"]),
    (GOOD_CSV.replace("doc_id", "document"), {}, {}, "doc_id", None, ["log_columns.document_id", "document"]),
    (GOOD_CSV, {}, {"min_dwell_s": 100.0}, None, None,
     ["no usable click in the log's 4 rows", "1 not clicked", "3 clicks with dwell < 100 s"]),
    (GOOD_CSV + "q3,d4,0,,1,2026-04-01T10:00:00Z\n", {}, {"before": "2026-05-01T09:00:00Z"}, None, None,
     ["no usable click in the log's 5 rows: 4 at or after the time cut, 1 not clicked"]),
    (GOOD_CSV.replace("2026-05-02T10:00:00Z", "yesterday"), {}, {}, "timestamp", 5, ["'yesterday'"]),
    (GOOD_CSV.replace("2026-05-02T10:00:00Z", "1780000000000"), {}, {}, "timestamp", 5, ["milliseconds"]),
    (GOOD_CSV.replace("q2,d3,1,3,1", "q2,d3,1,3,0"), {}, {}, "position", 5, ["'0'", "1 = top"]),
    (GOOD_CSV.replace("q1,d1,0", "q1,d1,maybe"), {}, {}, "clicked", 3, ["'maybe'"]),
    (GOOD_CSV.replace("q1,d1,", "q1,x9,").replace("q2,d3,", "q2,x7,") + "q3,x9,1,5,1,2026-05-03T10:00:00Z\n", {},
     {}, "doc_id", 3, ["2 document ids (3 rows) not in the corpus", "'x9', 'x7'"]),
    (GOOD_CSV, {}, {"before": "2020-01-01"}, "timestamp", None,
     ["before = 2020-01-01 leaves no row", "all 4 rows", "from 2026-05-01T10:00:00Z to 2026-05-02T10:00:00Z"]),
])
def test_bad_logs_name_the_file_the_row_and_the_column(small, tmp_path, csv, columns, rules, field, line, words):
    path = tmp_path / "log.csv"
    path.write_text(csv)
    with pytest.raises(DataError) as info:
        pairs_from_log(path, corpus=small, columns=LogColumns(**columns), rules=LogRules(**rules))
    err = info.value
    assert err.path == str(path) and err.field == field and err.line == line, str(err)
    for w in words:
        assert w in err.message, err.message
    assert "\n" not in str(err)


def test_parquet_rows_are_named_as_rows(small, tmp_path):
    frame = pd.read_csv(io.StringIO(GOOD_CSV), dtype=str, keep_default_na=False)
    frame.loc[2, "timestamp"] = "31/12/2025"
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError) as info:
        pairs_from_log(path, corpus=small)
    assert info.value.line == 3 and "(row 3)" in info.value.message and "'31/12/2025'" in info.value.message


@pytest.mark.parametrize("train, field, words", [
    ('suite = "{suite}"\nlog = "{log}"', "train.log", ["one source of training pairs", "not suite and log"]),
    ('log = "{log}"', "train.log", ["corpus"]),
    ('log = "{log}"\ncorpus = "{suite}"\nmin_relevance = 2', "train.min_relevance", ["click log"]),
    ('log = "{log}"\ncorpus = "{suite}"\nsplit = "dev"', "train.split", ["before"]),
    ('suite = "{suite}"\ncorpus = "{suite}"', "train.corpus", ["click log"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[train.log_columns]\ndocument = "text"', "train.corpus", ["texts"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[hard_negatives]\nnum_negatives = 3', "hard_negatives",
     ["skip_above = false"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[dev]\nholdout = 2', "dev.holdout", ["click log"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[train.log_rules]\nbefore = 2026-06-01', "train.log_rules.before",
     ["quotes"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[train.log_rules]\nbefore = "June"', "train.log_rules.before",
     ["ISO 8601"]),
    ('log = "{log}"\ncorpus = "{suite}"\n[train.log_columns]\nclick = "c"', "train.log_columns.click",
     ["unknown key"]),
])
def test_bad_log_recipes_name_the_key(tmp_path, train, field, words):
    (tmp_path / "log.csv").write_text(GOOD_CSV)
    suite = REPO / "suites" / "legal"
    text = ('name = "r"\nsuite = "%s"\n[base]\nmodel = "sentence-transformers/all-MiniLM-L6-v2"\n[train]\n%s\n'
            % (suite, train.format(suite=suite, log=tmp_path / "log.csv")))
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert info.value.field == field, str(info.value)
    assert info.value.line is not None and info.value.path == str(path)
    for w in words:
        assert w in info.value.message, info.value.message


def test_the_cli_exits_2_and_writes_nothing(tmp_path, tiny_model, capsys):
    from embedgate.harness.shells.cli import main

    path = tmp_path / "log.csv"
    path.write_text(GOOD_CSV.replace("2026-05-02T10:00:00Z", "2026-13-45"))
    recipe = write_recipe(tmp_path, path, model=str(tiny_model),
                          extra="", suite=write_beir(tmp_path / "data", SMALL_CORPUS, SMALL_QUERIES, SMALL_QRELS))
    text = recipe.read_text().replace('name = "clicks"', 'name = "clicks"\nallow_contamination = true')
    recipe.write_text(text)
    out = tmp_path / "out"
    assert main(["train", str(recipe), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{path}:5: field 'timestamp': cannot read timestamp '2026-13-45'" in err
    assert not out.exists()
