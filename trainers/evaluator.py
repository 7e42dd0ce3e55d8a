"""The dev-split evaluator used during training: the harness's own evaluation, on the in-training model.

It is a sentence-transformers evaluator, so the Trainer calls it at each evaluation step and picks the best
checkpoint by its primary metric; the numbers are those ``harness.evaluate`` computes (same encoding, retrieval,
tie-breaking and ranx metrics), so the metric the checkpoint is chosen by is the metric the gate decides on. The
data are loaded once; nothing is cached, since the weights change between calls.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from embedgate.harness.data import RetrievalSet
from embedgate.harness.evaluate import evaluate
from embedgate.harness.models import LoadedModel, ModelSpec


def wrap_model(model, spec: ModelSpec, label: str = "in-training") -> LoadedModel:
    """A LoadedModel around a live SentenceTransformer (not a saved folder: no weights fingerprint, never cached).
    ``spec.max_seq_length`` should be set: it is the length the model is evaluated at."""
    return LoadedModel(spec=spec, path=f"<{label}>", source=label, weights_fp=label, device=str(model.device),
                       model=model)


class HarnessEvaluator(BaseEvaluator):
    def __init__(self, dataset: RetrievalSet, spec: ModelSpec, metrics: Sequence[str], primary: str,
                 name: str = "dev"):
        """``spec``: the base model's spec with max_seq_length set (the gate evaluates the candidate with it)."""
        super().__init__()
        if spec.max_seq_length is None:
            raise ValueError("the dev evaluator needs spec.max_seq_length")
        self.dataset = dataset
        self.spec = spec
        self.metrics = list(metrics)
        self.name = name
        self.primary_metric = primary
        self.greater_is_better = True
        self.history: list[dict[str, Any]] = []

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        t0 = time.perf_counter()
        loaded = wrap_model(model, self.spec)
        trained_length = model.max_seq_length
        model.max_seq_length = loaded.max_seq_length  # evaluate as the gate will, whatever the training length
        try:
            result = evaluate(self.dataset, loaded, metrics=self.metrics, cache=False, show_progress=False)
        finally:
            model.max_seq_length = trained_length
        self.history.append({"step": int(steps), "epoch": None if epoch is None else round(float(epoch), 4),
                             "metrics": {m: round(v, 6) for m, v in result.metrics.items()},
                             "seconds": round(time.perf_counter() - t0, 2)})
        metrics = self.prefix_name_to_metrics(dict(result.metrics), self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return {"data": self.dataset.name, "split": self.dataset.split, "queries": len(self.dataset.queries),
                "documents": len(self.dataset.corpus)}
