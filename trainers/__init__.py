"""Fine-tuning candidates for the gate: recipe -> pairs -> contamination guard -> hard negatives ->
sentence-transformers Trainer (dev metric from the harness) -> model folder, card and training manifest.

Python API: ``from trainers.train import train; result = train("trainers/recipes/legal.toml")``.
The harness never imports this package; this package uses the harness (data loading, models, metrics).
``trainers.generate`` (synthetic queries) lives beside it. Importing the package stays cheap (no torch), since the
CLI scans it for its sub-command.
"""
