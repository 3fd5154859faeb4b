"""Instance attributes read from the object's inline values (attr_instance):
which reads take that path, every way the read can fail (an attribute
deleted, a dict of the object's own, a class changed, another type), each
giving CPython's answer, and the reads licm moves before the loop
(`self.scale` in a method's loop)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import pytest

from copyjit.opt import optimize
from copyjit.opt.licm import licm
from copyjit.opt.text import parse
from copyjit.trace.jit import JIT
from tests.test_objects import differential, full_outcome
from tests.test_opt import recordings_of, same


class Body:
    mass = 2.0  # a class attribute: read by generic lookup

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class Heavy(Body):
    def __init__(self, x: float, y: float) -> None:
        super().__init__(x, y)
        self.extra = 1


def sum_x(bodies: list[Any]) -> float:
    total = 0.0
    for b in bodies:
        total += b.x * b.mass + b.y
    return total


def sum_x_main(n: int) -> float:
    return sum_x([Body(0.5 * i, 1.0) for i in range(n)])


def test_an_attribute_the_instance_holds_is_read_from_its_values() -> None:
    texts = recordings_of(Path(__file__), "sum_x_main", 300)  # (as optimized)
    names = [op.name for op in parse(texts[0]).ops]
    # b.x and b.y, only unboxed, with nothing between that could run code:
    # borrowed, the instance holds them.
    assert [name for name in names if name.startswith("attr")] == ["attr_instance_b", "attr_instance_b"]
    # b.mass: the class's, a constant, once the instance's keys are checked
    # to have no `mass`.
    assert names.count("guard_keys") == 1 and names.count("const_o") == 1


def bodies(n: int = 300) -> list[Any]:
    return [Body(0.5 * i, 1.0) for i in range(n)]


def deleted(n: int = 300) -> list[Any]:
    found = bodies(n)
    del found[200].y  # no class attribute y: AttributeError at its line
    return found


def shadowing(n: int = 300) -> list[Any]:
    found = bodies(n)
    found[150].mass = 3.0  # the instance's own now, not the class's
    found[200].mass = 4.0
    del found[200].mass  # the class's again
    return found


def own_dict(n: int = 300) -> list[Any]:
    found = bodies(n)
    vars(found[120])[0] = "a key no shared keys can hold"  # the dict takes the values over
    found[180].__dict__ = {"x": 7.0, "y": 2.0}
    return found


def mixed_types(n: int = 300) -> list[Any]:
    found = bodies(n)
    found[100].x = 3  # an int: the unbox leaves
    found[160] = Heavy(1.0, 2.0)  # another type, more attributes
    found[250].y = "no float"  # TypeError at its line
    return found


@pytest.mark.parametrize("make", [bodies, deleted, shadowing, own_dict, mixed_types])
def test_every_failing_read_gives_cpythons_answer(make: Any) -> None:
    expected = full_outcome(sum_x, make())
    values = make()
    before = _counts(values)
    jit = JIT(1)
    jit.enable(sum_x.__code__)
    try:
        assert sum_x(bodies()) == sum_x(bodies())  # compiled on plain bodies first
        got = full_outcome(sum_x, values)
    finally:
        jit.disable()
    assert got == expected
    assert jit.stats.as_dict()["native_entries"] >= 1
    gc.collect()
    assert _counts(values) == before


def _counts(values: list[Any]) -> list[int]:
    """The reference counts of the bodies and of their x (each its own float)."""
    return [sys.getrefcount(b) for b in values] + [sys.getrefcount(getattr(b, "x", None)) for b in values]


def test_a_class_attribute_added_over_the_instances_is_seen() -> None:
    class Point:
        def __init__(self, x: float) -> None:
            self.x = x

    def total(points: list[Point]) -> float:
        t = 0.0
        for p in points:
            t += p.x
        return t

    points = [Point(0.5 * i) for i in range(300)]
    jit = JIT(1)
    jit.enable(total.__code__)
    try:
        first = total(points)
        Point.x = property(lambda self: 1.0)  # type: ignore[assignment, misc]  # a data descriptor wins
        second = total(points)
        del Point.x
        third = total(points)
    finally:
        jit.disable()
    assert (first, second, third) == (sum(0.5 * i for i in range(300)), 300.0, first)


# --- attributes of a local the loop only reads: before the loop ------------------

class Scaled:
    def __init__(self, scale: Any, n: int) -> None:
        self.scale, self.n = scale, n

    def total(self) -> float:
        s = 0.0
        for i in range(self.n):
            s += self.scale * i  # self: only read; self.scale: the same all the loop
        return s

    def calls(self) -> float:
        s = 0.0
        for i in range(self.n):
            s += self.scale * abs(i)  # a call: code may run, nothing moves
        return s


def scaled_main(n: int) -> float:
    return Scaled(1.5, n).total()


ATTRS = """trace dst=48 src=88 slots=0:o,1:f,2:i stored=2,1
i = range_next.i() | exit @48 normal
    store.i(i) 2
s = load.f() 1
me = load_o.o() 0
    guard_type.(me) 77 | exit @56 stack s me
    guard_version.(me) 131 | exit @56 stack s me
a = attr_instance.o(me) (0, 16) | exit @56 stack s me
    release.(me)
x = unbox.f(a) | exit @78 stack s a i
    release.(a)
f = to_float.f(i)
m = binary.f(x, f) 'mul' | exit @78 stack s a i
t = binary.f(s, m) 'add' | exit @82 stack s m
    store.f(t) 1
"""


def test_an_attribute_read_the_same_every_iteration_is_read_once_before_the_loop() -> None:
    same(licm(parse(ATTRS)), """trace dst=48 src=88 slots=0:o,1:f,2:i stored=2,1
me = load_o.o() 0
    guard_type.(me) 77 | exit @48 drop me
    guard_version.(me) 131 | exit @48 drop me
a = attr_instance_b.o(me) (0, 16) | exit @48 drop me
x = unbox.f(a) | exit @48 drop me
    release.(me)
    loop_head.()
i = range_next.i() | exit @48 normal
    store.i(i) 2
s = load.f() 1
b = load_b.o() 0
f = to_float.f(i)
m = binary.f(x, f) 'mul' | exit @78 stack s a i
t = binary.f(s, m) 'add' | exit @82 stack s m
    store.f(t) 1
""")


def test_an_attribute_of_a_stored_local_stays_in_the_loop() -> None:
    rec = parse(ATTRS.replace("stored=2,1", "stored=2,1,0") + "a2 = load_o.o() 0\n    store_o.(a2) 0\n")
    assert "attr_instance_b" not in [op.name for op in licm(rec).ops]


def test_a_method_loop_reads_its_attribute_before_the_loop() -> None:
    texts = recordings_of(Path(__file__), "scaled_main", 300)
    names = [op.name for op in optimize(parse(texts[0]), check=True).ops]
    head = names.index("loop_head")
    assert "attr_instance_b" in names[:head] and "guard_version" in names[:head]
    assert not {"attr_instance", "attr_instance_b", "guard_version"} & set(names[head:])


def test_an_attribute_changed_between_runs_is_read_again() -> None:
    me = Scaled(1.5, 300)
    jit = JIT(1)
    jit.enable(Scaled.total.__code__)
    try:
        results = [me.total()]
        me.scale = 2.5
        results.append(me.total())
        me.scale = 2  # an int now: the unbox before the loop leaves
        results.append(me.total())
        del me.scale  # unset: AttributeError at its line
        results.append(full_outcome(Scaled.total, me))
        me.scale = 0.5
        results.append(me.total())
    finally:
        jit.disable()
    expected = [150 * 299 * k for k in (1.5, 2.5, 2)]
    assert results[:3] == expected and results[4] == 150 * 299 * 0.5
    assert results[3][:2] == ("raised", "AttributeError")
    assert jit.stats.as_dict()["native_entries"] >= 3


@pytest.mark.parametrize("scale", [1.5, 3, "no number"])
def test_attribute_loops_give_what_cpython_gives(scale: Any) -> None:
    value = scale
    before = sys.getrefcount(value)
    differential(Scaled.total, Scaled(scale, 300), native=scale != "no number")
    differential(Scaled.calls, Scaled(scale, 300), native=scale != "no number")
    gc.collect()
    assert sys.getrefcount(value) == before


# --- class attributes and methods, the instance's keys guarded ------------------

class Walker:
    step = 0.5  # a class attribute no instance sets

    def __init__(self, x: float) -> None:
        self.x = x

    def moved(self) -> float:
        return self.x + self.step


def walk(walkers: list[Any]) -> float:
    t = 0.0
    for w in walkers:
        t += w.moved() * w.step
    return t


def walkers(n: int = 300) -> list[Any]:
    return [Walker(0.25 * i) for i in range(n)]


def own_step(n: int = 300) -> list[Any]:
    found = walkers(n)
    found[100].step = 2.0  # the keys gain `step`: every instance's check fails from here
    return found


def own_method(n: int = 300) -> list[Any]:
    found = walkers(n)
    found[150].moved = lambda: 100.0  # type: ignore[method-assign]
    return found


def taken_over(n: int = 300) -> list[Any]:
    found = walkers(n)
    found[200].__dict__ = {"x": 1.0, "step": 7.0}
    return found


@pytest.mark.parametrize("make", [walkers, own_step, own_method, taken_over])
def test_class_attributes_and_methods_give_cpythons_answer(make: Any) -> None:
    expected = full_outcome(walk, make())
    values = make()
    jit = JIT(1)
    jit.enable(walk.__code__)
    try:
        assert walk(walkers()) == walk(walkers())  # compiled on plain walkers first
        got = full_outcome(walk, values)
        assert full_outcome(walk, values) == got  # again, through what the first run built
    finally:
        jit.disable()
    assert got == expected
    stats = jit.stats.as_dict()
    assert stats["native_entries"] >= 1 and not stats["aborts"], stats["aborts"]


def test_a_class_attribute_or_method_replaced_between_runs_is_seen() -> None:
    values = walkers()
    jit = JIT(1)
    jit.enable(walk.__code__)
    try:
        first = walk(values)
        Walker.step = 1.0
        second = walk(values)
        Walker.moved = lambda self: 1.0  # type: ignore[method-assign]
        third = walk(values)
    finally:
        jit.disable()
        Walker.step = 0.5
        Walker.moved = _moved  # type: ignore[method-assign]
    assert first == sum((0.25 * i + 0.5) * 0.5 for i in range(300))
    assert second == sum(0.25 * i + 1.0 for i in range(300)) and third == 300.0


_moved = Walker.moved


# --- attribute stores into inline values (store_attr, store_attr_f) -------------

class Mover:
    def __init__(self, x: float, v: float) -> None:
        self.x, self.v, self.n, self.last = x, v, 0, None


def advance(movers: list[Any], dt: float) -> None:
    for m in movers:
        m.x += m.v * dt  # a float: stored unboxed, into the old float in place when only m holds it
        m.n = m.n + 1  # an int: stored unboxed too, in place when only m holds a one-digit int
        m.last = m if m.n % 2 else None  # any object; the old one released


def movers(n: int = 300) -> list[Any]:
    return [Mover(0.5 * i, 0.25 * i) for i in range(n)]


def advance_main(n: int) -> None:
    advance(movers(n), 0.01)


def test_attribute_stores_write_the_inline_values() -> None:
    texts = recordings_of(Path(__file__), "advance_main", 300)
    names = [op.name for op in parse(texts[0]).ops]
    assert names.count("store_attr_f") == names.count("store_attr_i") == names.count("store_attr") == 1
    assert "box" not in names  # (m.x's float and m.n's int are never boxed)


log: list[object] = []


class Noisy:
    def __init__(self, tag: object) -> None:
        self.tag = tag

    def __del__(self) -> None:
        log.append(self.tag)  # when a store releases it: in the same order as CPython's


class Watched(Mover):
    def __setattr__(self, name: str, value: object) -> None:
        log.append(name)
        object.__setattr__(self, name, value)


def unset(n: int = 300) -> list[Any]:
    found = movers(n)
    del found[200].last  # the store leaves: the interpreter adds the attribute
    return found


def dict_taken(n: int = 300) -> list[Any]:
    found = movers(n)
    vars(found[120])  # a dict of its own, sharing the values: stores must go through it
    found[180].__dict__ = {"x": 7.0, "v": 2.0, "n": 5, "last": None}  # the values invalid
    return found


def other_values(n: int = 300) -> list[Any]:
    found = movers(n)
    found[100].x = 3  # an int: the unbox before the store leaves
    found[110].n = 2.5  # a float: the int unbox leaves
    found[120].n = 2**70  # too big for a machine word
    for m in found[140:150]:
        m.n = 10**6 - 5  # one digit: overwritten in place (below: one someone else holds)
    found[150].n = 2**29 + 2**28  # in place, then two digits: a new int
    found[151].n = -(10**6)  # negative, in place
    found[152].n = -6  # then -5, a small int: CPython's own object
    found[153].n = 255  # then 256, the last small int, then 257
    found[130].last = Noisy(130)  # released by the store: its __del__ runs then
    found[250].v = "no float"  # TypeError at its line, after the stores before it
    return found


def other_types(n: int = 300) -> list[Any]:
    found = movers(n)
    found[150] = Watched(1.0, 2.0)  # a __setattr__ of its own
    return found


@pytest.mark.parametrize("make", [movers, unset, dict_taken, other_values, other_types])
def test_every_failing_store_gives_cpythons_answer(make: Any) -> None:
    def run(values: list[Any]) -> tuple[object, ...]:
        log.clear()
        outcome = full_outcome(advance, values, 0.01)
        gc.collect()
        # (A small int must be CPython's own object, as int() gives it.)
        state = [(m.x, m.n, type(m.n) is int and m.n is int(str(m.n)), m.last is m, m.last is None,
                  vars(m).keys()) for m in values]
        return outcome, repr(state), list(log)

    expected = run(make())
    values = make()
    held = [m.x for m in values[:5]]  # these floats must not change: m.x gets a new one
    numbers = [m.n for m in values[140:142]]  # nor these ints
    before = [sys.getrefcount(m) for m in values]
    jit = JIT(1)
    jit.enable(advance.__code__)
    try:
        advance(movers(), 0.01)  # compiled on plain movers first
        got = run(values)
    finally:
        jit.disable()
    assert got == expected
    assert held == [0.5 * i for i in range(5)] and numbers == [m.n - 1 for m in values[140:142]]
    assert jit.stats.as_dict()["native_entries"] >= 1
    for value in values:
        value.last = None  # (m.last is m holds a reference of m's)
    del value
    gc.collect()
    assert [sys.getrefcount(m) for m in values] == before


def test_a_property_added_over_the_stored_attribute_is_used() -> None:
    found = movers()
    jit = JIT(1)
    jit.enable(advance.__code__)
    try:
        advance(found, 0.01)
        Mover.last = property(lambda self: None, lambda self, value: log.append("set"))  # type: ignore
        log.clear()
        advance(found, 0.01)
        sets = len(log)
        del Mover.last
        advance(found, 0.01)
    finally:
        jit.disable()
        if "last" in vars(Mover):
            del Mover.last
    assert sets == 300
    assert [m.n for m in found] == [3] * 300 and all(m.last is m for m in found)


class Slotted:
    __slots__ = ("x",)

    def __init__(self, x: float) -> None:
        self.x = x


class Guarded:
    def __init__(self, x: float) -> None:
        self._x = x

    @property
    def x(self) -> float:
        return self._x

    @x.setter
    def x(self, value: float) -> None:
        self._x = value


def bump(things: list[Any]) -> None:
    for t in things:
        t.x = 1.5


@pytest.mark.parametrize(("thing", "why"), [
    (Slotted, "a store to attribute 'x' of Slotted, which its class's member_descriptor handles"),
    (Guarded, "a store to attribute 'x' of Guarded, which its class's property handles"),
    (Watched, "a store to attribute 'x' of Watched not in inline values"),
])
def test_stores_the_trace_does_not_make_say_why(thing: Any, why: str) -> None:
    things = [thing(0.5, 1.0) if thing is Watched else thing(0.5) for _ in range(300)]
    log.clear()
    stats = differential(bump, things, native=False)
    assert [t.x for t in things] == [1.5] * 300
    assert any(reason.startswith(why) for reason in stats["aborts"]), stats["aborts"]
