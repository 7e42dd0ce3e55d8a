"""The model card (README.md of the output folder), written from the training manifest for the person who has to
decide whether to promote the model: what it was trained from and on, how, what the dev split said, and how to
gate it. Numbers come from the manifest only."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from embedgate.harness.io import atomic_write_text

from .pairs import kept_out


def _display(path: str | Path) -> str:
    """A path as a reader can type it: relative when under the working directory, else absolute."""
    path = Path(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path.resolve()) if rel.startswith("..") else rel


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _dev_table(manifest: dict[str, Any]) -> list[str]:
    history = manifest.get("dev_metrics") or []
    if not history:
        return ["No dev split was evaluated during training: the last step was kept."]
    names = list(history[0]["metrics"])
    kept = (manifest.get("dev_selection") or {}).get("kept_step")
    lines = ["| step | epoch | " + " | ".join(names) + " |", "|---:|---:|" + "---:|" * len(names)]
    for h in history:
        mark = " (kept)" if h["step"] == kept else " (base model)" if h["step"] == 0 else ""
        lines.append(f"| {h['step']}{mark} | {_fmt(h.get('epoch'), 2)} | "
                     + " | ".join(_fmt(h["metrics"].get(n)) for n in names) + " |")
    sel = manifest.get("dev_selection") or {}
    if sel.get("base") is not None and sel.get("kept") is not None:
        lines += ["", f"Dev {sel['metric']}: {sel['base']:.4f} (base) -> {sel['kept']:.4f} (kept checkpoint, "
                      f"rule: {sel['rule']}). The dev split chose the checkpoint; it says nothing about held-out "
                      "performance. Only the gate does."]
    return lines


def render_card(manifest: dict[str, Any], folder: Path | None = None) -> str:
    m = manifest
    base = m["base_model"]
    tr = m["training"]
    data = m["data"]["train"]
    cont = m["contamination"]
    neg = m.get("hard_negatives")
    suite = m["recipe"].get("suite")
    where = _display(folder if folder is not None else m["candidate"]["path"])
    src = data.get("path", "")
    if data.get("kind") == "retrieval-set":
        what = (f"{data['n_pairs']} (query, judged document) pairs from {data.get('name')} "
                f"[{data.get('split')}], relevance >= {data.get('min_relevance')}, {data['n_queries']} queries")
        holdout = (m["recipe"]["settings"].get("dev") or {}).get("holdout")
        if holdout:
            what += f" ({holdout} further queries of the split held out as the dev set)"
    elif data.get("kind") == "click-log" and isinstance(data.get("stats"), dict):
        st = data["stats"]
        cut = (data.get("rules") or {}).get("before")
        what = (f"{data['n_pairs']} (query, clicked document) pairs from the search log {src}"
                + (f" (rows before {cut})" if cut else "")
                + f": {st.get('qualifying_clicks')} qualifying clicks of {st.get('clicks')}, {data['n_queries']} "
                f"queries" + (f", {st.get('negatives')} skip-above negatives" if st.get("skip_above") == "on" else ""))
    else:
        what = f"{data['n_pairs']} rows from {src}, {data['n_queries']} distinct queries"
    lines = [
        f"# {m['name']}",
        "",
        m.get("description") or "A retrieval embedding model fine-tuned with `embedgate train`.",
        "",
        "**Not promoted until it passes its gate.** A fine-tune can look better on the data it was tuned on and "
        "still be no better, or worse, on held-out queries; run the suite's gates before using it.",
        "",
        "## How to gate it",
        "",
        "```sh",
        f"embedgate gate {_display(Path(suite).parent) if suite else 'suites/<name>'} --candidate {where}",
        "```",
        "",
        "## Base model and data",
        "",
        f"- Base model: `{base['name']}` (weights fingerprint `{base['weights_fingerprint'][:16]}`, max_seq_length "
        f"{base['max_seq_length']}, query prompt {base['query_prompt']!r}, document prompt "
        f"{base['document_prompt']!r}).",
        f"- Training data: {what}; rows sha256 `{data['pairs_sha256'][:16]}`.",
    ]
    if neg:
        lines.append(f"- Hard negatives mined with the base model: {neg['pairs_out']} of {neg['pairs_in']} pairs "
                     f"kept with {neg['settings']['per_pair']} negative(s) each (relative margin "
                     f"{neg['settings']['relative_margin']} per {neg['settings']['margin_reference']}; "
                     f"{neg['skipped_judged_positives']} "
                     f"{kept_out(neg)} kept out of "
                     "the negatives).")
    if cont["clean"]:
        lines.append(f"- Contamination guard: clean against {', '.join(s['name'] for s in cont['checked_against'])} "
                     f"({cont['shared_documents']} training positives are also held-out positives: shared corpus).")
    else:
        lines.append(f"- **Contamination allowed**: {cont['n_overlaps']} training texts overlap held-out queries "
                     "(listed in training_manifest.json). Gate results on those sets are not trustworthy.")
    s = tr["schedule"]
    lines += [
        "",
        "## Training",
        "",
        f"- Loss: {tr['loss']['class']}"
        + (f" wrapped in MatryoshkaLoss {tr['loss']['matryoshka']['dims']}" if tr["loss"].get("matryoshka") else "")
        + f"; batches without duplicates, batch size {s['batch_size']}"
        + (f" x {s['gradient_accumulation_steps']} accumulation" if s["gradient_accumulation_steps"] > 1 else "")
        + (f" x {tr['world_size']} processes" if tr["world_size"] > 1 else "") + ".",
        f"- Schedule: learning rate {s['learning_rate']:g} ({s['lr_scheduler']}, warmup {s['warmup']:g}), "
        f"{tr['global_step']} steps ({tr['epochs']:g} epochs), seed {m['seed']}, {tr['precision']} on "
        f"{tr['device']}, training max_seq_length {tr['train_max_seq_length']}.",
        f"- Time: {m['wall_time_s']:.0f} s in all, {tr['train_runtime_s']:.0f} s training "
        f"({tr['train_samples_per_second']:.2f} samples/s)"
        + (f"; resumed from {Path(tr['resumed_from']).name}" if tr.get("resumed_from") else "") + ".",
        "",
        "## Dev split during training",
        "",
        *_dev_table(m),
        "",
        "## Reproduce",
        "",
        "```sh",
        f"embedgate train {_display(m['recipe']['path']) if m['recipe']['path'] else 'RECIPE.toml'}"
        + "".join(f" --set {o}" for o in m["recipe"].get("overrides") or [])
        + f" --output {_display(m['candidate']['path'])}",
        "```",
        "",
        f"Recipe sha256 `{m['recipe']['sha256'][:16]}`; versions: "
        + ", ".join(f"{k} {v}" for k, v in m["environment"]["packages"].items()
                    if k in ("sentence-transformers", "transformers", "torch")) + ".",
        "Everything above, and more (dev metrics per evaluation, mining statistics, the recipe), is in "
        "`training_manifest.json`.",
        "",
    ]
    return "\n".join(lines)


def write_card(folder: Path, manifest: dict[str, Any]) -> Path:
    return atomic_write_text(Path(folder) / "README.md", render_card(manifest, folder))
