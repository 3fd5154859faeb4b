"""Attributes: instance attributes read and written, class attributes,
slots, properties and attributes inherited two levels up, on a small
particle system.

    python benchmarks/attrs.py [STEPS]

`run(steps)` moves 50 particles that many steps and returns a checksum
of their positions.
"""

import sys


class Body:
    gravity = -1
    bounce = 3

    def __init__(self, x, y, vx, vy):
        self.x = x
        self.y = y
        self.vx = vx
        self.vy = vy


class Particle(Body):
    def __init__(self, x, y, vx, vy):
        Body.__init__(self, x, y, vx, vy)
        self.hits = 0

    @property
    def speed(self):
        return abs(self.vx) + abs(self.vy)


class Slotted:
    __slots__ = ("count", "limit")

    def __init__(self, limit):
        self.count = 0
        self.limit = limit


def step(particles, box, size):
    for p in particles:
        p.vy += p.gravity
        p.x += p.vx
        p.y += p.vy
        if p.x < 0 or p.x > size:
            p.vx = -p.vx
            p.x = 0 if p.x < 0 else size
            p.hits += 1
        if p.y < 0:
            p.vy = -p.vy - p.bounce if p.vy < -p.bounce else 0
            p.y = 0
            p.hits += 1
        if p.speed > box.limit:
            box.count += 1


def run(steps):
    particles = [Particle(i * 7 % 100, i * 13 % 100, i % 5 - 2, i % 3) for i in range(50)]
    box = Slotted(10)
    for _ in range(steps):
        step(particles, box, 100)
    checksum = box.count
    for p in particles:
        checksum = (checksum * 31 + p.x * 1000 + p.y + p.hits) % 1_000_000_007
    return checksum


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000))
