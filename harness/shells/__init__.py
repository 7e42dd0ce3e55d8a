"""The shells on top of the house: the ``embedgate`` command, the pytest plugin, and publishing (result file, HTML
report, CI step summary). They may import every package; the harness core, ``trainers`` and ``reports`` never
import them."""
