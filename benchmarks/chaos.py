"""Chaos: the chaos game, an iterated function system drawn point by point
(the Barnsley fern's four affine maps, each chosen with its probability),
with points as small vector objects and the picture as a grid of counts,
in the spirit of the classic `chaos` benchmark (which draws a spline
fractal the same way).

    python benchmarks/chaos.py [POINTS]

`run(points)` plays that many moves (from a fixed seed) and returns how
many grid cells were hit and a checksum of the grid.
"""

import sys

WIDTH = HEIGHT = 128


class GVector:
    def __init__(self, x=0.0, y=0.0):
        self.x = x
        self.y = y

    def __add__(self, other):
        return GVector(self.x + other.x, self.y + other.y)

    def linear(self, a, b, c, d):
        return GVector(a * self.x + b * self.y, c * self.x + d * self.y)


class Transform:
    def __init__(self, a, b, c, d, e, f, weight):
        self.a, self.b, self.c, self.d = a, b, c, d
        self.shift = GVector(e, f)
        self.weight = weight

    def apply(self, point):
        return point.linear(self.a, self.b, self.c, self.d) + self.shift


class Random:
    """A linear congruential generator: the same numbers on every Python."""

    def __init__(self, seed):
        self.state = seed

    def random(self):
        self.state = (self.state * 1103515245 + 12345) % 2147483648
        return self.state / 2147483648


FERN = [
    Transform(0.0, 0.0, 0.0, 0.16, 0.0, 0.0, 0.01),
    Transform(0.85, 0.04, -0.04, 0.85, 0.0, 1.6, 0.85),
    Transform(0.2, -0.26, 0.23, 0.22, 0.0, 1.6, 0.07),
    Transform(-0.15, 0.28, 0.26, 0.24, 0.0, 0.44, 0.07),
]


def choose(transforms, r):
    for t in transforms:
        if r < t.weight:
            return t
        r -= t.weight
    return transforms[-1]


def play(points, rng):
    grid = [[0] * WIDTH for _ in range(HEIGHT)]
    point = GVector(0.0, 0.0)
    for _ in range(points):
        point = choose(FERN, rng.random()).apply(point)
        column = int((point.x + 2.75) / 5.5 * (WIDTH - 1))
        row = int(point.y / 10.0 * (HEIGHT - 1))
        if 0 <= column < WIDTH and 0 <= row < HEIGHT:
            grid[row][column] += 1
    return grid


def run(points):
    grid = play(points, Random(1234))
    hit = checksum = 0
    for line in grid:
        for count in line:
            hit += count > 0
            checksum = (checksum * 7 + count) % 1_000_000_007
    return hit, checksum


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
