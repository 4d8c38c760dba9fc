"""Paper B: train the ResNet-50 teacher.  Example: python experiments/teacher.py --preset cpu --weights none"""

from _run import run

if __name__ == "__main__":
    run(["teacher"], [("--data-dir", "../shared/data/cats_vs_dogs")])
