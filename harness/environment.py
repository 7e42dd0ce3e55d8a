"""The environment fingerprint stored with every result, so a number can be traced to what produced it."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata

PACKAGES = ("embedgate", "torch", "sentence-transformers", "transformers", "ranx", "faiss-cpu", "numpy", "datasets",
            "numba", "tokenizers", "accelerate")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit(cwd: str | None = None) -> dict:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=cwd).stdout.strip()
        return {"commit": sha or None, "dirty": bool(dirty)} if sha else {}
    except (OSError, subprocess.SubprocessError):
        return {}


def _device_info() -> dict:
    torch = sys.modules.get("torch")  # only when something was encoded: a warm run never imports torch
    if torch is None:
        return {}
    info = {"torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    return info


def environment() -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "hostname_sha256": hashlib.sha256(platform.node().encode()).hexdigest()[:12],
        "packages": {p: v for p in PACKAGES if (v := _version(p))},
        **_device_info(),
        "git": git_commit(),
        "argv": sys.argv[:1],
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stable = {k: v for k, v in env.items() if k not in ("utc", "argv", "git")}
    env["fingerprint"] = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]
    return env
