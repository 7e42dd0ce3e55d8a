"""`pytest suites/<name>` as users run it: items per gate, exit codes, -k/-m, JUnit properties, no silent pass."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

# Imported here, in the outer process: pytester's in-process runs drop modules first imported inside them, and
# numba (under ranx) cannot be imported twice in one process.
import faiss  # noqa: F401
import ranx  # noqa: F401
import sentence_transformers  # noqa: F401
from suite_helpers import write_suite

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def suite_dir(pytester, datasets_dir, tiny_model):
    return write_suite(pytester.path / "suites" / "small", str(tiny_model), datasets_dir)


def run(pytester, test_cache, *args):
    return pytester.runpytest("suites/small", "-p", "no:cacheprovider", f"--embedgate-cache={test_cache}",
                              f"--embedgate-results={pytester.path / 'results'}", *args)


def test_better_candidate_passes_every_gate(pytester, suite_dir, test_cache):
    junit = pytester.path / "junit.xml"
    result = run(pytester, test_cache, "--candidate", MINILM, f"--junitxml={junit}")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*embedgate*", "suite small: PASS: all 4 gates passed"])
    cases = ET.parse(junit).getroot().iter("testcase")
    props = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    gain = props["ndcg@10 improves by 5%"]
    assert gain["embedgate.status"] == "pass" and float(gain["embedgate.p_value"]) < 0.001
    saved = [json.loads(p.read_text()) for p in (pytester.path / "results").glob("*.json")]
    assert len(saved) == 1 and saved[0]["verdict"] == "pass"


def test_candidate_equal_to_base_is_blocked_with_a_readable_message(pytester, suite_dir, test_cache, tiny_model):
    result = run(pytester, test_cache, "--candidate", str(tiny_model))
    result.assert_outcomes(passed=2, failed=2)  # the random tiny model is also below the absolute bar
    assert result.ret == 1
    out = result.stdout.str()
    assert "ndcg@10 >= 0.3: FAIL" in out and "required >= 0.3000" in out
    # the same model twice: every query ties, so the interval [0, 0] rules the asked-for gain out
    assert "ndcg@10 improves by 5%: FAIL (the interval rules out a gain of the required size)" in out
    assert "required: mean gain >=" in out
    assert "Traceback" not in out and "def runtest" not in out


def test_missing_candidate_fails_every_gate_never_skips(pytester, suite_dir, test_cache, monkeypatch):
    monkeypatch.delenv("EMBEDGATE_CANDIDATE", raising=False)
    result = run(pytester, test_cache)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*ERROR: *no candidate model given*"])


def test_k_and_markers_select_gates(pytester, suite_dir, test_cache, tiny_model):
    result = run(pytester, test_cache, "--candidate", str(tiny_model), "-k", "forgetting", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*no forgetting: ndcg@10 within 0.05 of base on guard*", "*1/4 tests collected*"])
    result = run(pytester, test_cache, "--candidate", str(tiny_model), "-m", "gate_absolute", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*1/4 tests collected*"])


def test_invalid_suite_is_a_collection_error_with_file_and_line(pytester, suite_dir, test_cache):
    path = suite_dir / "suite.toml"
    path.write_text(path.read_text().replace('kind = "absolute"', 'kind = "vibes"'))
    result = run(pytester, test_cache, "--candidate", MINILM)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"{path}:*: field 'gates?0?.kind': unknown gate kind 'vibes'*"])  # ? = [ and ]
    assert "Traceback" not in result.stdout.str()


def test_gate_command_exit_codes(suite_dir, test_cache, tiny_model, tmp_path, capsys, monkeypatch):
    from embedgate.harness.shells.cli import main

    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    common = [str(suite_dir), "--cache-dir", str(test_cache), "--results-dir", str(tmp_path), "-q"]
    assert main(["gate", *common, "--candidate", MINILM]) == 0
    out = capsys.readouterr().out
    assert "suite small: PASS" in out
    html = out.split("report: ")[1].split()[0]
    assert html.endswith(".html") and "<svg" in open(html).read()
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "PASS" in text and "ndcg@10 improves by 5%" in text
    assert main(["gate", *common, "--candidate", str(tiny_model)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "rules out a gain of the required size" in out and "result: " in out
    assert main(["gate", *common, "--candidate", str(tmp_path / "no" / "such" / "model")]) == 2
