"""Paper B: the classic, hard and soft ResNet-18 students (the teacher first; finished runs are reused)."""

from _run import run

if __name__ == "__main__":
    defaults = [("--data-dir", "../shared/data/cats_vs_dogs")]
    run(["teacher"], defaults)
    for mode in ("classic", "hard", "soft"):
        run(["student", "--mode", mode], defaults)
