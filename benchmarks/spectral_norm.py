"""The spectral norm of the Computer Language Benchmarks Game: the largest
singular value of the infinite matrix A with a[i][j] = 1 / ((i + j) *
(i + j + 1) / 2 + i + 1), by ten rounds of the power method on A'A
truncated to n x n.

    python benchmarks/spectral_norm.py [N]

prints the norm to 9 digits; `spectral_norm(n)` returns it.
"""

import math
import sys


def eval_A(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def times_A(u, out):
    """out = A u"""
    n = len(u)
    for i in range(n):
        total = 0.0
        for j in range(n):
            total += eval_A(i, j) * u[j]
        out[i] = total


def times_At(u, out):
    """out = A' u"""
    n = len(u)
    for i in range(n):
        total = 0.0
        for j in range(n):
            total += eval_A(j, i) * u[j]
        out[i] = total


def times_AtA(u, out, tmp):
    times_A(u, tmp)
    times_At(tmp, out)


def spectral_norm(n):
    u = [1.0] * n
    v = [0.0] * n
    tmp = [0.0] * n
    for _ in range(10):
        times_AtA(u, v, tmp)
        times_AtA(v, u, tmp)
    vBv = vv = 0.0
    for ue, ve in zip(u, v, strict=True):
        vBv += ue * ve
        vv += ve * ve
    return math.sqrt(vBv / vv)


if __name__ == "__main__":
    print(f"{spectral_norm(int(sys.argv[1]) if len(sys.argv) > 1 else 100):.9f}")
