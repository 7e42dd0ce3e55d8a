"""embedgate's harness: data in, encode, retrieve, score, compare, decide.

The core modules import neither ``trainers`` nor ``reports``; ``cli`` and ``plugin`` sit on top.
"""
from __future__ import annotations

__all__ = ["evaluate", "EvalResult", "ModelSpec", "RetrievalSet", "load_data", "run_suite", "load_suite"]


def __getattr__(name: str):
    # Lazy: importing the package (e.g. as a pytest plugin) must not pull torch or faiss.
    if name in ("evaluate", "EvalResult"):
        from . import evaluate as _e

        return getattr(_e, name)
    if name == "ModelSpec":
        from .models import ModelSpec

        return ModelSpec
    if name == "RetrievalSet":
        from .data import RetrievalSet

        return RetrievalSet
    if name == "load_data":
        from .data import load

        return load
    if name in ("run_suite", "load_suite"):
        from . import suite as _s

        return getattr(_s, name)
    raise AttributeError(name)
