// The stencil ABI: every uop variant is one function with this signature.
//
// All stencils share one preserve_none signature, so argument N lives in the
// same machine register in every stencil of a trace: values a stencil does not
// touch pass through to its continuation without a single move. On x86-64
// preserve_none passes integer arguments in r12, r13, r14, r15, rdi, rsi, rdx,
// rcx, ... and doubles in xmm0-xmm7. frame, sp and tstate land in r12-r14,
// which the normal C ABI preserves, so calls into CPython keep them for free.
#ifndef COPYJIT_H
#define COPYJIT_H

#define Py_BUILD_CORE 1
#include "Python.h"
#include "internal/pycore_ceval.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_list.h"
#include "internal/pycore_long.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_range.h"
#include "internal/pycore_tuple.h"
#include <stdint.h>
#include <string.h>

#define STENCIL_PARAMS                                                      \
    _PyInterpreterFrame *frame, PyObject **sp, PyThreadState *tstate,       \
    intptr_t *slots, intptr_t i0, intptr_t i1, intptr_t i2, intptr_t i3,    \
    double f0, double f1, double f2, double f3
#define STENCIL_ARGS \
    frame, sp, tstate, slots, i0, i1, i2, i3, f0, f1, f2, f3

typedef __attribute__((preserve_none)) intptr_t (*jit_func)(STENCIL_PARAMS);

#define STENCIL(NAME) __attribute__((preserve_none)) intptr_t NAME(STENCIL_PARAMS)

// Holes. Each extern is patched at emit time; its address *is* the value.
extern char _JIT_CONTINUE[];      // the next uop of the trace
extern char _JIT_JUMP_TARGET[];   // where a taken branch goes
extern char _JIT_EXIT_TARGET[];   // where a failed guard goes
extern char _JIT_ERROR_TARGET[];  // where a raised exception goes
extern char _JIT_OPARG[];
extern char _JIT_OPERAND0[];
extern char _JIT_OPERAND1[];

#define TAIL(TARGET) \
    __attribute__((musttail)) return ((jit_func)(TARGET))(STENCIL_ARGS)

// Publish the stack depth: the GC traverses a frame's stack up to stacktop
// (generator frames even while they run), so before anything that can call
// out, stacktop must cover exactly the live stack, not slots already popped.
#define SYNC_SP() (frame->stacktop = (int)(sp - frame->localsplus))

#ifndef SPILL_SLOTS
#error "SPILL_SLOTS comes from copyjit/uops.py through the compiler's command line"
#endif

#endif
