"""The Mandelbrot set of the Computer Language Benchmarks Game: a size x
size bitmap of the plane from -1.5-i to 0.5+i, a point in the set when
its orbit stays within radius 2 for 50 iterations.

    python benchmarks/mandelbrot.py [SIZE]

prints how many points are in the set and a checksum of the bitmap (the
Benchmarks Game writes the bitmap itself as a PBM file); `mandelbrot(size)`
returns both.
"""

import sys


def mandelbrot(size, limit=50):
    inside = 0
    checksum = 0
    for y in range(size):
        ci = 2.0 * y / size - 1.0
        for x in range(size):
            cr = 2.0 * x / size - 1.5
            zr = zi = 0.0
            for _ in range(limit):
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                if zr * zr + zi * zi > 4.0:
                    break
            else:
                inside += 1
                checksum = (checksum * 31 + x * size + y) % 1_000_000_007
    return inside, checksum


if __name__ == "__main__":
    inside, checksum = mandelbrot(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    print(inside, checksum)
