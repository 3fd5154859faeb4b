"""The invariants of a recording, checked after recording and after every pass.

- every op is one the lowering knows, with a signature below;
- its arguments are values made by earlier ops, of the kinds it takes;
- its snapshot's stack (and re-raised value) are values made before it;
- local slots are read and written with the kind the recording gives them;
- positional ops stay in place: `second` right after an enumerate,
  `inner_input` right after a nested loop (or another `inner_input`),
  a bridge's `frame_input` then `input` ops first.
"""

from __future__ import annotations

from copyjit.trace.ir import NO_VALUE, Op, Recording

# name: "argument kinds -> result kind". K: the op's own kind; x: any value
# kind (the same x within one signature); ?: any; `X *`: any number of X.
SIGNATURES: dict[str, str] = {
    "range_next": "-> i", "load": "-> K", "store": "K ->", "const": "-> K", "to_float": "i -> f",
    "binary": "K K -> K", "compare_bool": "x x -> o", "not": "o -> o", "unbox_bool": "o -> i",
    "neg": "K -> K", "branch": "K K ->", "math": "K * -> K",
    "load_o": "-> o", "store_o": "o ->", "deref": "-> o", "store_deref": "o ->", "const_o": "-> o",
    "input": "-> K", "null": "-> n", "second": "o -> i", "release": "o ->",
    "guard_type": "o ->", "guard_is": "o ->", "guard_is_not": "o ->", "guard_version": "o ->",
    "guard_keys": "o ->",
    "unbox": "o -> K", "box": "x -> o", "global": "-> o", "builtin": "-> o", "guard_globals": "->",
    "store_global": "o ->", "attr_module": "o -> o", "attr": "o -> o", "call": "o ? * -> o",
    "attr_instance": "o -> o", "attr_instance_b": "o -> o", "global_b": "-> o", "builtin_b": "-> o",
    "attr_module_b": "o -> o",
    "binary_o": "o o -> o", "add_int_o": "o i -> o", "compare_o": "o o -> o", "get_iter": "o -> o",
    "guard_done": "o ->", "loop_head": "->", "const_b": "-> o", "load_b": "-> o",
    "inner_input": "-> K", "inner_loop": "? * ->", "len": "o -> i", "len_str": "o -> i", "append": "o o ->",
    "subscr_list": "o i -> o", "subscr_tuple": "o i -> o", "subscr_list_b": "o i -> o",
    "subscr_tuple_b": "o i -> o", "list_item_b": "o -> o", "tuple_item_b": "o -> o", "list_next_b": "-> o",
    "tuple_next_b": "-> o", "store_subscr_list": "o o i ->",
    "list_next": "-> o", "tuple_next": "-> o", "enumerate_list": "-> o", "enumerate_tuple": "-> o",
    "copy_o": "o -> o", "guard_size": "o ->",
    "guard_min_size": "o ->", "tuple_item": "o -> o", "list_item": "o -> o",
    "nested_loop": "? * ->", "frame_input": "-> K", "store_subscr_list_f": "f o i ->",
    "store_over_f": "f o i o ->",
    "guard_function": "o ->", "range_iter": "i i -> o", "store_attr": "o o ->", "store_attr_f": "f o ->",
    "store_attr_i": "i o ->", "store_v": "o ->", "share": "x ->", "load_v": "-> o",
    "guard_not_same": "o o ->",
    "guard_same": "o o ->", "guard_distinct": "o o ->",
    "watch_epoch": "-> i", "guard_watched": "i ->",
}
_VALUE_KINDS = frozenset("ifon")


class VerifyError(AssertionError):
    """A recording breaks an invariant: a bug in the recorder or a pass."""


def verify(rec: Recording, after: str = "recording") -> None:
    """Raise VerifyError naming the first broken invariant (`after`: what made it)."""
    for index, op in enumerate(rec.ops):
        problem = _check(rec, index, op)
        if problem:
            raise VerifyError(f"after {after}: op {index} ({op.name}): {problem}")


def _check(rec: Recording, index: int, op: Op) -> str | None:
    signature = SIGNATURES.get(op.name)
    if signature is None:
        return "no such op (add it to copyjit/opt/verify.py's SIGNATURES)"
    takes, _, makes = (part.split() for part in signature.partition("->"))
    for value in op.args:
        if not 0 <= value < index:
            return f"argument v{value} is not made before it"
        if rec.ops[value].name in NO_VALUE:
            return f"argument v{value} ({rec.ops[value].name}) makes no value"
    problem = _kinds(rec, op, takes, makes)
    if problem:
        return problem
    if op.snapshot is not None:
        for value in op.snapshot.values():
            if not 0 <= value < index or rec.ops[value].name in NO_VALUE:
                return f"its snapshot holds v{value}, not a value made before it"
    return _position(rec, index, op)


def _kinds(rec: Recording, op: Op, takes: list[str], makes: list[str]) -> str | None:
    kinds = [rec.ops[value].kind for value in op.args]
    if "*" in takes:
        star = takes.index("*") - 1
        if len(kinds) < star:
            return f"takes at least {star} arguments, has {len(kinds)}"
        takes = takes[:star] + [takes[star]] * (len(kinds) - star)
    if len(takes) != len(kinds):
        return f"takes {len(takes)} arguments, has {len(kinds)}"
    bound: dict[str, str] = {}
    for want, got in zip(takes, kinds, strict=True):
        want = op.kind if want == "K" else want
        if want == "x":
            want = bound.setdefault("x", got)
        if want != "?" and want != got:
            return f"an argument of kind {got!r} where {want!r} is taken"
    if makes and makes[0] not in ("K", op.kind):
        return f"makes kind {op.kind!r}, not {makes[0]!r}"
    if makes and op.kind not in _VALUE_KINDS:
        return f"a value of unknown kind {op.kind!r}"
    if op.name in ("load", "store") and rec.slots.get(op.arg) != op.kind:  # type: ignore[call-overload]
        return f"local {op.arg} is {rec.slots.get(op.arg)!r} in this recording"  # type: ignore[call-overload]
    return None


def _position(rec: Recording, index: int, op: Op) -> str | None:
    before = rec.ops[index - 1].name if index else None
    if op.name == "second" and before not in ("enumerate_list", "enumerate_tuple"):
        return "does not follow an enumerate"
    if op.name == "inner_input" and before not in ("inner_loop", "nested_loop", "inner_input"):
        return "does not follow a nested loop"
    if op.name == "input" and before not in (None, "frame_input", "input"):
        return "a bridge's input after other ops"
    if op.name == "frame_input" and before not in (None, "frame_input"):
        return "a bridge's frame_input after other ops"
    if op.name == "store" and op.arg not in rec.stored:
        return f"stores local {op.arg}, which the recording does not list as stored"
    return None
