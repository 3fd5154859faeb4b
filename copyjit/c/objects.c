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

// The keys' version, assigned if they have none yet (as CPython's own
// _PyDictKeys_GetVersionForCurrentState does; it is not exported); 0 when
// the interpreter ran out of versions.
static inline __attribute__((always_inline)) uint32_t
current_version(PyDictKeysObject *keys)
{
    if (keys->dk_version == 0) {
        PyInterpreterState *interp = PyInterpreterState_Get();
        if (interp->dict_state.next_keys_version == 0) {
            return 0;
        }
        keys->dk_version = interp->dict_state.next_keys_version++;
    }
    return keys->dk_version;
}

// The entry of str `name` among the first `limit` of str-keyed keys, or -1.
static inline __attribute__((always_inline)) Py_ssize_t
entry_of(PyDictKeysObject *keys, PyObject *name, Py_ssize_t limit)
{
    PyDictUnicodeEntry *entries = DK_UNICODE_ENTRIES(keys);
    for (Py_ssize_t i = 0; i < keys->dk_nentries && i < limit; i++) {
        PyObject *key = entries[i].me_key;
        if (key != NULL && (key == name || PyUnicode_Compare(key, name) == 0)) {
            return i;
        }
    }
    return -1;
}

// The version of a dict's keys, assigned if it has none yet. A
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
    return current_version(keys);
}

// Where `key` goes in copyjit_watch.keys (by its address: Fibonacci hashing).
static inline size_t
watch_slot(PyObject *key)
{
    return (size_t)(((uintptr_t)key >> 4) * 0x9E3779B97F4A7C15u >> 54);  // 1024 = 1 << (64 - 54)
}

// Whether a change of `key` may change a watched key. An exact str the
// interpreter interned is the one str of its value, so it matches by
// address; any other key (a str made at run time, a str subclass) may be
// equal to a watched one.
static int
may_be_watched(PyObject *key)
{
    if (copyjit_watch.full || !PyUnicode_CheckExact(key) || !PyUnicode_CHECK_INTERNED(key)) {
        return 1;
    }
    for (size_t i = watch_slot(key);; i = (i + 1) % COPYJIT_WATCH_KEYS) {
        PyObject *watched = copyjit_watch.keys[i];
        if (watched == key) {
            return 1;
        }
        if (watched == NULL) {
            return 0;
        }
    }
}

// The dict watcher: a watched dict changed. A key added, replaced or
// deleted counts when it may be a watched one; anything else (cleared,
// filled from another dict, freed) always does. Runs no Python code.
int
copyjit_on_dict_event(PyDict_WatchEvent event, PyObject *dict, PyObject *key, PyObject *new_value)
{
    (void)dict;
    (void)new_value;
    int one_key = event == PyDict_EVENT_ADDED || event == PyDict_EVENT_MODIFIED ||
                  event == PyDict_EVENT_DELETED;
    if (!one_key || key == NULL || may_be_watched(key)) {
        copyjit_watch.epoch++;
    }
    return 0;
}

// Watch `dict` for changes of `key`. The watcher, `on_event`, is
// copyjit_on_dict_event (runtime.py passes its address: this code cannot
// take it itself), added at the first call. 0, or -1 with an exception set.
int
copyjit_watch_dict_key(PyObject *dict, PyObject *key, PyDict_WatchCallback on_event)
{
    if (copyjit_watch.watcher == 0) {
        int id = PyDict_AddWatcher(on_event);
        if (id < 0) {
            return -1;
        }
        copyjit_watch.watcher = id + 1;
    }
    if (PyDict_Watch((int)copyjit_watch.watcher - 1, dict) < 0) {
        return -1;
    }
    if (copyjit_watch.full) {
        return 0;
    }
    if (!PyUnicode_CheckExact(key) || !PyUnicode_CHECK_INTERNED(key) ||
        copyjit_watch.count >= COPYJIT_WATCH_KEYS / 2)
    {
        copyjit_watch.full = 1;  // (matched by address only if interned; half full at most)
        return 0;
    }
    size_t i = watch_slot(key);
    while (copyjit_watch.keys[i] != NULL && copyjit_watch.keys[i] != key) {
        i = (i + 1) % COPYJIT_WATCH_KEYS;
    }
    if (copyjit_watch.keys[i] == NULL) {
        copyjit_watch.keys[i] = Py_NewRef(key);
        copyjit_watch.count++;
    }
    return 0;
}

// The entry of `name` in a str-keyed dict's keys, or -1.
Py_ssize_t
copyjit_key_index(PyObject *dict, PyObject *name)
{
    PyDictKeysObject *keys = ((PyDictObject *)dict)->ma_keys;
    if (keys->dk_kind != DICT_KEYS_UNICODE) {
        return -1;
    }
    Py_ssize_t i = entry_of(keys, name, keys->dk_nentries);
    return i >= 0 && DK_UNICODE_ENTRIES(keys)[i].me_value != NULL ? i : -1;
}

// The entry of attribute `name` in `obj`'s inline values, or -1: CPython
// 3.13 keeps the attributes of a class's instances in an array right after
// the object (at tp_basicsize), indexed like the class's shared keys, while
// no dict of the object's own has taken them over (`valid`). The index of a
// key never changes (shared keys only grow), so a trace reads
// values[index] for as long as the type's version holds, as CPython's
// LOAD_ATTR_INSTANCE_VALUE does. -1 also when the attribute is unset.
// For a `store`, also -1 unless the type sets attributes generically (no
// __setattr__ of its own) and no dict of the object's own exists, even
// one that shares the values: a store must then go through that dict, as
// CPython's STORE_ATTR_INSTANCE_VALUE (_GUARD_DORV_NO_DICT) requires.
Py_ssize_t
copyjit_instance_index(PyObject *obj, PyObject *name, int store)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (!(type->tp_flags & Py_TPFLAGS_INLINE_VALUES) || !PyUnicode_CheckExact(name)) {
        return -1;
    }
    if (store && (type->tp_setattro != PyObject_GenericSetAttr || _PyObject_GetManagedDict(obj) != NULL)) {
        return -1;
    }
    PyDictValues *values = _PyObject_InlineValues(obj);
    PyDictKeysObject *keys = ((PyHeapTypeObject *)type)->ht_cached_keys;
    if (!values->valid || keys == NULL || keys->dk_kind != DICT_KEYS_SPLIT) {
        return -1;
    }
    Py_ssize_t i = entry_of(keys, name, values->capacity);
    return i >= 0 && values->values[i] != NULL ? i : -1;
}

// The version of the shared keys of `obj`'s class when `obj` keeps its
// attributes in inline values and has none called `name` (nor could have
// one without the keys changing), assigned if they have none yet; else 0.
// A trace that guards on it (with the type's version) knows `obj.name` is
// the class's attribute: CPython's LOAD_ATTR_METHOD_WITH_VALUES guard.
uint32_t
copyjit_shared_keys_version(PyObject *obj, PyObject *name)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (!(type->tp_flags & Py_TPFLAGS_INLINE_VALUES) || !PyUnicode_CheckExact(name)) {
        return 0;
    }
    PyDictKeysObject *keys = ((PyHeapTypeObject *)type)->ht_cached_keys;
    if (!_PyObject_InlineValues(obj)->valid || keys == NULL || keys->dk_kind != DICT_KEYS_SPLIT) {
        return 0;
    }
    if (entry_of(keys, name, keys->dk_nentries) >= 0) {
        return 0;  // instances may hold one of their own
    }
    return current_version(keys);
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
// count reached zero and the stencil has published the stack depth (the
// object's finalizer can run any code, and the GC walks frames up to
// stacktop). _Py_Dealloc(rax), every register but the flags kept: the
// stencil's fast path (the count only decremented) saves nothing, moves
// nothing and needs no stack frame. Entered with any stack alignment.
// xmm4..xmm15 are not kept: the stencils' asm declares them clobbered.
__attribute__((naked)) void
copyjit_dealloc_rax(void)
{
    __asm__(
        "push %rbp\n\t"
        "mov %rsp, %rbp\n\t"
        "and $-16, %rsp\n\t"
        "sub $144, %rsp\n\t"
        "movdqa %xmm0, 0(%rsp)\n\t"
        "movdqa %xmm1, 16(%rsp)\n\t"
        "movdqa %xmm2, 32(%rsp)\n\t"
        "movdqa %xmm3, 48(%rsp)\n\t"
        "mov %rax, 64(%rsp)\n\t"
        "mov %rcx, 72(%rsp)\n\t"
        "mov %rdx, 80(%rsp)\n\t"
        "mov %rsi, 88(%rsp)\n\t"
        "mov %rdi, 96(%rsp)\n\t"
        "mov %r8, 104(%rsp)\n\t"
        "mov %r9, 112(%rsp)\n\t"
        "mov %r10, 120(%rsp)\n\t"
        "mov %r11, 128(%rsp)\n\t"
        "mov %rax, %rdi\n\t"
        "call *_Py_Dealloc@GOTPCREL(%rip)\n\t"
        "movdqa 0(%rsp), %xmm0\n\t"
        "movdqa 16(%rsp), %xmm1\n\t"
        "movdqa 32(%rsp), %xmm2\n\t"
        "movdqa 48(%rsp), %xmm3\n\t"
        "mov 64(%rsp), %rax\n\t"
        "mov 72(%rsp), %rcx\n\t"
        "mov 80(%rsp), %rdx\n\t"
        "mov 88(%rsp), %rsi\n\t"
        "mov 96(%rsp), %rdi\n\t"
        "mov 104(%rsp), %r8\n\t"
        "mov 112(%rsp), %r9\n\t"
        "mov 120(%rsp), %r10\n\t"
        "mov 128(%rsp), %r11\n\t"
        "mov %rbp, %rsp\n\t"
        "pop %rbp\n\t"
        "ret");
}

// `*slot = boxed`, a new number (NULL: out of memory, the error cleared,
// -1 and nothing changed), releasing the old object: the slow halves'.
static inline __attribute__((always_inline)) int
store_new(PyObject **slot, PyObject *boxed)
{
    if (boxed == NULL) {
        PyErr_Clear();
        return -1;
    }
    PyObject *old = *slot;
    *slot = boxed;
    Py_XDECREF(old);  // (a local may be unbound)
    return 0;
}

// The slow half of _STORE_SUBSCR_LIST_*_F (`seq[index] = value`, the
// index checked): the item is not a float only the list holds, so a new
// float replaces it, and the old item is released (which may run any code:
// the stencil has published the stack depth). Returns 0, or -1 when out of
// memory (nothing changed: the stencil exits, and the interpreter runs out
// of memory itself). It takes the stencil's own operands (the index, not
// the position it makes of it). Called through copyjit_store_float_item_rax
// (runtime.c).
int
copyjit_store_float_item_c(PyObject *seq, Py_ssize_t index, double value, PyThreadState *tstate)
{
    Py_ssize_t at = index < 0 ? index + PyList_GET_SIZE(seq) : index;
    return store_new(&((PyListObject *)seq)->ob_item[at], copyjit_new_float(tstate, value));
}

// The same for _STORE_ATTR_INSTANCE_F and _I: `slot` is the attribute's
// entry in the object's inline values, set (not NULL).
__attribute__((preserve_most)) int
copyjit_store_float_attr(PyObject **slot, double value)
{
    return store_new(slot, PyFloat_FromDouble(value));
}

__attribute__((preserve_most)) int
copyjit_store_int_attr(PyObject **slot, int64_t value)
{
    return store_new(slot, PyLong_FromLongLong(value));  // (a small int: CPython's own)
}

// The slow halves of the boxes an exit makes (copyjit.h).
static inline __attribute__((always_inline)) PyObject *
float_for_exit(PyThreadState *tstate, double value)
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
copyjit_float_for_exit(PyThreadState *tstate, double value)
{
    return float_for_exit(tstate, value);
}

static inline __attribute__((always_inline)) PyObject *
int_for_exit(PyThreadState *tstate, int64_t value)
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
copyjit_int_for_exit(PyThreadState *tstate, int64_t value)
{
    return int_for_exit(tstate, value);
}

// A box for the frame as a trace leaves (the stencils' _BOX_*_LEAVING_O):
// cannot fail (the reserve, then the pool: *_for_exit).
static inline __attribute__((always_inline)) PyObject *
float_leaving(PyThreadState *tstate, double value)
{
    PyObject *box = copyjit_reserve.pool_only ? NULL : copyjit_new_float(tstate, value);
    return box != NULL ? box : float_for_exit(tstate, value);
}

static inline __attribute__((always_inline)) PyObject *
int_leaving(PyThreadState *tstate, int64_t value)
{
    PyObject *box = copyjit_reserve.pool_only ? NULL : PyLong_FromSsize_t(value);
    return box != NULL ? box : int_for_exit(tstate, value);
}

// The slow halves of _SYNC_FLOAT_O and _SYNC_INT_O (before a call): the
// number the frame holds for local `slot` is not one only the frame holds,
// so a new box replaces it, and the old value is released (the stencil has
// published the stack depth). Returns 0, or -1 when out of memory (nothing
// changed: the stencil exits, and the trace still has the number).
__attribute__((preserve_most)) int
copyjit_sync_float(_PyInterpreterFrame *frame, intptr_t slot, double value)
{
    return store_new(&frame->localsplus[slot], PyFloat_FromDouble(value));
}

__attribute__((preserve_most)) int
copyjit_sync_int(_PyInterpreterFrame *frame, intptr_t slot, int64_t value)
{
    return store_new(&frame->localsplus[slot], PyLong_FromLongLong(value));
}

// The slow halves of _STORE_FLOAT_LEAVING and _STORE_INT_LEAVING: the
// number the frame holds for local `slot` is not one only the frame holds
// (or the pool alone is to be used), so a new box replaces it. Cannot
// fail (the reserve, then the pool: *_for_exit); the old value's
// release may run any code (the stencil has published the stack depth).
// Out of line, preserve_most as above: the stencil's fast path (the
// number written in place) needs no stack frame.
__attribute__((preserve_most)) void
copyjit_store_float_leaving(_PyInterpreterFrame *frame, PyThreadState *tstate, intptr_t slot, double value)
{
    store_new(&frame->localsplus[slot], float_leaving(tstate, value));  // (never NULL: it cannot fail)
}

__attribute__((preserve_most)) void
copyjit_store_int_leaving(_PyInterpreterFrame *frame, PyThreadState *tstate, intptr_t slot, int64_t value)
{
    store_new(&frame->localsplus[slot], int_leaving(tstate, value));  // (never NULL: it cannot fail)
}

// An exit stub as data (_EXIT_DATA, lower.py's data_row): where the
// exit's values are at the guard that failed, and what to do with them.
//   data[0]   the instruction to resume at      data[1]  the exit's number
//   data[2]   where its bridge is linked (a jit_func, NULL until one is),
//             or 0 if it may have none
//   data[3]   n, then n pairs (slot, source): the moves that put the values
//             in their spill slots, in order (source 0-3: the register i0-i3
//             as the guard left it, 4-7: f0-f3, 8 + k: spill slot k)
//   then n, then n pairs (code, argument): the references the exit takes
//             before a bridge may run (code & 3: 0 one more to the object
//             in slot code >> 2; 1 the constant object `argument`; 2 local
//             `argument` of the frame; 3 release the slot's)
//   then n, then n codes: the values pushed onto the frame's stack (code &
//             3: 0 NULL; 1 the object in slot code >> 2, its reference
//             handed over; 2 the int in the slot, boxed; 3 the float, boxed)
// Guard exits are cold: this replaces ~5-10 uops of code per exit, which
// every compile would lower, copy and patch. The stencil has published the
// stack depth (a release may run any code). Returns the bridge to go on
// at, with the values in their slots and nothing pushed; or no bridge and
// the new top of the stack, the pushes made (they cannot fail: the boxes
// are made as _PUSH_*_SLOT_LEAVING makes them).
copyjit_exit_result
copyjit_exit_data(_PyInterpreterFrame *frame, PyObject **sp, PyThreadState *tstate, intptr_t *slots,
                  const int64_t *data, intptr_t i0, intptr_t i1, intptr_t i2, intptr_t i3,
                  double f0, double f1, double f2, double f3)
{
    intptr_t registers[8] = {i0, i1, i2, i3};
    __builtin_memcpy(&registers[4], &f0, 8);
    __builtin_memcpy(&registers[5], &f1, 8);
    __builtin_memcpy(&registers[6], &f2, 8);
    __builtin_memcpy(&registers[7], &f3, 8);
    const int64_t *at = data + 3;
    int64_t count = *at++;
    for (int64_t i = 0; i < count; i++, at += 2) {
        slots[at[0]] = at[1] < 8 ? registers[at[1]] : slots[at[1] - 8];
    }
    count = *at++;
    for (int64_t i = 0; i < count; i++, at += 2) {
        intptr_t *slot = &slots[at[0] >> 2];
        switch (at[0] & 3) {
            case 0: Py_INCREF((PyObject *)*slot); break;
            case 1: *slot = (intptr_t)Py_NewRef((PyObject *)at[1]); break;
            case 2: *slot = (intptr_t)Py_NewRef(frame->localsplus[at[1]]); break;
            default: Py_DECREF((PyObject *)*slot); break;
        }
    }
    if (data[2] != 0) {
        jit_func bridge = *(jit_func *)data[2];
        if (bridge != NULL) {
            return (copyjit_exit_result){sp, bridge};
        }
    }
    count = *at++;
    for (int64_t i = 0; i < count; i++) {
        intptr_t value = slots[at[i] >> 2];
        PyObject *box;
        switch (at[i] & 3) {
            case 0: box = NULL; break;
            case 1: box = (PyObject *)value; break;
            case 2: box = int_leaving(tstate, value); break;
            default: {
                double number;
                __builtin_memcpy(&number, &value, sizeof(number));
                box = float_leaving(tstate, number);
                break;
            }
        }
        *sp++ = box;
    }
    frame->instr_ptr = (_Py_CODEUNIT *)data[0];
    return (copyjit_exit_result){sp, NULL};
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

// Whether copyjit_free_float and copyjit_new_float (copyjit.h) read this
// interpreter's float freelist, reference tracer and tracemalloc flag
// where the headers the stencils were built with put them (a later 3.13.x
// loads the same table): 1 if so. Run once at start-up, with the GIL; no
// Python code runs in it, so nothing else touches the freelist meanwhile.
int
copyjit_check_floats(int tracing)
{
    PyThreadState *tstate = PyThreadState_Get();
    struct _Py_float_freelist *floats = copyjit_float_freelist(tstate);
    // One float more than the list can hold empties it; the first freed is then its head.
    PyObject *boxes[PyFloat_MAXFREELIST + 1];
    int made = 0;
    for (; made <= PyFloat_MAXFREELIST; made++) {
        boxes[made] = PyFloat_FromDouble((double)made);
        if (boxes[made] == NULL) {
            break;
        }
    }
    int ok = made == PyFloat_MAXFREELIST + 1 && floats->numfree == 0 && floats->items == NULL;
    for (int k = 0; k < made; k++) {
        Py_DECREF(boxes[k]);
        ok = ok && (k > 0 || (floats->numfree == 1 && floats->items == (PyFloatObject *)boxes[0]));
    }
    PyErr_Clear();
    void *data;
    PyRefTracer old = PyRefTracer_GetTracer(&data);
    ok = ok && _PyRuntime.ref_tracer.tracer_func == old;
    // A marker, never called: nothing is made or freed while it is set.
    PyRefTracer marker = (PyRefTracer)(uintptr_t)PyRefTracer_GetTracer;
    if (old == NULL && PyRefTracer_SetTracer(marker, NULL) == 0) {  // (one set: leave it)
        ok = ok && _PyRuntime.ref_tracer.tracer_func == marker;
        PyRefTracer_SetTracer(NULL, NULL);
    }
    return ok && _PyRuntime.tracemalloc.config.tracing == tracing;
}

// The recorder's reads and writes of a live frame (copyjit/trace/frames.py),
// as builtins (METH_FASTCALL) whose `self` is the object an empty slot reads
// as (frames.UNBOUND). Through ctypes, writing a local took 3.4 µs and
// reading the stack 5.6. The first argument is the _PyInterpreterFrame's
// address, as an int; the arguments are the JIT's own, taken as given.
static inline __attribute__((always_inline)) _PyInterpreterFrame *
frame_at(PyObject *address)
{
    return (_PyInterpreterFrame *)PyLong_AsVoidPtr(address);
}

// (frame, index): a new reference to local (or stack slot) `index`, or self.
PyObject *
copyjit_frame_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)nargs;
    PyObject *value = frame_at(args[0])->localsplus[PyLong_AsSsize_t(args[1])];
    return Py_NewRef(value != NULL ? value : self);
}

// (frame, index, value): bind local `index` as STORE_FAST does (the old
// value released last: its finalizer sees the new binding).
PyObject *
copyjit_frame_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)nargs;
    Py_XSETREF(frame_at(args[0])->localsplus[PyLong_AsSsize_t(args[1])], Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

// (frame, nlocals): the values on the stack, above the locals, as a list
// (an empty slot as self).
PyObject *
copyjit_frame_stack(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)nargs;
    _PyInterpreterFrame *frame = frame_at(args[0]);
    Py_ssize_t base = PyLong_AsSsize_t(args[1]);
    Py_ssize_t depth = frame->stacktop - base;
    PyObject *list = PyList_New(depth > 0 ? depth : 0);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < depth; i++) {
        PyObject *value = frame->localsplus[base + i];
        PyList_SET_ITEM(list, i, Py_NewRef(value != NULL ? value : self));
    }
    return list;
}

// (frame, nlocals): how many values are on the stack, above the locals.
PyObject *
copyjit_frame_depth(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)nargs;
    return PyLong_FromSsize_t(frame_at(args[0])->stacktop - PyLong_AsSsize_t(args[1]));
}

// (frame, values): push new references to the list's values (self as an
// empty slot) onto the stack.
PyObject *
copyjit_frame_push(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)nargs;
    _PyInterpreterFrame *frame = frame_at(args[0]);
    PyObject *values = args[1];
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        frame->localsplus[frame->stacktop++] = value == self ? NULL : Py_NewRef(value);
    }
    Py_RETURN_NONE;
}

// (frame, count): pop `count` values off the stack, releasing each (the
// top one first) after its slot is empty.
PyObject *
copyjit_frame_drop(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)nargs;
    _PyInterpreterFrame *frame = frame_at(args[0]);
    for (Py_ssize_t count = PyLong_AsSsize_t(args[1]); count > 0; count--) {
        frame->stacktop--;
        Py_XSETREF(frame->localsplus[frame->stacktop], NULL);
    }
    Py_RETURN_NONE;
}
