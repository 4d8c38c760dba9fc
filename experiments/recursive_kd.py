"""Paper B: recursive distillation.  Example: python experiments/recursive_kd.py --generations 6 --chain both"""

from _run import run

if __name__ == "__main__":
    run(["recursive"], [("--data-dir", "../shared/data/cats_vs_dogs")])
