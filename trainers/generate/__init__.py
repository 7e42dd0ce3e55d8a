"""`embedgate generate`: a folder of domain documents -> synthetic (query, passage) pairs for training and a
held-out suite for the gate.

documents (read) -> chunks (base model's tokenizer) -> queries (Claude through the anthropic SDK, resumable and
budgeted; or offline generators) -> filters -> split by document -> BEIR folder + suite.toml (measured base).
"""
from __future__ import annotations

__all__ = ["GenerateOptions", "generate"]


def __getattr__(name: str):
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
