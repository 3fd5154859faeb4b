"""Dicts: insertion, lookup, update, membership and deletion with int and
str keys, dict iteration and `get` with a default, on a word-count and a
memo table.

    python benchmarks/dicts.py [N]

`run(n)` returns a checksum of what the tables held.
"""

import sys

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
         "psi", "omega"]


def word_counts(n):
    counts = {}
    for i in range(n):
        word = WORDS[(i * 7 + i // 3) % len(WORDS)] + str(i % 13)
        counts[word] = counts.get(word, 0) + 1
    return counts


def collatz_lengths(n):
    lengths = {1: 1}
    for start in range(2, n):
        path = []
        k = start
        while k not in lengths:
            path.append(k)
            k = k // 2 if k % 2 == 0 else 3 * k + 1
        length = lengths[k]
        for k in reversed(path):
            length += 1
            lengths[k] = length
    return lengths


def run(n):
    counts = word_counts(n)
    lengths = collatz_lengths(n // 4)
    checksum = len(lengths)
    for word, count in sorted(counts.items()):
        checksum = (checksum * 31 + count + len(word)) % 1_000_000_007
    for start in range(2, n // 4):
        checksum = (checksum + lengths[start]) % 1_000_000_007
    for key in [k for k in lengths if k % 3 == 0]:
        del lengths[key]
    return checksum, len(lengths)


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
