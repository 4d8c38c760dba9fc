"""A small table type that writes Markdown, CSV and LaTeX the same way every time."""

import math
import os

from kd_keras.replay.run_files import write_text

NOT_RUN = "not run"


def mean_std(values, digits=4):
    """``"m ± s (n=k)"`` over seeds, ``"m"`` for one value, :data:`NOT_RUN` for none."""
    values = [v for v in values if v is not None]
    if not values:
        return NOT_RUN
    m = sum(values) / len(values)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={len(values)})"


def difference(ours, paper, digits=4):
    """``ours - paper`` of the means, signed, or empty when either is missing."""
    ours = [v for v in ours if v is not None]
    if not ours or paper is None:
        return ""
    return f"{sum(ours) / len(ours) - paper:+.{digits}f}"


def number(value, digits=5):
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


class Table:
    """Rows of strings under a title, a caption and column names."""

    def __init__(self, name, title, columns, caption=""):
        self.name, self.title, self.columns, self.caption = name, title, list(columns), caption
        self.rows = []

    def add(self, *cells):
        self.rows.append([str(c) for c in cells])

    def markdown(self):
        lines = [f"### {self.title}", ""]
        if self.caption:
            lines += [self.caption, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def frame(self):
        """The table as a ``pandas.DataFrame`` of strings."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns, dtype=str)

    def csv(self):
        return self.frame().to_csv(index=False, lineterminator="\n")

    def latex(self):
        escape = lambda s: s.replace("±", r"$\pm$").replace("_", r"\_").replace("%", r"\%").replace("#", r"\#")  # noqa: E731
        lines = [r"\begin{table}[ht]", r"\centering", f"\\caption{{{escape(self.title)}}}",
                 r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\hline",
                 " & ".join(escape(c) for c in self.columns) + r" \\", r"\hline"]
        lines += [" & ".join(escape(c) for c in row) + r" \\" for row in self.rows]
        lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    def write(self, folder, latex=False):
        """Writes ``<name>.md``, ``<name>.csv`` (and ``.tex``); returns the paths."""
        paths = []
        for ext, text in (("md", self.markdown()), ("csv", self.csv())) + ((("tex", self.latex()),) if latex else ()):
            path = os.path.join(folder, f"{self.name}.{ext}")
            write_text(path, text)
            paths.append(path)
        return paths
