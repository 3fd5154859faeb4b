# copyjit regression (tests/test_regressions.py runs it under CPython and the JIT)
# threshold: 1
# The nested `while` loop's trace (called: it has a bridge) leaves at
# `j < i` with j and i pushed, filling the stack; the outer trace re-read
# its locals through one more stack slot, past the generator object.
# Fixed in lower.py, op_inner_loop's reload_homes.
import gc


def gen(m):
    t = 0
    for i in range(m):
        j = 0
        while j < i:
            if j & 1:
                t += j
            else:
                t -= 1
            j += 1
    yield t


for _ in range(3):
    g = gen(300)
    print(next(g))
    del g
    gc.collect()
