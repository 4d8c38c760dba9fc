"""Paper B's speed-up of the student over the teacher (section 4.1), over the timed images."""

import dataclasses

import numpy as np

from kd_keras.report import paper_values as paper
from kd_keras.report.claims.evidence import Claim
from kd_keras.report.statistics import Part, ratio_of_means, verdict

ABOUT = 0.2  # "about 5 times": within ±20 % of the paper's 4.95, i.e. 3.96 to 5.94
QUOTE = ('Whole test set: ResNet-18 268.80433 s, ResNet-50 1329.45384 s. Difference 1060.65 s; "about 5 times '
         'faster" (ratio 4.95).')


def speedup_claim(seeds):
    """ResNet-50 over ResNet-18, end to end per image; the unit of replication is the timed image.

    Each image is timed once on both networks, so the ratio of the mean times has a
    delta-method interval over the images (pooled over the seeds' timing runs). The interval is
    conditional on the processor the timing ran on, which the ``timing`` table names.
    """
    teacher, student, processors = [], [], set()
    for found in (seeds[k] for k in sorted(seeds)):
        timing = found.get("timing") or {}
        per_image = (timing.get("per_image_ms") or {}).get("end_to_end") or {}
        if "teacher" in per_image and "student" in per_image:
            teacher += per_image["teacher"]
            student += per_image["student"]
            processors.add(f"{timing.get('cpu_model', 'a CPU')}, {timing.get('cpu_threads', '?')} threads")
    if not teacher:
        return None
    ratio = ratio_of_means(np.asarray(teacher), np.asarray(student))
    centred = dataclasses.replace(ratio, mean=ratio.mean - paper.SPEEDUP)  # "within" is around 0
    low, high = (1 - ABOUT) * paper.SPEEDUP, (1 + ABOUT) * paper.SPEEDUP
    part = Part(centred, "within", ABOUT * paper.SPEEDUP)
    return Claim(
        "the ResNet-18 student is about 5 times faster than the ResNet-50 teacher on a CPU", QUOTE,
        "mean seconds per image, ResNet-50 over ResNet-18, at batch size 1 with reading, decoding and resizing "
        f"timed (as the paper's whole-test-set times): 'about 5' read as {low:.2f} to {high:.2f} (4.95 ± 20 %); "
        f"on {'; '.join(sorted(processors))}",
        f"{paper.SPEEDUP}x",
        f"{ratio.text(scale=1, unit='x', mcnemar=False, signed=False)}, pooled over {len(seeds)} seeds' timing runs",
        f"holds if the interval lies inside {low:.2f}-{high:.2f}; does not hold if it lies wholly outside; "
        "else cannot tell", verdict([part]), f"{ratio.n} images")
