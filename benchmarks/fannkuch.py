"""Fannkuch-redux of the Computer Language Benchmarks Game: for every
permutation of 1..n, flip the first k elements (k the first element) until
1 comes first; the maximum number of flips, and a checksum of the flip
counts with alternating signs over the permutations in the Benchmarks
Game's order.

    python benchmarks/fannkuch.py [N]

`run(n)` returns (checksum, maximum flips).
"""

import sys


def run(n):
    perm1 = list(range(n))
    count = [0] * n
    max_flips = checksum = 0
    permutations = 0
    r = n
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        perm = perm1[:]
        flips = 0
        k = perm[0]
        while k:
            i, j = 0, k
            while i < j:
                perm[i], perm[j] = perm[j], perm[i]
                i += 1
                j -= 1
            flips += 1
            k = perm[0]
        if flips > max_flips:
            max_flips = flips
        checksum += flips if permutations % 2 == 0 else -flips
        # The next permutation: rotate the first r + 1 elements left.
        while True:
            if r == n:
                return checksum, max_flips
            first = perm1[0]
            i = 0
            while i < r:
                perm1[i] = perm1[i + 1]
                i += 1
            perm1[r] = first
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        permutations += 1


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
