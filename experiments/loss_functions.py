"""Paper A: softmax, cosine and AM-softmax on Weather and Fruits, three seeds."""

from _run import run

if __name__ == "__main__":
    run(["losses", "--data-dir", "../shared/data/weather", "--data-dir", "../shared/data/fruits",
         "--loss", "softmax", "--loss", "cosine", "--loss", "am-softmax",
         "--seed", "0", "--seed", "1", "--seed", "2"], [])
