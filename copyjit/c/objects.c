// Runtime helpers for traces that handle objects (normal C ABI, built like
// the stencils and emitted once per process).
#include "copyjit.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_interp.h"

// A builtin whose `self` is an exception: calling it raises that exception.
// An exception raised by a call inside a trace cannot be raised from the
// JUMP callback (docs/cpython-facts.md); instead the trace leaves with this
// builtin in place of the callable, and the interpreter re-executes the CALL,
// which raises it with the program's own traceback and handlers.
PyObject *
copyjit_reraise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    if (!PyExceptionInstance_Check(self)) {  // (never made so: a guard against misuse)
        PyErr_SetString(PyExc_SystemError, "copyjit: a reraiser without an exception");
        return NULL;
    }
    PyErr_SetRaisedException(Py_NewRef(self));
    return NULL;
}

// The version of a dict's keys, assigned if it has none yet (as CPython's
// own _PyDictKeys_GetVersionForCurrentState does; it is not exported). A
// trace that guards on it sees every key added or removed; values replaced
// in place are read afresh. 0: no version (not a str-keyed dict, or the
// interpreter ran out of versions).
uint32_t
copyjit_keys_version(PyObject *dict)
{
    if (!PyDict_CheckExact(dict)) {
        return 0;
    }
    PyDictKeysObject *keys = ((PyDictObject *)dict)->ma_keys;
    if (keys->dk_kind != DICT_KEYS_UNICODE || ((PyDictObject *)dict)->ma_values != NULL) {
        return 0;
    }
    if (keys->dk_version == 0) {
        PyInterpreterState *interp = PyInterpreterState_Get();
        if (interp->dict_state.next_keys_version == 0) {
            return 0;
        }
        keys->dk_version = interp->dict_state.next_keys_version++;
    }
    return keys->dk_version;
}

// The entry of `name` in a str-keyed dict's keys, or -1.
Py_ssize_t
copyjit_key_index(PyObject *dict, PyObject *name)
{
    PyDictKeysObject *keys = ((PyDictObject *)dict)->ma_keys;
    if (keys->dk_kind != DICT_KEYS_UNICODE) {
        return -1;
    }
    PyDictUnicodeEntry *entries = DK_UNICODE_ENTRIES(keys);
    for (Py_ssize_t i = 0; i < keys->dk_nentries; i++) {
        PyObject *key = entries[i].me_key;
        if (key != NULL && (key == name || PyUnicode_Compare(key, name) == 0)) {
            return entries[i].me_value != NULL ? i : -1;
        }
    }
    return -1;
}

// Calls `callable(*args)` as the recorder's CALL: with the program's frame,
// paused at a JUMP event, as the current frame and pointing at that CALL,
// so that the callee sees the program as its caller (sys._getframe(1),
// warnings' stacklevel, tracebacks) and not the recorder's own frames.
// The frame's instruction pointer is put back: CPython compares it with the
// jump's source when the callback returns.
PyObject *
copyjit_call_in_frame(_PyInterpreterFrame *frame, _Py_CODEUNIT *at, PyObject *callable, PyObject *args)
{
    PyThreadState *tstate = PyThreadState_Get();
    _PyInterpreterFrame *current = tstate->current_frame;
    _Py_CODEUNIT *ip = frame->instr_ptr;
    frame->instr_ptr = at;
    tstate->current_frame = frame;
    PyObject *result = PyObject_Call(callable, args, NULL);
    tstate->current_frame = current;
    frame->instr_ptr = ip;
    return result;
}

// The slow half of a stencil's Py_DECREF (copyjit_decref in copyjit.h): the
// count reached zero, so publish the stack depth (the object's finalizer
// can run any code, and the GC walks frames up to stacktop) and free it.
// preserve_most: the callee keeps every general-purpose register, so the
// stencil's fast path (the count only decremented) saves nothing and needs
// no stack frame; only the doubles it holds are saved around this call.
__attribute__((preserve_most)) void
copyjit_dealloc(PyObject *op, _PyInterpreterFrame *frame, PyObject **sp)
{
    SYNC_SP();
    _Py_Dealloc(op);
}

// The slow half of _STORE_SUBSCR_LIST_INT_F (`seq[index] = value`, the
// index checked): the item is not a float only the list holds, so a new
// float replaces it, and the old item is released (which may run any code:
// the stencil has published the stack depth). Returns 0, or -1 when out of
// memory (nothing changed: the stencil exits, and the interpreter runs out
// of memory itself). preserve_all: the callee keeps every register, the
// doubles too; and it takes the stencil's own operands (the index, not the
// position it makes of it), so the stencil's fast path (the float
// overwritten in place) needs no stack frame and moves nothing.
__attribute__((preserve_all)) int
copyjit_store_float_item(PyObject *seq, Py_ssize_t index, double value)
{
    Py_ssize_t at = index < 0 ? index + PyList_GET_SIZE(seq) : index;
    PyObject *boxed = PyFloat_FromDouble(value);
    if (boxed == NULL) {
        PyErr_Clear();
        return -1;
    }
    PyObject *old = PyList_GET_ITEM(seq, at);
    PyList_SET_ITEM(seq, at, boxed);
    Py_DECREF(old);
    return 0;
}

// The slow halves of the boxes an exit makes (copyjit.h).
PyObject *
copyjit_float_for_exit(PyThreadState *tstate, double value)
{
    PyErr_Clear();
    PyObject *box = NULL;
    if (!copyjit_reserve.pool_only && copyjit_release_reserve(tstate)) {
        box = PyFloat_FromDouble(value);
        PyErr_Clear();
    }
    if (box == NULL) {
        box = copyjit_pooled_float(tstate, value);
    }
    if (box == NULL) {
        Py_FatalError("copyjit: a value could not be boxed while leaving a trace "
                      "(out of memory, the emergency reserve spent, the pool empty)");
    }
    return box;
}

PyObject *
copyjit_int_for_exit(PyThreadState *tstate, int64_t value)
{
    PyErr_Clear();
    PyObject *box = NULL;
    if (!copyjit_reserve.pool_only && copyjit_release_reserve(tstate)) {
        box = PyLong_FromSsize_t(value);
        PyErr_Clear();
    }
    if (box == NULL) {
        box = copyjit_pooled_int(tstate, value);
    }
    if (box == NULL) {
        Py_FatalError("copyjit: a value could not be boxed while leaving a trace "
                      "(out of memory, the emergency reserve spent, the pool empty)");
    }
    return box;
}

PyObject *
copyjit_reraiser_for_exit(PyThreadState *tstate, PyMethodDef *def, PyObject *raised)
{
    PyErr_Clear();
    PyObject *reraiser = NULL;
    if (!copyjit_reserve.pool_only && copyjit_release_reserve(tstate)) {
        reraiser = PyCFunction_NewEx(def, raised, NULL);
        PyErr_Clear();
    }
    if (reraiser == NULL) {
        reraiser = copyjit_pooled_reraiser(tstate, raised);
    }
    if (reraiser == NULL) {
        Py_FatalError("copyjit: no memory to hand an exception back to the interpreter "
                      "(the emergency reserve spent, the pool empty)");
    }
    return reraiser;
}
