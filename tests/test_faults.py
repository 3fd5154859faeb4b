"""Fault injection: every guard kind forced to fail still gives CPython's answer.

With `JIT(fail_guards={kind})` (COPYJIT_FAIL_GUARDS=kind) every guard of
that kind in every trace and bridge jumps to its exit (copyjit/trace/faults.py),
so the exit paths (boxing the unboxed locals back, pushing the stack,
resuming the interpreter at the guard's instruction, bridges from there)
run wherever that kind of guard stands. Each kind of the uop table has a
program that makes the JIT emit it; a new kind with neither a program nor
a reason to have none fails `test_every_guard_kind_has_a_program`.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from copyjit.trace import faults
from copyjit.trace.jit import JIT
from tests.conftest import outcome

ROOT = Path(__file__).resolve().parent.parent

_INTS = '''
def main():
    t, x = 0, 7
    for i in range(300):
        t = (t + i * 3 - x) % 1000003
        x = -x
        t += (i << 2) + (t >> 3) + t // 7 + abs(x - i)
        t += 1000 // (i - 290)  # raises at i == 290
    return t, x
'''
_FLOATS = '''
import math
def main():
    t, y = 0.5, 1.25
    for i in range(300):
        y = y * 1.0001 + 0.5
        t += math.sqrt(y) + math.sin(y) + math.cos(t) + math.exp(-1.0 / y) + math.log(y)
        t = t / 3.0 + y ** 0.5 + (t * 1e-3) ** 2.0
    return t, y
'''
_OBJECTS = '''
G = 3
class P:
    def __init__(self, v):
        self.v = v
def helper(x):
    return x + 1
def pure(x):
    return x * 2
def main():
    xs = [1, 2, 3, 4, 5] * 20
    ts = tuple(xs)
    ps = [P(i) for i in range(10)]
    out = []
    n = None
    t = k = 0
    for i in range(200):
        a = xs[i % 100]
        b = ts[i % 100]
        xs[i % 100] = a + 1
        p = ps[i % 10]
        t += a + b + G + len(xs) + p.v + helper(i) + pure(i)
        if n is None:
            k += 1
        if p is not None:
            k += 2
        out.append(i)
        t = t % 1000003
    return t, k, len(out), xs[:5]
'''
_ITERATION = '''
def main():
    xs = [1.5, 2.5, 3.5] * 50
    ts = (1, 2, 3) * 50
    t, k = 0.0, 0
    for x in xs:
        t += x
    for x in ts:
        k += x
    for i, x in enumerate(xs):
        t += x * i
    for i, x in enumerate(ts):
        k += x * i
    for a, b in [(1, 2), (3, 4)] * 40:
        k += a - b
    return t, k
'''
_CELL = '''
def main():
    c = 5
    def g():
        return c
    t = 0
    for i in range(200):
        t += c
    return t, g()
'''
_MODULE = '''
import math
def main():
    t = 0.0
    for i in range(200):
        t += math.pi + math.floor(1.5)
    return t
'''
# Loads of a loop that runs no code, moved before it (licm), borrowed; the
# loop nested: its own trace, then run inline with its pre-header.
_INVARIANT_LOADS = '''
import math
RATE = 0.25
TABLE = [1.5, -2.0, 0.5, 4.0]
def main():
    t = 0.0
    for j in range(30):
        for i in range(10):
            t += RATE * i + math.pi + TABLE[i % 4] + len(TABLE)
        t -= j
    return t
'''
_BRANCHES = '''
def main():
    t = 0
    for i in range(300):
        if i % 3 == 0:
            t += i
        elif i % 3 == 1:
            t -= 1
        else:
            t = t * 2 % 1000003
    return t
'''
_BIG = '''
def main():
    t, big, n = 2**70, 2**70, 0
    for i in range(200):
        t = t * 3 + i
        t = t % 2**90
        if big > 2**65 + i:
            n += 1
    return t, n
'''
_NESTED_LIST = '''
def main():
    xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    t = 0
    for i in range(100):
        for x in xs:
            t += x
    return t
'''
_NESTED_CALLED = '''
def main():
    t = 0
    for i in range(100):
        for j in range(40):  # a bridge in it: called, not run inline
            if j % 2:
                t += j
            else:
                t -= 1
    return t
'''
_GLOBAL_STORE = '''
G = 0
def main():
    global G
    for i in range(200):
        G = G + i + len(str(i))  # (a loop storing a global keeps its loads: the builtins too)
    return G
'''
_CHECKED_LOAD = '''
def main():
    t = []
    for i in range(200):
        if i > 0:
            t.append(v)
        v = str(i)
    return len(t), t[-1]
'''
_FLOAT_ITEMS = '''
seen = []
def note(i):
    seen.append(i)
def main():
    ys = [0.5] * 10
    for i in range(200):
        ys[i % 10] = ys[i % 10] * 0.5 + i
        note(i)  # a call that may run code: licm leaves the loop, the store is not _PLAIN
    return ys, len(seen)
'''

_CONSTANT_ITEMS = '''
def main():
    xs = [0.5 * i for i in range(10)]
    ts = tuple(xs)
    objs = ["a", "b", "c"]
    tobjs = ("x", "y", "z")
    ys = [0.5] * 10
    row = [None, None, None]
    t = 0.0
    out = []
    for i in range(200):
        t += xs[3] * 2.0 + ts[2] * 3.0  # constant indexes: the index in the oparg
        out.append(objs[1])
        out.append(tobjs[2])
        row[2] = objs[i % 3]
        ys[0] = ys[0] * 0.5 + i
    return t, len(out), row, ys
'''

_VECTORS = '''
def main():
    r = [0.5, 1.5, 2.5]
    v = [0.25, -0.5, 1.0]
    t = 0.0
    for i in range(200):
        r[0] += v[0] * 0.5  # constant indexes of two lists: one size check each
        r[1] += v[1] * 0.5
        r[2] += v[2] * 0.5
        t += r[0] + r[1] + r[2]
    return t, r, v
'''

_BORROWED_ITEMS = '''
def main():
    xs = [0.5 * i for i in range(10)]
    ts = tuple(xs)
    t = 0.0
    for i in range(200):
        t += xs[i % 10] * 2.0 + ts[i % 10] * 3.0  # items only unboxed: borrowed
    rows, r = [ts, xs], 1
    for i in range(200):
        t += rows[r][i % 10] + rows[0][i % 7]  # rows[r], rows[0]: read before the loop
    ps = [(0.5 * i, i) for i in range(10)] * 20
    for a, b in ps:  # a for loop's items, only unpacked: borrowed
        t += a * b
    for a, b in tuple(ps):
        t -= a
    return t
'''
_ATTRIBUTES = '''
class P:
    k = 3
    def __init__(self, v, w):
        self.v = v
        self.w = w
        self.tag = None
    def scaled(self, n):
        t = 0.0
        for i in range(n):
            t += self.w * i  # self.w: read once, before the loop
        return t
    def get(self):
        return self.v
def main():
    ps = [P(i, 0.5 * i) for i in range(10)]
    t, k = 0.0, 0
    for i in range(200):
        p = ps[i % 10]
        keep = p.v  # stored: a reference of its own
        k += keep + p.k + p.get()  # p.k, p.get: the class's (the keys guarded)
    for p in ps * 20:
        t += p.w  # only unboxed: borrowed
        p.w += 0.25  # stored unboxed, into the float object in place
        p.v = p.v + 1000  # an int stored unboxed, into the old int object in place once past 256
        p.tag = ps  # an object
    odd = P(1, 2.0)
    odd.__dict__ = {"v": 5, "w": 1.0}  # its own dict: generic lookups
    for i in range(200):
        k += odd.v
    return t + ps[3].scaled(300), k
'''

# A callee that rebinds its caller's unboxed locals (tests/test_frame_locals.py).
# Number locals stored and boxed (their objects: flags, lower.py's
# `shadow`), written to the frame before a call that reads them. (Values
# only: an exit with a local's number on its stack pushes a new box,
# docs/correctness.md bug 18.)
_IDENTITIES = '''
import sys
def peek():
    frame = sys._getframe(1)
    return frame.f_locals["x"] + frame.f_locals["log"][-2]
def main():
    log = []
    x, k, total = 0.5, 1, 0.0
    for i in range(400):
        x = x * 0.5 + i
        k = k * 3 % 1000003 + 1000
        log.append(x)
        log.append(k)
        total += peek()
    return total, log[-4:], x, k
'''
_FRAME_LOCALS = '''
import sys
def halve():
    frame = sys._getframe(1)
    frame.f_locals["x"] = frame.f_locals["x"] / 2.0
    frame.f_locals["k"] = frame.f_locals["k"] // 2
    return 1
def main():
    x, k, total = 1.0, 1, 0.0
    for i in range(400):
        x = x * 1.01 + i
        k = k * 3 + i
        total += halve() + x + k
        if i == 300:
            k = 2 ** 70 // 2 ** 10
    return total, x, k
'''

# A program that makes the JIT emit each guard kind (checked: the stats
# count the guards forced, by kind).
_PLAIN_STORES = '''
import math
class Noisy:
    def __init__(self, name):
        self.name = name
    def __del__(self):
        print("freed", self.name)
def main():
    xs = [float(i) for i in range(300)]
    out = [None] * 300
    counts = [0] * 300
    last = [0.0, 0]
    out[200], counts[100], last[1] = Noisy("out"), Noisy("counts"), Noisy("last")
    for i in range(300):
        out[i] = math.sqrt(xs[i]) * 0.5
        counts[i] = i * 3
        last[0] = out[i] + 1.0
        last[1] = i
    return out[::37], counts[::41], last
'''
_STORES_OVER = '''
def main():
    vs = [[0.5, 1.5, 2.5] for _ in range(4)]
    shared = vs[2][2]  # floats held elsewhere too: not overwritten in place
    held = [vs[2][0]]
    for step in range(100):
        for j in range(4):
            v = vs[j]
            d = step * 0.25 - j
            v[0] -= d  # a constant index
            v[j % 3] += d * 0.5  # an index in a register
    return vs, shared, held
'''
_KEPT_LOCALS = '''
def main():
    rows = [([0.5 * k, 1.0], [0.0, 0.25], k) for k in range(8)]
    same = [2.0, 3.0]
    rows[5] = (same, same, 5)  # the list written is the one x and y come from
    for step in range(60):
        for [x, y], v, k in rows:  # x, y, v, k kept in the trace
            v[0] += x - y
            v[1] -= y * 0.5
    return rows, x, y, v, k
'''
_IDENTITY = '''
class Node:
    def __init__(self, value, after):
        self.value, self.after = value, after

def main():
    end = Node(0.0, None)
    head = end
    for i in range(300):
        head = end if i == 150 else Node(i * 0.5, head)
    wanted, other = object(), object()
    counts = [0, 0]
    for value in ([wanted] * 6 + [other]) * 40:
        if value is wanted:  # (guard_same)
            counts[0] += 1
    total, node = 0.0, head
    while node is not end:  # (guard_distinct)
        total += node.value
        node = node.after
    return counts, total
'''
PROGRAMS: dict[str, str] = {
    "_GUARD_SAME_O": _IDENTITY,
    "_CHECK_VIRTUAL_LOCAL": _KEPT_LOCALS,
    "_GUARD_NOT_SAME_O": _KEPT_LOCALS,
    "branch": _BRANCHES,
    "_CHECK_EVAL_BREAKER": _INTS,
    "_UNBOX_LOCAL_INT": _INTS,
    "_UNBOX_LOCAL_FLOAT": _FLOATS,
    "_SYNC_FLOAT_O": _FRAME_LOCALS,
    "_SYNC_FLOAT_FLAGGED_O": _IDENTITIES,
    "_SYNC_INT_FLAGGED_O": _IDENTITIES,
    "_BOX_FLOAT_LOCAL": _IDENTITIES,
    "_BOX_INT_LOCAL": _IDENTITIES,
    "_SYNC_INT_O": _FRAME_LOCALS,
    "_EXIT_IF_WATCHED": _FRAME_LOCALS,
    "_FOR_ITER_RANGE_UNBOXED_KNOWN": _INTS,
    "_GUARD_TOS_TYPE": _INTS,  # (a loop's iterator, at the entry: lower.py's check_iterator)
    "_ADD_INT": _INTS,
    "_SUB_INT": _INTS,
    "_MUL_INT": _INTS,
    "_MOD_INT": _INTS,
    "_NEG_INT": _INTS,
    "_LSHIFT_INT": _INTS,
    "_RSHIFT_INT": _INTS,
    "_FLOORDIV_INT": _INTS,
    "_ABS_INT": _INTS,
    "_LOAD_GLOBAL_BUILTIN_O": _GLOBAL_STORE,  # (elsewhere licm moves it, borrowed)
    "_GUARD_WATCH_EPOCH": _OBJECTS,  # (a loop that runs code, its loads moved: licm_code.py)
    "_GUARD_IS_O": _OBJECTS,
    "_GUARD_IS_NOT_O": _OBJECTS,
    "_LOAD_GLOBAL_MODULE_O": _OBJECTS,
    "_GUARD_TYPE_O": _OBJECTS,
    "_BINARY_SUBSCR_LIST_INT_O": _OBJECTS,
    "_BINARY_SUBSCR_TUPLE_INT_O": _OBJECTS,
    "_BINARY_SUBSCR_LIST_INT_B": _BORROWED_ITEMS,
    "_BINARY_SUBSCR_TUPLE_INT_B": _BORROWED_ITEMS,
    "_FOR_ITER_LIST_B_KNOWN": _BORROWED_ITEMS,
    "_FOR_ITER_TUPLE_B_KNOWN": _BORROWED_ITEMS,
    "_STORE_SUBSCR_LIST_INT_O": _OBJECTS,
    "_UNBOX_INT_O": _OBJECTS,
    "_BOX_INT_O": _OBJECTS,
    "_GUARD_TYPE_VERSION_O": _OBJECTS,
    "_LOAD_ATTR_GENERIC_O": _ATTRIBUTES,
    "_LOAD_ATTR_INSTANCE_O": _ATTRIBUTES,
    "_LOAD_ATTR_INSTANCE_B": _ATTRIBUTES,
    "_GUARD_KEYS_VERSION_O": _ATTRIBUTES,
    "_STORE_ATTR_INSTANCE_O": _ATTRIBUTES,
    "_STORE_ATTR_INSTANCE_F": _ATTRIBUTES,
    "_STORE_ATTR_INSTANCE_I": _ATTRIBUTES,
    "_GUARD_FUNCTION_O": _OBJECTS,
    "_SQRT_FLOAT": _FLOATS,
    "_SIN_FLOAT": _FLOATS,
    "_COS_FLOAT": _FLOATS,
    "_EXP_FLOAT": _FLOATS,
    "_LOG_FLOAT": _FLOATS,
    "_DIV_FLOAT": _FLOATS,
    "_POW_FLOAT": _FLOATS,  # (t * 1e-3) ** 2.0: an integer exponent
    "_POW_FLOAT_CONST": _FLOATS,  # y ** 0.5
    "_LOAD_ATTR_MODULE_O": _MODULE,
    "_LOAD_GLOBAL_MODULE_B": _INVARIANT_LOADS,
    "_LOAD_GLOBAL_BUILTIN_B": _INVARIANT_LOADS,
    "_LOAD_ATTR_MODULE_B": _INVARIANT_LOADS,
    "_BOX_FLOAT_O": _MODULE,
    "_UNBOX_FLOAT_O": _ITERATION,
    "_FOR_ITER_LIST_O_KNOWN": _ITERATION,
    "_FOR_ITER_TUPLE_O_KNOWN": _ITERATION,
    "_FOR_ITER_ENUMERATE_LIST_O": _ITERATION,
    "_FOR_ITER_ENUMERATE_TUPLE_O": _ITERATION,
    "_GUARD_SIZE_O": _ITERATION,
    "_LOAD_DEREF_O": _CELL,
    "_BINARY_OP_O": _BIG,
    "_ADD_INT_O_I": _BIG,  # t * 3 + i: added into the fresh t * 3
    "_COMPARE_OP_O": _BIG,
    "_GET_ITER_O": _NESTED_LIST,
    "_GUARD_DONE_O": _NESTED_LIST,
    "_CALL_TRACE": _NESTED_CALLED,
    "_RANGE_ITER_O": _NESTED_CALLED,
    "_GUARD_GLOBALS_VERSION": _GLOBAL_STORE,
    "_LOAD_FAST_CHECK_O": _CHECKED_LOAD,
    "_STORE_SUBSCR_LIST_INT_F": _FLOAT_ITEMS,
    "_BINARY_SUBSCR_LIST_CONST_B": _CONSTANT_ITEMS,
    "_GUARD_MIN_SIZE_O": _VECTORS,
    "_BINARY_SUBSCR_TUPLE_CONST_B": _CONSTANT_ITEMS,
    "_BINARY_SUBSCR_LIST_CONST_O": _CONSTANT_ITEMS,
    "_BINARY_SUBSCR_TUPLE_CONST_O": _CONSTANT_ITEMS,
    "_STORE_SUBSCR_LIST_CONST_O": _CONSTANT_ITEMS,
    "_STORE_SUBSCR_LIST_CONST_F": _CONSTANT_ITEMS,
    "_STORE_SUBSCR_LIST_INT_O_PLAIN": _PLAIN_STORES,
    "_STORE_SUBSCR_LIST_INT_F_PLAIN": _PLAIN_STORES,
    "_STORE_SUBSCR_LIST_CONST_O_PLAIN": _PLAIN_STORES,
    "_STORE_SUBSCR_LIST_CONST_F_PLAIN": _PLAIN_STORES,
    "_STORE_SUBSCR_LIST_INT_F_OVER": _STORES_OVER,
    "_STORE_SUBSCR_LIST_CONST_F_OVER": _STORES_OVER,
}

# Uops that may exit but that the tracing front end never emits: the
# backend's generic, stack-based forms, used by hand-written traces
# (tests/test_emitter.py, test_boxed.py, the README's example).
NOT_EMITTED: dict[str, str] = {
    "_GUARD_NOS_TYPE": "stack-based type guard; the front end guards values it holds (_GUARD_TYPE_O)",
    "_BINARY_OP_OR_EXIT": "stack-based boxed arithmetic; the front end uses _BINARY_OP_O",
    "_COMPARE_OP_OR_EXIT": "stack-based boxed comparison; the front end uses _COMPARE_OP_O",
    "_GUARD_IS_TRUE_POP": "stack-based branch; the front end's branches are _JUMP_IF_* (kind `branch`)",
    "_GUARD_IS_FALSE_POP": "stack-based branch; the front end's branches are _JUMP_IF_* (kind `branch`)",
    "_FOR_ITER_RANGE": "boxed range iteration; the front end uses _FOR_ITER_RANGE_UNBOXED_KNOWN",
    **{name: "the front end steps a loop's iterator with its _KNOWN form, its type checked at the entry "
             "(_GUARD_TOS_TYPE)"
       for name in ("_FOR_ITER_RANGE_UNBOXED", "_FOR_ITER_LIST_O", "_FOR_ITER_LIST_B", "_FOR_ITER_TUPLE_O",
                    "_FOR_ITER_TUPLE_B")},
    "_UNPACK_TUPLE2_O": "the front end unpacks with _GUARD_SIZE_O and _TUPLE_ITEM_O / _LIST_ITEM_O",
    "_LOAD_FAST_OR_EXIT": "the front end reads the locals a trace keeps unboxed with _UNBOX_LOCAL_*",
}

# Uops the front end emits only with an exit to _FATAL_ERROR, which faults
# never forces: taking back a number it pushed onto the frame's stack a
# moment before (lower.py's pop_value) cannot fail.
NEVER_FORCED: dict[str, str] = {
    "_UNBOX_INT": "pop_value's unbox of an int it boxed itself",
    "_UNBOX_FLOAT": "pop_value's unbox of a float it boxed itself",
}


def _run(source: str, fail: frozenset[str] | None) -> tuple[tuple[object, ...], dict[str, Any] | None]:
    """What main() of a fresh copy of the program does: plainly (fail None),
    or under a JIT at threshold 1 that fails those guard kinds."""
    namespace: dict[str, Any] = {"__name__": "faulty"}
    exec(compile(source, "<faulty>", "exec"), namespace)
    if fail is None:
        return outcome(namespace["main"]), None
    jit = JIT(1, fail_guards=fail)
    jit.enable()
    try:
        return outcome(namespace["main"]), jit.stats.as_dict()
    finally:
        jit.disable()


def test_every_guard_kind_has_a_program() -> None:
    named = [set(PROGRAMS), set(NOT_EMITTED), set(NEVER_FORCED)]
    assert sum(len(names) for names in named) == len(set.union(*named))
    missing = faults.kinds() - set.union(*named)
    assert not missing, f"guard kinds without a program (or a reason not to have one): {sorted(missing)}"
    assert not set.union(*named) - faults.kinds()


@pytest.mark.parametrize("kind", sorted(NOT_EMITTED))
def test_the_front_end_does_not_name_the_uops_it_never_emits(kind: str) -> None:
    for path in [*(ROOT / "copyjit" / "trace").glob("*.py"), *(ROOT / "copyjit" / "opt").glob("*.py")]:
        assert not re.search(rf"\b{kind}\b", path.read_text()), (kind, path)


@pytest.mark.parametrize("kind", sorted(PROGRAMS))
def test_a_forced_guard_kind_gives_cpython_results(kind: str) -> None:
    source = PROGRAMS[kind]
    expected, _ = _run(source, None)
    got, stats = _run(source, frozenset({kind}))
    assert stats is not None
    assert got == expected, f"{kind}\n{source}"
    assert stats["guards_forced"].get(kind, 0) > 0, (kind, stats["guards_forced"], stats["aborts"])
    assert stats["exits"] > 0
    assert not [reason for reason in stats["aborts"] if reason.startswith("internal error")], stats["aborts"]


@pytest.mark.parametrize("source", sorted(set(PROGRAMS.values())), ids=lambda s: s.split("\n")[1][:30])
def test_every_guard_forced_at_once_gives_cpython_results(source: str) -> None:
    expected, _ = _run(source, None)
    got, stats = _run(source, faults.kinds())
    assert stats is not None
    assert got == expected
    assert stats["exits"] > 0
    assert not set(stats["guards_forced"]) & set(NOT_EMITTED)


def test_random_sets_of_kinds_give_cpython_results() -> None:
    r = random.Random(5)
    programs = sorted(set(PROGRAMS.values()))
    kinds = sorted(faults.kinds())
    for _ in range(20):
        source = r.choice(programs)
        fail = frozenset(r.sample(kinds, r.randint(2, 8)))
        expected, _ = _run(source, None)
        got, _ = _run(source, fail)
        assert got == expected, (sorted(fail), source)


def test_fuzzed_object_programs_with_forced_guards_give_cpython_results() -> None:
    """The object fuzzer's programs (globals rebound, calls that raise,
    bridges, ...) with every guard forced, and with a random few kinds."""
    from tests import test_fuzz_objects as fuzz

    r = random.Random(11)
    kinds = sorted(faults.kinds())
    for seed in range(12):
        for fail in (faults.kinds(), frozenset(r.sample(kinds, 4))):
            expected, _ = fuzz.run_program(seed, None)
            got, _ = _run_fuzz(fuzz, seed, fail)
            assert got == expected, (seed, sorted(fail), fuzz.source(seed))


def _run_fuzz(fuzz: Any, seed: int, fail: frozenset[str]) -> tuple[list[object], dict[str, Any] | None]:
    previous = os.environ.get(faults.ENVIRONMENT)
    os.environ[faults.ENVIRONMENT] = ",".join(sorted(fail))  # the JIT the fuzzer makes reads it
    try:
        return fuzz.run_program(seed, fuzz.threshold_of(seed))  # type: ignore[no-any-return]
    finally:
        if previous is None:
            del os.environ[faults.ENVIRONMENT]
        else:
            os.environ[faults.ENVIRONMENT] = previous


def test_parse() -> None:
    assert faults.parse("") == frozenset()
    assert faults.parse("_ADD_INT, branch") == {"_ADD_INT", "branch"}
    assert faults.parse("all") == faults.kinds()
    assert "branch" in faults.kinds() and "_CHECK_EVAL_BREAKER" in faults.kinds()
    assert "_LOAD_INT_CONST" not in faults.kinds()  # cannot exit
    with pytest.raises(faults.UnknownGuard, match="_ADD_INTS"):
        faults.parse("_ADD_INTS")


def test_the_environment_knob_through_the_differential_runner(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(_BRANCHES + "print(main())\n")
    stats = tmp_path / "stats.json"
    env = {**os.environ, faults.ENVIRONMENT: "all"}
    done = subprocess.run([sys.executable, "-m", "copyjit", "diff", str(program)], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("same"), done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "copyjit", "run", "--threshold", "1", "--stats-json",
                           str(stats), str(program)], env=env, capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    forced = json.loads(stats.read_text())["guards_forced"]
    assert forced.get("branch", 0) > 0 and forced.get("_CHECK_EVAL_BREAKER", 0) > 0, forced
    command = [sys.executable, "-m", "copyjit", "run", "--threshold", "1", "--stats", str(program)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "guards made to fail (COPYJIT_FAIL_GUARDS): " in done.stderr, done.stderr
    assert "branch (" in done.stderr, done.stderr


def test_a_bad_kind_in_the_environment_is_reported(tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text("print(sum(i for i in range(10)))\n")
    env = {**os.environ, faults.ENVIRONMENT: "_NO_SUCH_GUARD"}
    done = subprocess.run([sys.executable, "-m", "copyjit", "run", str(program)], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout == "45\n"
    assert "_NO_SUCH_GUARD" in done.stderr
