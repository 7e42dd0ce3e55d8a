"""Loading and validating retrieval sets: every format gives the same set; every defect names file, line, field."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SMALL_CORPUS, SMALL_QRELS, SMALL_QUERIES, write_beir
from embedgate.harness import data
from embedgate.harness.errors import DataError


def test_beir_folder_keeps_graded_relevance_and_excludes_queries_without_positives(small_beir):
    ds = data.load(small_beir, "test")
    assert ds.qrels["q3"] == {"d2": 3, "d4": 1}
    assert ds.qrels["q1"] == {"d0": 2, "d1": 0}
    assert ds.corpus["d0"].full_text == SMALL_CORPUS["d0"][1]
    assert ds.describe()["graded"] is True
    # a query whose only judgment is non-relevant is reported and left out
    write_beir(small_beir, SMALL_CORPUS, {**SMALL_QUERIES, "q5": "nothing relevant"},
               {**SMALL_QRELS, "q5": {"d3": 0}})
    ds = data.load(small_beir, "test")
    assert "q5" not in ds.queries and ds.excluded_queries == ["q5"]


def test_same_content_hash_from_every_format(small_beir, tmp_path):
    import pandas as pd
    from datasets import Dataset, DatasetDict

    beir = data.load(small_beir)
    corpus = pd.DataFrame([{"_id": k, "title": t, "text": x} for k, (t, x) in SMALL_CORPUS.items()])
    queries = pd.DataFrame([{"_id": k, "text": v} for k, v in SMALL_QUERIES.items()])
    qrels = pd.DataFrame([{"query-id": q, "corpus-id": d, "score": r} for q, rs in SMALL_QRELS.items()
                          for d, r in rs.items()])
    tables = tmp_path / "tables"
    (tables / "qrels").mkdir(parents=True)
    corpus.to_parquet(tables / "corpus.parquet")
    queries.to_csv(tables / "queries.csv", index=False)
    qrels.to_csv(tables / "qrels" / "test.csv", index=False)
    hf = tmp_path / "hf"
    Dataset.from_pandas(corpus).save_to_disk(str(hf / "corpus"))
    Dataset.from_pandas(queries).save_to_disk(str(hf / "queries"))
    DatasetDict({"test": Dataset.from_pandas(qrels)}).save_to_disk(str(hf / "qrels"))
    loaded = [beir, data.load(tables), data.load(hf),
              data.load_tables(tables / "corpus.parquet", tables / "queries.csv", tables / "qrels" / "test.csv")]
    assert {d.content_hash for d in loaded} == {beir.content_hash}
    assert [d.format for d in loaded] == ["beir", "tables (parquet)", "hf-datasets", "tables"]


def test_content_hash_changes_with_one_document(small_beir, tmp_path):
    corpus = dict(SMALL_CORPUS)
    corpus["d7"] = ("", corpus["d7"][1] + ".")
    other = write_beir(tmp_path / "other", corpus, SMALL_QUERIES, SMALL_QRELS)
    assert data.load(other).content_hash != data.load(small_beir).content_hash


def _corrupt(folder, name, line_no, new_line):
    path = folder / name
    lines = path.read_bytes().split(b"\n")
    lines[line_no - 1] = new_line
    path.write_bytes(b"\n".join(lines))
    return path


@pytest.mark.parametrize("name,line,content,field,fragment", [
    ("corpus.jsonl", 3, b'{"_id": "d2", "text": "oops"', None, "malformed JSON"),
    ("corpus.jsonl", 2, b'{"_id": "d1", "title": ""}', "text", "missing field"),
    ("corpus.jsonl", 4, b'{"_id": "d0", "text": "again"}', "_id", "duplicate document id 'd0' (first on line 1)"),
    ("corpus.jsonl", 5, b'{"_id": "d4", "title": "", "text": "   "}', "text", "empty text"),
    ("queries.jsonl", 2, b'{"_id": "q2", "text": ""}', "text", "empty text"),
    ("queries.jsonl", 1, b'{"_id": "q1", "text": "caf\xe9"}', None, "not valid UTF-8"),
    ("qrels/test.tsv", 3, b"q9\td1\t1", "query-id", "unknown query id 'q9'"),
    ("qrels/test.tsv", 3, b"q2\tzz\t1", "corpus-id", "unknown document id 'zz'"),
    ("qrels/test.tsv", 3, b"q2\td1\thigh", "score", "relevance must be an integer"),
    ("qrels/test.tsv", 3, b"q2\td1\t1.5", "score", "relevance must be an integer"),
])
def test_defects_name_file_line_and_field(small_beir, name, line, content, field, fragment):
    path = _corrupt(small_beir, name, line, content)
    with pytest.raises(DataError) as err:
        data.load(small_beir)
    e = err.value
    assert (e.path, e.line, e.field) == (str(path), line, field)
    assert fragment in e.message
    assert str(e).startswith(f"{path}:{line}: ")


def test_missing_split_lists_the_available_ones(small_beir):
    with pytest.raises(DataError, match=r"split 'dev' not found; available: test"):
        data.load(small_beir, "dev")


def test_subset_keeps_judged_documents_and_is_seeded(datasets_dir):
    full = data.load(datasets_dir / "scifact", "test")
    a = full.subset(max_queries=50, corpus_size=500, seed=3)
    b = full.subset(max_queries=50, corpus_size=500, seed=3)
    assert a.content_hash == b.content_hash and len(a.queries) == 50 and len(a.corpus) == 500
    assert all(d in a.corpus for rels in a.qrels.values() for d in rels)
    assert a.describe()["sampling"]["parent_content_hash"] == full.content_hash


def test_real_sets_load_with_their_published_counts(datasets_dir):
    acord = data.load(datasets_dir / "acord", "test")
    assert (len(acord.corpus), len(acord.queries), sum(map(len, acord.qrels.values()))) == (3931, 57, 1757)
    obliqa = data.load(datasets_dir / "obliqa", "test")
    assert (len(obliqa.corpus), len(obliqa.queries)) == (13012, 2786)


def test_cli_bad_data_exits_2_without_traceback(small_beir, tiny_model):
    _corrupt(small_beir, "corpus.jsonl", 2, b'{"_id": "d1", "text": 5}')
    proc = subprocess.run([sys.executable, "-m", "embedgate.harness.shells.cli", "eval", str(small_beir), "--model", str(tiny_model)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"corpus.jsonl:2: field 'text': expected a string, got int" in proc.stderr
