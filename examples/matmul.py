"""Matrix multiplication with lists of lists: `a[i]` is the same row all
through the innermost loop (licm reads it once before the loop)."""
import sys


def matmul(a: list[list[float]], b: list[list[float]], n: int) -> list[list[float]]:
    c = [[0.0] * n for _ in range(n)]
    for i in range(n):
        ci = c[i]
        for j in range(n):
            s = 0.0
            for k in range(n):
                s += a[i][k] * b[k][j]
            ci[j] = s
    return c


def checksum(n: int) -> float:
    """Four products of two n x n matrices; a few of their entries."""
    a = [[float(i * n + j) / n for j in range(n)] for i in range(n)]
    b = [[float(i - j) / n for j in range(n)] for i in range(n)]
    total = 0.0
    for _ in range(4):
        c = matmul(a, b, n)
        a, b = b, c
        total += c[0][0] + c[n // 2][n - 1] + c[n - 1][n // 3]
    return total


if __name__ == "__main__":
    print(checksum(int(sys.argv[1]) if len(sys.argv) > 1 else 80))
