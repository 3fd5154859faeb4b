// Runtime helpers with the normal C ABI, emitted once per process into the
// code arena (they are built like stencils: no compiler runs at run time).
#include "copyjit.h"
#include <sys/mman.h>

// The C implementation behind every trace's builtin function object
// (METH_O). `self` is an 8-byte bytearray holding the trace's entry address;
// freeing a trace zeroes it, so a stale callable raises instead of jumping
// into freed code. `arg` is a frame object or the address of a raw
// _PyInterpreterFrame. Returns the exit code the trace returned, or NULL with
// the exception the trace raised.
PyObject *
copyjit_enter(PyObject *self, PyObject *arg)
{
    jit_func trace = *(jit_func *)PyByteArray_AS_STRING(self);
    if (trace == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "copyjit: this trace was freed");
        return NULL;
    }
    _PyInterpreterFrame *frame;
    if (Py_IS_TYPE(arg, &PyFrame_Type)) {
        frame = ((PyFrameObject *)arg)->f_frame;
    }
    else if (PyLong_CheckExact(arg)) {
        frame = (_PyInterpreterFrame *)PyLong_AsVoidPtr(arg);
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "copyjit: a trace takes a frame or a frame address");
        return NULL;
    }
    // Spill slots live on the C stack of this call: one area per activation,
    // so recursion and threads never share them.
    intptr_t slots[SPILL_SLOTS];
    PyObject **sp = frame->localsplus + frame->stacktop;
    intptr_t status = trace(frame, sp, PyThreadState_Get(), slots,
                            0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0);
    if (status < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(status);
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
