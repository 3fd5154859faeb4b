// Runtime helpers with the normal C ABI, emitted once per process into the
// code arena (they are built like stencils: no compiler runs at run time).
#include "copyjit.h"
#include <signal.h>
#include <sys/mman.h>

// What a trace's builtin function object holds (as its bytearray `self`).
// Trace.free() zeroes `trace`, so a stale callable raises instead of jumping
// into freed code, and waits for `active` to drop to zero before the code
// is reused: a trace can be freed while it runs (by code it calls).
typedef struct {
    jit_func trace;
    Py_ssize_t active;  // activations in progress, over all threads
} trace_cell;

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

// The C implementation (METH_O) behind every trace's builtin function.
// `arg` is a frame object or the address of a raw _PyInterpreterFrame.
// Returns the exit code the trace returned, or NULL with the exception the
// trace raised.
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
    // Spill slots live on the C stack of this call: one area per activation,
    // so recursion and threads never share them.
    intptr_t slots[SPILL_SLOTS];
    PyObject **sp = frame->localsplus + frame->stacktop;
    cell->active++;
    intptr_t status = cell->trace(frame, sp, PyThreadState_Get(), slots,
                                  0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0);
    cell->active--;
    if (status < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "copyjit: a trace failed without an exception");
        }
        return NULL;
    }
    return PyLong_FromSsize_t(status);
}

// The sys.monitoring JUMP callback (METH_FASTCALL); `self` is the JIT's
// Python handler. An exception must never leave a JUMP callback on 3.13.0
// (INSTRUMENTED_JUMP then searches for a handler at a garbage offset; see
// docs/cpython-facts.md), yet the handler can be interrupted: when a trace
// exits for a pending signal, the next eval-breaker check in the handler
// raises KeyboardInterrupt. So the exception is deferred: SIGINT is
// re-armed, anything else raised again asynchronously in this thread (by
// type: on 3.13 an asynchronous exception cannot carry its arguments), and
// the interpreter raises it in the program's own frame at its next
// eval-breaker check.
//
// `self` is (handler, counters, threshold). counters maps id(code) to a
// bytearray of 32-bit backedge counts, one per code unit: a cold backedge
// is counted here, without running any Python code, and the handler is
// called only for a code it has not seen yet or a location that reached
// the threshold (to record it, or to enter its trace).
static int
count_cold(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_CheckExact(self) || PyTuple_GET_SIZE(self) != 3) {
        return 0;
    }
    PyObject *key = PyLong_FromVoidPtr(args[0]);
    if (key == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *table = PyDict_GetItemWithError(PyTuple_GET_ITEM(self, 1), key);  // borrowed
    Py_DECREF(key);
    Py_ssize_t unit = PyLong_AsSsize_t(args[1]) / 2;
    Py_ssize_t threshold = PyLong_AsSsize_t(PyTuple_GET_ITEM(self, 2));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (table == NULL || !PyByteArray_CheckExact(table) || unit < 0 ||
        unit >= PyByteArray_GET_SIZE(table) / 4)
    {
        return 0;
    }
    uint32_t *count = (uint32_t *)PyByteArray_AS_STRING(table) + unit;
    if ((Py_ssize_t)*count + 1 < threshold) {
        (*count)++;
        return 1;
    }
    return 0;
}

PyObject *
copyjit_on_jump(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (count_cold(self, args, nargs)) {
        Py_RETURN_NONE;
    }
    PyObject *handler = PyTuple_CheckExact(self) ? PyTuple_GET_ITEM(self, 0) : self;
    PyObject *result = PyObject_Vectorcall(handler, args, nargs, NULL);
    if (result != NULL) {
        return result;
    }
    PyObject *exception = PyErr_GetRaisedException();
    if (PyErr_GivenExceptionMatches(exception, PyExc_KeyboardInterrupt)) {
        Py_DECREF(exception);
        PyErr_SetInterruptEx(SIGINT);
    }
    else {
        PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), (PyObject *)Py_TYPE(exception));
        Py_DECREF(exception);
    }
    Py_RETURN_NONE;
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
