"""Losses from a recipe: in-batch negative losses of sentence-transformers, optionally wrapped in MatryoshkaLoss."""
from __future__ import annotations

from typing import Any

from .recipe import LossSettings


def build_loss(settings: LossSettings, model, *, guide=None, world_size: int = 1):
    """``guide``: a SentenceTransformer for the gist losses. With several processes (DDP) the in-batch negatives
    are gathered across devices, so the effective negatives grow with the number of GPUs."""
    from sentence_transformers.sentence_transformer import losses

    gather = world_size > 1
    if settings.name == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model, scale=settings.scale, gather_across_devices=gather)
    elif settings.name == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(model, scale=settings.scale,
                                                         mini_batch_size=settings.mini_batch_size,
                                                         gather_across_devices=gather)
    elif settings.name in ("gist", "cached_gist"):
        if guide is None:
            raise ValueError("the gist losses need a guide model")
        common: dict[str, Any] = dict(temperature=settings.temperature, margin_strategy=settings.margin_strategy,
                                      margin=settings.margin, gather_across_devices=gather)
        if settings.name == "gist":
            loss = losses.GISTEmbedLoss(model, guide, **common)
        else:
            loss = losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=settings.mini_batch_size, **common)
    else:  # the recipe validator lists the names; this is a programming error
        raise ValueError(f"unknown loss {settings.name!r}")
    if settings.matryoshka_dims:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(settings.matryoshka_dims),
                                     matryoshka_weights=list(settings.matryoshka_weights) or None)
    return loss


def describe_loss(settings: LossSettings) -> dict[str, Any]:
    names = {"mnrl": "MultipleNegativesRankingLoss", "cached_mnrl": "CachedMultipleNegativesRankingLoss",
             "gist": "GISTEmbedLoss", "cached_gist": "CachedGISTEmbedLoss"}
    out: dict[str, Any] = {"name": settings.name, "class": names[settings.name]}
    if settings.name in ("mnrl", "cached_mnrl"):
        out["scale"] = settings.scale
    if settings.name.startswith("cached"):
        out["mini_batch_size"] = settings.mini_batch_size
    if settings.name in ("gist", "cached_gist"):
        out.update(guide_model=settings.guide_model, temperature=settings.temperature,
                   margin_strategy=settings.margin_strategy, margin=settings.margin)
    if settings.matryoshka_dims:
        out["matryoshka"] = {"dims": list(settings.matryoshka_dims),
                             "weights": list(settings.matryoshka_weights) or None}
    return out
