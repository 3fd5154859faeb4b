"""The n-body simulation of the Computer Language Benchmarks Game: the
Jovian planets orbiting the sun, advanced by a simple symplectic
integrator.

    python benchmarks/nbody.py [STEPS]

prints the system's energy before and after STEPS steps (9 digits), as the
Benchmarks Game's programs do. `nbody(steps)` returns both energies.
"""

import sys

PI = 3.14159265358979323
SOLAR_MASS = 4 * PI * PI
DAYS_PER_YEAR = 365.24

# Position [x, y, z], velocity [vx, vy, vz], mass: the sun, Jupiter,
# Saturn, Uranus and Neptune.
BODIES = (
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], SOLAR_MASS),
    ([4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
     [1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
      -6.90460016972063023e-05 * DAYS_PER_YEAR],
     9.54791938424326609e-04 * SOLAR_MASS),
    ([8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
     [-2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
      2.30417297573763929e-05 * DAYS_PER_YEAR],
     2.85885980666130812e-04 * SOLAR_MASS),
    ([1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
     [2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
      -2.96589568540237556e-05 * DAYS_PER_YEAR],
     4.36624404335156298e-05 * SOLAR_MASS),
    ([1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
     [2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
      -9.51592254519715870e-05 * DAYS_PER_YEAR],
     5.15138902046611451e-05 * SOLAR_MASS),
)


def make_system():
    """Fresh bodies (lists, so that each run starts from the same state) and
    every pair of them."""
    bodies = [(list(r), list(v), m) for r, v, m in BODIES]
    pairs = []
    for i in range(len(bodies) - 1):
        for other in bodies[i + 1:]:
            pairs.append((bodies[i], other))
    return bodies, pairs


def advance(dt, steps, bodies, pairs):
    for _ in range(steps):
        for ([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2) in pairs:
            dx = x1 - x2
            dy = y1 - y2
            dz = z1 - z2
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            b1m = m1 * mag
            b2m = m2 * mag
            v1[0] -= dx * b2m
            v1[1] -= dy * b2m
            v1[2] -= dz * b2m
            v2[0] += dx * b1m
            v2[1] += dy * b1m
            v2[2] += dz * b1m
        for r, [vx, vy, vz], _ in bodies:
            r[0] += dt * vx
            r[1] += dt * vy
            r[2] += dt * vz


def energy(bodies, pairs):
    e = 0.0
    for ((x1, y1, z1), _, m1), ((x2, y2, z2), _, m2) in pairs:
        dx = x1 - x2
        dy = y1 - y2
        dz = z1 - z2
        e -= (m1 * m2) / ((dx * dx + dy * dy + dz * dz) ** 0.5)
    for _, [vx, vy, vz], m in bodies:
        e += m * (vx * vx + vy * vy + vz * vz) / 2.0
    return e


def offset_momentum(bodies):
    """Give the sun the momentum that makes the system's total zero."""
    px = py = pz = 0.0
    for _, [vx, vy, vz], m in bodies:
        px -= vx * m
        py -= vy * m
        pz -= vz * m
    _, v, m = bodies[0]
    v[0] = px / m
    v[1] = py / m
    v[2] = pz / m


def nbody(steps):
    """The energy before and after `steps` steps of 0.01 days."""
    bodies, pairs = make_system()
    offset_momentum(bodies)
    before = energy(bodies, pairs)
    advance(0.01, steps, bodies, pairs)
    return before, energy(bodies, pairs)


if __name__ == "__main__":
    before, after = nbody(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    print(f"{before:.9f}")
    print(f"{after:.9f}")
