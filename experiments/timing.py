"""Paper B, section 4.1: per-image CPU latency of teacher and student, and the speed-up."""

from _run import run

if __name__ == "__main__":
    run(["bench", "--json"], [("--data-dir", "../shared/data/cats_vs_dogs")])
