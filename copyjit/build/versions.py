"""What differs between CPython versions, on the build side.

Adding a version (3.12 is next) means: an entry here, a shipped table for it
(`python -m copyjit stencils --build` under that interpreter), and `#if
PY_VERSION_HEX` in copyjit/c/ where its internals differ. The 3.13 internals
the C side relies on: `_PyInterpreterFrame.stacktop` and `.localsplus`,
`PyFrameObject.f_frame`, `PyThreadState.eval_breaker` with
`_PY_EVAL_EVENTS_MASK`, `_PyLong_IsCompact`, and `_PyEval_BinaryOps`.
"""

from __future__ import annotations

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
        "frame_object.f_frame": "offsetof(PyFrameObject, f_frame)",
        "code.co_code_adaptive": "offsetof(PyCodeObject, co_code_adaptive)",
    },
}
