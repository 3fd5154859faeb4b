"""What differs between CPython versions, on the build side.

Adding a version (3.12 is next) means: an entry here, a shipped table for it
(`python -m copyjit stencils --build` under that interpreter), and `#if
PY_VERSION_HEX` in copyjit/c/ where its internals differ. The 3.13 internals
the C side relies on: `_PyInterpreterFrame.stacktop` and `.localsplus`,
`PyFrameObject.f_frame` and `.f_trace`, `PyThreadState.eval_breaker` with
`_PY_EVAL_EVENTS_MASK`, `PyThreadState.current_frame` and `.c_traceobj`,
`PyInterpreterState.monitors` and `.monitoring_tool_names`,
`PyCodeObject._co_monitoring`, `_PyLong_IsCompact`, and `_PyEval_BinaryOps`.
"""

from __future__ import annotations

# copyjit's own structs in copyjit/c/copyjit.h, which the Python side fills
# through struct formats (copyjit/backend/runtime.py checks they agree).
OWN_STRUCT_PROBES: dict[str, str] = {
    **{f"cell.{field}": f"offsetof(trace_cell, {field})" for field in ("trace", "active")},
    "cell.size": "sizeof(trace_cell)",
    **{f"exit.{field}": f"offsetof(exit_counter, {field})" for field in ("taken", "limit")},
    "exit.size": "sizeof(exit_counter)",
    **{f"totals.{field}": f"offsetof(entry_totals, {field})" for field in ("entries", "exits")},
    "totals.size": "sizeof(entry_totals)",
    **{f"record.{field}": f"offsetof(location_record, {field})" for field in (
        "iterations", "cell", "exits", "exit_count", "totals", "entries", "judge_at", "due", "enclosing")},
    "record.size": "sizeof(location_record)",
    **{f"reserve.{field}": f"offsetof(reserve_state, {field})" for field in (
        "address", "released", "refused", "floats", "ints", "pooled", "held", "per_activation", "taken",
        "reraisers", "reraisers_pooled", "activations", "reraise_def", "pool_only", "idle_iters_count",
        "idle_iters")},
    "reserve.size": "sizeof(reserve_state)",
    **{f"watch.{field}": f"offsetof(watch_state, {field})" for field in (
        "epoch", "watcher", "count", "full", "keys")},
    "watch.size": "sizeof(watch_state)",
}

# Field offsets the Python side needs to read and write frames, each a C
# expression compiled against the interpreter's own headers.
LAYOUT_PROBES: dict[tuple[int, int], dict[str, str]] = {
    (3, 13): {
        "frame.f_executable": "offsetof(_PyInterpreterFrame, f_executable)",
        "frame.instr_ptr": "offsetof(_PyInterpreterFrame, instr_ptr)",
        "frame.stacktop": "offsetof(_PyInterpreterFrame, stacktop)",
        "frame.localsplus": "offsetof(_PyInterpreterFrame, localsplus)",
        "frame.f_globals": "offsetof(_PyInterpreterFrame, f_globals)",
        "frame.f_builtins": "offsetof(_PyInterpreterFrame, f_builtins)",
        "type.tp_version_tag": "offsetof(PyTypeObject, tp_version_tag)",
        "type.tp_getattro": "offsetof(PyTypeObject, tp_getattro)",
        "frame_object.f_frame": "offsetof(PyFrameObject, f_frame)",
        "tstate.current_frame": "offsetof(PyThreadState, current_frame)",
        "code.co_code_adaptive": "offsetof(PyCodeObject, co_code_adaptive)",
        "function.func_version": "offsetof(PyFunctionObject, func_version)",
        # Checked against a live interpreter by the runtime (check_monitoring_layout).
        "interp.monitors": "offsetof(PyInterpreterState, monitors)",
        "interp.monitoring_tool_names": "offsetof(PyInterpreterState, monitoring_tool_names)",
        "code._co_monitoring": "offsetof(PyCodeObject, _co_monitoring)",
        "co_monitoring.local_monitors": "offsetof(_PyCoMonitoringData, local_monitors)",
        **OWN_STRUCT_PROBES,
    },
}
