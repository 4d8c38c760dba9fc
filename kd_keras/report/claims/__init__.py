"""The papers' claims, each tested on our runs with the design of :mod:`kd_keras.report.statistics`.

Each row quotes the paper's sentence from ``PAPERS.md``, says how it is read (which sets and
generations, relative or absolute), gives our evidence and the rule that reads the verdict:
``holds`` when every part's interval supports the sentence, ``does not hold`` when Holm's
step-down finds a part that contradicts it, otherwise ``cannot tell at this scale``. Orderings
read off the papers' tables, which their text does not state, are marked as ours.

Modules: :mod:`~kd_keras.report.claims.evidence` (the row type, per-seed evidence),
:mod:`~kd_keras.report.claims.distillation` (students and chains),
:mod:`~kd_keras.report.claims.histograms` (section 4.2, figure 9), :mod:`~kd_keras.report.claims.speed`
(section 4.1) and :mod:`~kd_keras.report.claims.losses` (Paper A).

Examples:
    >>> from kd_keras import report
    >>> from kd_keras.report import claims, paper_values
    >>> table = claims.claims_table(report.kd_groups("results/runs"), report.loss_groups("results/runs"),
    ...                             paper_values.LOSS_TABLE)
    >>> table.columns[0]
    'claim'
"""

from kd_keras.report.claims.distillation import distillation_claims
from kd_keras.report.claims.evidence import Claim, accuracy_difference, chain_run, shared_images
from kd_keras.report.claims.histograms import histogram_claims
from kd_keras.report.claims.losses import loss_claims, loss_difference
from kd_keras.report.claims.speed import speedup_claim
from kd_keras.report.statistics import FAILS, HOLDS, UNSURE
from kd_keras.report.tables import Table

__all__ = ["Claim", "accuracy_difference", "chain_run", "claims_table", "distillation_claims", "histogram_claims",
           "loss_claims", "loss_difference", "paper_b_claims", "shared_images", "speedup_claim",
           "FAILS", "HOLDS", "UNSURE", "RULES", "COLUMNS"]

COLUMNS = ["claim", "the paper says (PAPERS.md)", "read as", "paper", "ours (mean, 95 % interval)", "rule",
           "verdict", "replicates"]

RULES = ("The seed is the unit of replication: each claim's difference is measured once per seed and its 95 % "
         "interval is Student's t over the seeds. In Paper B each seed draws its own train, valid and test images, "
         "so its intervals are not conditional on a split. In Paper A every seed scores the dataset's own valid "
         "images and trains on its own train images: the images' variance is added (the seed × image table's "
         "seed, image and interaction terms each counted once, Welch-Satterthwaite degrees of freedom), so the "
         "interval covers new valid images but is conditional on the shared training split. The speed-up's unit "
         "is the timed image (a delta-method interval of the ratio of mean times), conditional on the processor. "
         "A claim of several parts holds when every part's interval supports it and does not hold when Holm's "
         "step-down finds a contradicting part at a family-wise 2.5 % (one side of a 95 % interval), so a false "
         "'does not hold' has at most that chance. McNemar p-values are per seed, supporting evidence only. One "
         "seed gives no interval and no verdict.")


def paper_b_claims(seeds):
    """Every Paper B row for one group: students, chains, histograms and the speed-up."""
    rows = distillation_claims(seeds) + histogram_claims(seeds)
    speed = speedup_claim(seeds)
    return rows + ([speed] if speed else [])


def claims_table(kd_seeds_by_group, loss_datasets_by_preset, thesis):
    """One table of every claim we can test, with its sentence, reading, evidence, rule and verdict.

    Args:
        kd_seeds_by_group: ``{group: {seed_dir: {run: metrics}}}`` (:func:`kd_keras.report.kd_groups`).
        loss_datasets_by_preset: ``{preset: {dataset: {loss: {seed: run_dir}}}}``
            (:func:`kd_keras.report.loss_groups`).
        thesis: Paper A's Table 4, ``{loss: {dataset key: accuracy}}``.
    """
    table = Table("claims", "The papers' claims, tested on our runs", COLUMNS, RULES)
    for group, seeds in kd_seeds_by_group.items():
        for row in paper_b_claims(seeds):
            table.add(f"B ({group}): {row.claim}", *_cells(row))
    for preset, datasets in loss_datasets_by_preset.items():
        for row in loss_claims(datasets, thesis):
            table.add(f"A ({preset}): {row.claim}", *_cells(row))
    return table


def _cells(row):
    return row.quote, row.reading, row.paper, row.ours, row.rule, row.verdict, row.replicates
