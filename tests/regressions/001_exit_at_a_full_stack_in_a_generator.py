# copyjit regression (tests/test_regressions.py runs it under CPython and the JIT)
# threshold: 1
# The overflow exit of `t * 3` leaves with the frame's stack full; the
# unboxed locals were written back through one more stack slot, past the
# generator object (PYTHONMALLOC=debug: "bad trailing pad byte"). Found by
# fault injection (a nested trace run by the recorder overwrote the
# recorder's frame). Fixed in lower.py, write_back.
import gc


def gen(n):
    t = 1
    for i in range(n):
        t = t * 3
    yield t


for _ in range(3):
    g = gen(100)
    print(next(g) % 1000)
    del g
    gc.collect()
