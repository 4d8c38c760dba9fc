"""``kd-keras report``: every table and figure of both papers, read from run folders; trains nothing.

The report imports no Keras: it reads the run folders' small files (through
:mod:`kd_keras.replay.layout`'s walkers), so it runs wherever pandas and matplotlib do, and from
the committed run archive alone.

- :func:`write_report`: the tables (Markdown, CSV, optionally LaTeX) and figures;
- :func:`load_runs`: every finished run and split as one tidy pandas frame;
- :mod:`~kd_keras.report.claims`: the papers' claims tested with the seed as the unit
  (:mod:`~kd_keras.report.statistics`), beside the papers' numbers
  (:mod:`~kd_keras.report.paper_values`).

Examples:
    >>> from kd_keras import report
    >>> frame = report.load_runs("results/runs")
    >>> frame.query("split == 'test' and kind == 'student'").groupby("run").accuracy.mean()  # doctest: +SKIP
"""

from kd_keras.report.frame import load_runs
from kd_keras.report.result_tables import kd_groups, loss_groups, write_report

__all__ = ["load_runs", "write_report", "kd_groups", "loss_groups"]
