// Runtime helpers with the normal C ABI, emitted once per process into the
// code arena (they are built like stencils: no compiler runs at run time).
#include "copyjit.h"
#include <signal.h>
#include <sys/mman.h>

static _PyInterpreterFrame *
frame_of(PyObject *arg)
{
    _PyInterpreterFrame *frame;
    if (Py_IS_TYPE(arg, &PyFrame_Type)) {
        frame = ((PyFrameObject *)arg)->f_frame;
        PyCodeObject *code = (PyCodeObject *)frame->f_executable;
        if (!PyCode_Check(code) || frame->stacktop < code->co_nlocalsplus ||
            frame->stacktop > code->co_nlocalsplus + code->co_stacksize)
        {
            PyErr_SetString(PyExc_ValueError,
                "copyjit: the frame's stack pointer is not saved "
                "(enter a frame object only from a sys.monitoring callback)");
            return NULL;
        }
        return frame;
    }
    if (!PyLong_CheckExact(arg)) {
        PyErr_SetString(PyExc_TypeError,
                        "copyjit: a trace takes a frame or a frame address");
        return NULL;
    }
    // Unsigned: PyLong_AsVoidPtr would take -1 as an address.
    frame = (_PyInterpreterFrame *)PyLong_AsUnsignedLong(arg);
    if (frame == NULL || frame == (_PyInterpreterFrame *)-1) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "copyjit: frame address 0 or -1");
        }
        return NULL;
    }
    if (frame->stacktop < 0) {
        PyErr_SetString(PyExc_ValueError, "copyjit: the frame has no saved stack pointer");
        return NULL;
    }
    return frame;
}

// Whether the emergency reserve (copyjit.h) is in place, mapping it first
// if it is not: at the first entry, and after an exit released it, once
// memory was freed. Native code runs only with it in place: the one exit a
// trace takes may need it, and a loop that exhausted memory runs in the
// interpreter until then, which raises MemoryError in its own time.
static inline __attribute__((always_inline)) int
reserve_ready(PyThreadState *tstate)
{
    if (copyjit_reserve.address == NULL) {
        void *address = mmap(NULL, COPYJIT_RESERVE_SIZE, PROT_NONE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (address == MAP_FAILED) {
            copyjit_reserve.refused++;
            return 0;
        }
        copyjit_reserve.address = address;
    }
    // (Mapped again here, or by another thread.)
    if (_Py_atomic_load_uintptr_relaxed(&tstate->eval_breaker) & COPYJIT_RESERVE_GONE_BIT) {
        _Py_unset_eval_breaker_bit(tstate, COPYJIT_RESERVE_GONE_BIT);
    }
    return 1;
}

// Whether the pool (copyjit.h) has `per_activation` boxes of each kind
// beyond what the activations in progress hold, making them first; if so,
// the caller's activation holds them (until it returns: `held` less).
// Native code runs only then: each exit it takes may need them.
static inline __attribute__((always_inline)) int
pool_hold(int64_t *held)
{
    // Made with room for three nested loops' traces more: _CALL_TRACE holds
    // its share but makes none (a shortage there leaves the calling trace).
    // Refused only if even this activation's share cannot be made.
    int64_t wanted = copyjit_reserve.held + copyjit_reserve.per_activation;
    int64_t room = wanted + 3 * copyjit_reserve.per_activation;
    while (copyjit_reserve.pooled < room) {
        PyObject *number = PyFloat_FromDouble(0.0);
        PyObject *integer = PyLong_FromSsize_t(PY_SSIZE_T_MIN);  // room for any 64-bit value
        if (number == NULL || integer == NULL) {
            if (number != NULL) {
                Py_DECREF(number);
            }
            if (integer != NULL) {
                Py_DECREF(integer);
            }
            PyErr_Clear();
            if (copyjit_reserve.pooled >= wanted) {
                break;
            }
            copyjit_reserve.refused++;
            return 0;
        }
        memcpy(&((PyFloatObject *)number)->ob_fval, &copyjit_reserve.floats, sizeof(PyObject *));
        copyjit_reserve.floats = number;
        memcpy(((PyLongObject *)integer)->long_value.ob_digit, &copyjit_reserve.ints, sizeof(PyObject *));
        copyjit_reserve.ints = integer;
        copyjit_reserve.pooled++;
    }
    while (copyjit_reserve.reraisers_pooled < copyjit_reserve.activations + 4) {
        PyObject *reraiser = PyCFunction_NewEx(copyjit_reserve.reraise_def, Py_None, NULL);
        if (reraiser == NULL) {
            PyErr_Clear();
            if (copyjit_reserve.reraisers_pooled > copyjit_reserve.activations) {
                break;
            }
            copyjit_reserve.refused++;
            return 0;
        }
        // Out of the GC's sight while pooled (gc.get_objects() would find
        // it, and calling it would raise what is no exception): chained
        // through `self`, tracked again when taken.
        PyObject_GC_UnTrack(reraiser);
        ((PyCFunctionObject *)reraiser)->m_self = copyjit_reserve.reraisers;  // (None is immortal)
        copyjit_reserve.reraisers = reraiser;
        copyjit_reserve.reraisers_pooled++;
    }
    *held = copyjit_reserve.per_activation;
    copyjit_reserve.held += *held;
    copyjit_reserve.activations++;
    return 1;
}

// The C implementation (METH_O) behind every trace's builtin function.
// `arg` is a frame object or the address of a raw _PyInterpreterFrame.
// Returns the exit code the trace returned, or NULL with the exception the
// trace raised; MemoryError, without entering, while the emergency reserve
// cannot be mapped.
PyObject *
copyjit_enter(PyObject *self, PyObject *arg)
{
    trace_cell *cell = (trace_cell *)PyByteArray_AS_STRING(self);
    if (cell->trace == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "copyjit: this trace was freed");
        return NULL;
    }
    _PyInterpreterFrame *frame = frame_of(arg);
    if (frame == NULL) {
        return NULL;
    }
    PyThreadState *tstate = PyThreadState_Get();
    if (!reserve_ready(tstate)) {
        return PyErr_NoMemory();
    }
    // Spill slots live on the C stack of this call: one area per activation,
    // so recursion and threads never share them.
    intptr_t slots[SPILL_SLOTS];
    PyObject **sp = frame->localsplus + frame->stacktop;
    // Called from the JIT's Python code (the recorder running a nested
    // loop): the program's frame is the current one meanwhile, as in
    // copyjit_call_in_frame, so that what the trace calls finds it as its
    // caller (sys._getframe(1)), not the JIT's frames.
    int64_t held;
    if (!pool_hold(&held)) {
        return PyErr_NoMemory();
    }
    _PyInterpreterFrame *current = tstate->current_frame;
    tstate->current_frame = frame;
    cell->active++;
    intptr_t status = cell->trace(frame, sp, tstate, slots, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0);
    cell->active--;
    tstate->current_frame = current;
    copyjit_reserve.held -= held;
    copyjit_reserve.activations--;
    if (status < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "copyjit: a trace failed without an exception");
        }
        return NULL;
    }
    return PyLong_FromSsize_t(status);
}

// --- The sys.monitoring JUMP callback -----------------------------------
//
// `self` is (handler, counters, threshold). counters maps id(code) to a
// bytearray with one slot per code unit: either the count of a cold
// backedge (count << 1), or the address of its location_record with the
// low bit set, once the location has a trace (records are 8-aligned).
//
// The steady state runs no Python code: a cold backedge is counted, a
// backedge with a trace is entered on the running frame and its entry and
// exit counted. The Python handler (jit.py) is called only for a code it
// has not seen, a location that reached the threshold (to record it), or
// a record whose counters say a decision of the JIT's is due.

// Runtime functions are copied like stencils, one section each, so every
// helper must be inlined into its caller.
#define HELPER static inline __attribute__((always_inline))

#define COPYJIT_TOOL 5  // sys.monitoring.OPTIMIZER_ID

#define SLOT_IS_RECORD(slot) ((slot) & 1)
#define SLOT_RECORD(slot) ((location_record *)((slot) - 1))

// The slot of backedge `args[1]` of code `args[0]`, or NULL for a code the
// JIT has no table for (or arguments it does not understand).
HELPER uint64_t *
find_slot(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_CheckExact(self) || PyTuple_GET_SIZE(self) != 3) {
        return NULL;
    }
    PyObject *key = PyLong_FromVoidPtr(args[0]);
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *table = PyDict_GetItemWithError(PyTuple_GET_ITEM(self, 1), key);  // borrowed
    Py_DECREF(key);
    Py_ssize_t unit = PyLong_AsSsize_t(args[1]) / 2;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    if (table == NULL || !PyByteArray_CheckExact(table) || unit < 0 ||
        unit >= PyByteArray_GET_SIZE(table) / 8)
    {
        return NULL;
    }
    return (uint64_t *)PyByteArray_AS_STRING(table) + unit;
}

// Counts a cold backedge; 0 once it reaches the threshold.
HELPER int
count_cold(PyObject *self, uint64_t *slot)
{
    Py_ssize_t threshold = PyLong_AsSsize_t(PyTuple_GET_ITEM(self, 2));
    if (threshold < 0) {
        PyErr_Clear();
        return 0;
    }
    if ((Py_ssize_t)(*slot >> 1) + 1 < threshold) {
        *slot += 2;
        return 1;
    }
    return 0;
}

// No tracer and no other monitoring tool watches this code: native code
// would run past their events. jit.py's _alone() is the spec: sys.gettrace()
// (tools 6 and 7 on 3.13), the frame's f_trace, and any other tool in use
// (0 to 5) with events set globally or on this code.
HELPER int
alone(PyThreadState *tstate, _PyInterpreterFrame *frame, PyCodeObject *code)
{
    if (tstate->c_traceobj != NULL ||
        (frame->frame_obj != NULL && frame->frame_obj->f_trace != NULL))
    {
        return 0;
    }
    PyInterpreterState *interp = tstate->interp;
    uint8_t others = 0;
    for (int tool = 0; tool < PY_MONITORING_SYS_PROFILE_ID; tool++) {
        if (tool != COPYJIT_TOOL && interp->monitoring_tool_names[tool] != NULL) {
            others |= (uint8_t)(1 << tool);
        }
    }
    if (others == 0) {
        return 1;
    }
    for (int event = 0; event < _PY_MONITORING_UNGROUPED_EVENTS; event++) {
        if (interp->monitors.tools[event] & others) {
            return 0;
        }
    }
    _PyCoMonitoringData *data = code->_co_monitoring;
    for (int event = 0; data != NULL && event < _PY_MONITORING_LOCAL_EVENTS; event++) {
        if (data->local_monitors.tools[event] & others) {
            return 0;
        }
    }
    return 1;
}

// The exception a trace or the handler left set, given to the interpreter
// to raise in the program's frame at its next eval-breaker check: it must
// not leave a JUMP callback on 3.13.0 (INSTRUMENTED_JUMP would search for
// a handler at a garbage offset; see docs/cpython-facts.md). SIGINT is
// re-armed; anything else is raised again asynchronously in this thread, by
// type (on 3.13 an asynchronous exception cannot carry its arguments).
HELPER void
defer_exception(void)
{
    PyObject *exception = PyErr_GetRaisedException();
    if (PyErr_GivenExceptionMatches(exception, PyExc_KeyboardInterrupt)) {
        PyErr_SetInterruptEx(SIGINT);
    }
    else {
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), (PyObject *)Py_TYPE(exception));
    }
    Py_DECREF(exception);
}

// Counts the exit a trace returned, and marks the record due when the JIT
// asked to judge the trace at this count. Returns whether this exit has
// just become hot (reached its limit): the JIT decides about it at once,
// while the frame is where the exit left it (to record a bridge from there).
HELPER int
count_exit(location_record *record, intptr_t status)
{
    if (record->judge_at && record->entries >= record->judge_at) {
        record->due = 1;
    }
    if (status < 0 || status >= record->exit_count) {
        return 0;
    }
    exit_counter *exit = &record->exits[status];
    exit->taken++;
    if (exit->limit && exit->taken >= exit->limit) {
        record->due = 1;
        return exit->taken == exit->limit;
    }
    return 0;
}

// Runs the record's trace on the frame that is at the JUMP event (its
// stack pointer is saved there), and counts the entry and the exit.
// Returns the exit's number if it has just become hot, else -1.
HELPER intptr_t
enter(PyThreadState *tstate, location_record *record, _PyInterpreterFrame *frame)
{
    trace_cell *cell = record->cell;
    int64_t held;
    if (!pool_hold(&held)) {
        return -1;  // not entered: the interpreter runs the loop
    }
    record->entries++;
    record->totals->entries++;
    // Spill slots live on this C stack: one area per activation.
    intptr_t slots[SPILL_SLOTS];
    cell->active++;
    intptr_t status = cell->trace(frame, frame->localsplus + frame->stacktop, tstate, slots,
                                  0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0);
    cell->active--;
    copyjit_reserve.held -= held;
    copyjit_reserve.activations--;
    record->totals->exits++;
    // If code the trace called (a finalizer) replaced the trace meanwhile,
    // the exit numbers are not the new trace's: count none.
    int hot = record->cell == cell && count_exit(record, status);
    if (status < 0) {  // traces do not raise today; keep the frame's program running
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "copyjit: a trace failed without an exception");
        }
        defer_exception();
    }
    return hot ? status : -1;
}

// An entry of a nested loop's trace from the interpreter also counts as a
// backedge of the loop around it (a cold one: a traced or given-up loop's
// slot is left alone). The interpreter ran that loop's iteration and this
// loop's first (the trace is entered at its backedge): counted by its own
// backedges alone, n-body's outer loop ran ~800 iterations that way, each
// costing 2.9 times a native one, before it got its trace (now ~230).
HELPER void
count_enclosing(PyObject *self, uint64_t *slot, PyObject *const *args, location_record *record)
{
    if (record->enclosing <= 0) {
        return;
    }
    uint64_t *outer = slot - PyLong_AsSsize_t(args[1]) / 2 + (record->enclosing - 1);  // (args checked)
    if (!SLOT_IS_RECORD(*outer)) {
        count_cold(self, outer);  // (at most up to the threshold: its own next backedge records it)
    }
}

// Enters the backedge's trace if it has one, nothing is due, no other
// tool watches and the emergency reserve is in place. Returns whether the
// backedge has a trace ready (entered or not: without one, the handler has
// work to do); `hot` is set to the exit that has just become hot, or -1.
HELPER int
enter_if_ready(PyThreadState *tstate, PyObject *self, uint64_t *slot, PyObject *const *args, intptr_t *hot)
{
    *hot = -1;
    if (slot == NULL || !SLOT_IS_RECORD(*slot)) {
        return 0;
    }
    location_record *record = SLOT_RECORD(*slot);
    if (record->cell == NULL || record->cell->trace == NULL || record->due) {
        return 0;
    }
    _PyInterpreterFrame *frame = tstate->current_frame;
    PyCodeObject *code = (PyCodeObject *)args[0];
    if (frame != NULL && frame->f_executable == (PyObject *)code &&
        alone(tstate, frame, code) && reserve_ready(tstate))
    {
        *hot = enter(tstate, record, frame);
        count_enclosing(self, slot, args, record);
    }
    return 1;
}

// Calls the Python handler; an exception it raises is deferred (above),
// but MemoryError, which is the JIT's own (its recording or bookkeeping ran
// out of memory: the program would get it at some later instruction, where
// CPython raises nothing), is dropped.
//
// It is called with one level of Python recursion lent: at a loop in a frame
// exactly at the recursion limit its own frame would not fit, and the
// program would get a RecursionError that CPython does not raise. The
// handler makes the rest of its room itself, counting this level
// (copyjit/trace/depth.py, LENT).
HELPER PyObject *
call_handler(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *handler = PyTuple_CheckExact(self) ? PyTuple_GET_ITEM(self, 0) : self;
    PyThreadState *tstate = PyThreadState_Get();
    tstate->py_recursion_remaining++;
    PyObject *result = PyObject_Vectorcall(handler, args, nargs, NULL);
    tstate->py_recursion_remaining--;
    if (result == NULL) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            PyErr_Clear();
        }
        else {
            defer_exception();
        }
        return Py_NewRef(Py_None);
    }
    return result;
}

// Tells the handler that exit `hot` of the trace it left has become hot:
// handler(code, src, dst, hot), with the frame as that exit left it.
HELPER PyObject *
report_hot_exit(PyObject *self, PyObject *const *args, intptr_t hot)
{
    PyObject *number = PyLong_FromSsize_t(hot);
    if (number == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *with_exit[4] = {args[0], args[1], args[2], number};
    PyObject *result = call_handler(self, with_exit, 4);
    Py_DECREF(number);
    return result;
}

HELPER PyObject *
on_jump(PyThreadState *tstate, PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    // While an exit's emergency reserve is spent, memory is exhausted: the
    // JIT does nothing (its handler's Python code would raise MemoryError,
    // which the program would get at some later instruction, outside the
    // `try` where it expects its own), and the interpreter runs every loop.
    if (!reserve_ready(tstate)) {
        Py_RETURN_NONE;
    }
    uint64_t *slot = find_slot(self, args, nargs);
    if (slot != NULL && !SLOT_IS_RECORD(*slot) && count_cold(self, slot)) {
        Py_RETURN_NONE;
    }
    intptr_t hot;
    if (enter_if_ready(tstate, self, slot, args, &hot)) {
        // (An exit that spent the reserve is judged when it is back: the
        // record is due.)
        return hot < 0 || copyjit_reserve.address == NULL ? Py_NewRef(Py_None)
                                                           : report_hot_exit(self, args, hot);
    }
    PyObject *result = call_handler(self, args, nargs);
    if (result == Py_None) {  // it may have made a trace, or judged one and kept it
        enter_if_ready(tstate, self, find_slot(self, args, nargs), args, &hot);
        if (hot >= 0 && copyjit_reserve.address != NULL) {
            Py_DECREF(result);
            return report_hot_exit(self, args, hot);
        }
    }
    return result;
}

PyObject *
copyjit_on_jump(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    // The handler or a trace's callees may unregister this callback, which
    // would free `self` and with it the tables and records in use here.
    Py_INCREF(self);
    PyObject *result = on_jump(PyThreadState_Get(), self, args, nargs);
    Py_DECREF(self);
    return result;
}

// Code pages are never writable and executable at once. Writing is
// mprotect(RW) + memcpy + mprotect(RX) done in one native call made with the
// GIL held: no other thread can run (and so execute from these pages) until
// the pages are executable again. Returns 0, or -1 if mprotect failed.
int
copyjit_write_code(char *dst, const char *src, size_t size, size_t page_size)
{
    uintptr_t start = (uintptr_t)dst & ~(uintptr_t)(page_size - 1);
    uintptr_t end = ((uintptr_t)dst + size + page_size - 1)
                    & ~(uintptr_t)(page_size - 1);
    if (mprotect((void *)start, end - start, PROT_READ | PROT_WRITE)) {
        return -1;
    }
    memcpy(dst, src, size);
    if (mprotect((void *)start, end - start, PROT_READ | PROT_EXEC)) {
        return -1;
    }
    return 0;
}

// copyjit_store_float_item_c (objects.c) of rax, r10, xmm15 and r11, into
// eax, every register but r10, r11, xmm4..xmm15 and the flags kept
// (copyjit.h: the stencils' call). Entered with any stack alignment.
__attribute__((naked)) void
copyjit_store_float_item_rax(void)
{
    __asm__(
        "push %rbp\n\t"
        "mov %rsp, %rbp\n\t"
        "and $-16, %rsp\n\t"
        "sub $112, %rsp\n\t"
        "movdqa %xmm0, 0(%rsp)\n\t"
        "movdqa %xmm1, 16(%rsp)\n\t"
        "movdqa %xmm2, 32(%rsp)\n\t"
        "movdqa %xmm3, 48(%rsp)\n\t"
        "mov %rcx, 64(%rsp)\n\t"
        "mov %rdx, 72(%rsp)\n\t"
        "mov %rsi, 80(%rsp)\n\t"
        "mov %rdi, 88(%rsp)\n\t"
        "mov %r8, 96(%rsp)\n\t"
        "mov %r9, 104(%rsp)\n\t"
        "mov %rax, %rdi\n\t"
        "mov %r10, %rsi\n\t"
        "movapd %xmm15, %xmm0\n\t"
        "mov %r11, %rdx\n\t"
        "call *copyjit_store_float_item_c@GOTPCREL(%rip)\n\t"
        "movdqa 0(%rsp), %xmm0\n\t"
        "movdqa 16(%rsp), %xmm1\n\t"
        "movdqa 32(%rsp), %xmm2\n\t"
        "movdqa 48(%rsp), %xmm3\n\t"
        "mov 64(%rsp), %rcx\n\t"
        "mov 72(%rsp), %rdx\n\t"
        "mov 80(%rsp), %rsi\n\t"
        "mov 88(%rsp), %rdi\n\t"
        "mov 96(%rsp), %r8\n\t"
        "mov 104(%rsp), %r9\n\t"
        "mov %rbp, %rsp\n\t"
        "pop %rbp\n\t"
        "ret");
}
