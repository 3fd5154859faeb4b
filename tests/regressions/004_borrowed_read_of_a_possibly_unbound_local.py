# copyjit regression (tests/test_regressions.py runs it under CPython and the JIT)
# threshold: 1
# x may be unbound (LOAD_FAST_CHECK): the recorder's load_o of it carries
# an exit for that. The borrow pass turns the read into load_b and drops
# the op's snapshot (borrow.py: changed[index] = Op("load_b", "o", (), slot)),
# so the check goes: entered at a backedge with x unbound (the second call,
# whose first iteration neither reads nor binds x), the trace reads NULL
# and guard_type dereferences it (SIGSEGV). CPython: UnboundLocalError.
# The same with `del x` (the trace stores x, so licm does not hoist the
# read with its check), and in a bridge (no licm there: h, whose bridge
# reads x). `--no-opt borrow`: same as CPython.


def f(n, k, y, flag):
    if flag:
        x = y
    t = 0.0
    for i in range(n):
        if i >= k:
            t += x[0] * 2.0
            x = y
    return t


print(f(100, 0, [1.0, 2.0], True))
try:
    print(f(100, 1, [1.0, 2.0], False))
except UnboundLocalError as e:
    print("UnboundLocalError", e)


def g(n, y, m):
    x = y
    t = 0.0
    for i in range(n):
        t += x[0]
        x = y
        if i == m:
            del x
    return t


try:
    print(g(100, [1.0], 50))
except UnboundLocalError as e:
    print("UnboundLocalError", e)


def h(n, k, flag, y):
    if flag:
        x = y
    t = 0.0
    for i in range(n):
        if i % 2 == 1:
            t += 1.0
        elif i >= k:
            t += x[0] * 2.0
    return t


print(h(200, 0, True, [1.0]))
try:
    print(h(200, 2, False, [1.0]))
except UnboundLocalError as e:
    print("UnboundLocalError", e)
