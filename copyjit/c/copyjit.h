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
#include "internal/pycore_instruments.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_list.h"
#include "internal/pycore_long.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_range.h"
#include "internal/pycore_tuple.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

// Reference counts changed 64 bits at a time. CPython 3.13's Py_INCREF
// stores only the low 32 bits of ob_refcnt (so that an immortal object's
// 0xFFFFFFFF never wraps), and Py_DECREF loads all 64: a decref soon after
// an incref of the same object, which traces do all the time (a reference
// read, guarded, released), cannot take the count from the store buffer and
// waits for the store to retire (22% of n-body's pair loop under perf). The
// same counts and the same immortality rule (the low half never wraps to 0,
// and a mortal object's high half is 0), in one width.
static inline __attribute__((always_inline)) void copyjit_incref(PyObject *op)
{
    uint64_t count = (uint64_t)op->ob_refcnt + 1;
    if ((uint32_t)count != 0) {
        op->ob_refcnt = (Py_ssize_t)count;
    }
}

static inline __attribute__((always_inline)) PyObject *copyjit_newref(PyObject *op)
{
    copyjit_incref(op);
    return op;
}

#undef Py_INCREF
#define Py_INCREF(op) copyjit_incref(_PyObject_CAST(op))
#undef Py_NewRef
#define Py_NewRef(op) copyjit_newref(_PyObject_CAST(op))
#undef Py_XINCREF
#define Py_XINCREF(op) do { PyObject *xop_ = _PyObject_CAST(op); if (xop_ != NULL) { copyjit_incref(xop_); } } while (0)
#undef Py_XNewRef
#define Py_XNewRef(op) copyjit_xnewref(_PyObject_CAST(op))
static inline __attribute__((always_inline)) PyObject *copyjit_xnewref(PyObject *op)
{
    if (op != NULL) {
        copyjit_incref(op);
    }
    return op;
}

// Py_DECREF in a stencil: the count only decremented inline; when it
// reaches zero, the stack depth published and the object freed by the
// runtime's copyjit_dealloc_rax (objects.c). A stencil whose only calls out
// are decrefs therefore skips SYNC_SP on its fast path (cgen.py redefines
// Py_DECREF to this).
//
// The call is inline assembly, not C: copyjit_dealloc_rax takes the object
// in rax and keeps every other register but xmm4..xmm15, which the asm
// declares clobbered: the stencils' doubles are in xmm0..xmm3, and clang
// keeps nothing else there across it (twelve saves and twelve restores
// fewer at every object freed; the fast path is the same). A C call takes
// its argument in rdi, where the stencils keep i0, and clang moved i0..i2
// out of the way on the fast path of every stencil that releases (three
// moves there and three back: a third of _STORE_FAST_O). The call skips
// the red zone: clang sees no call, so it may treat the stencil as a leaf
// and keep data below rsp.
void copyjit_dealloc_rax(void);

// The slow half of _STORE_SUBSCR_LIST_*_F (objects.c), called as
// copyjit_dealloc_rax is, by inline assembly: seq in rax, index in r10,
// tstate in r11 and value in xmm15, the result in eax; the callee
// (copyjit_store_float_item_rax) keeps every other register but
// xmm4..xmm14. A C call's arguments went in rdi, rsi and rdx, where the
// stencils keep i0..i2, and clang moved those out of the way and back on
// the fast path too (the float overwritten in place: 9 instructions, now 4:
// a movabs of the index into r10, which clang hoists, the compare, the
// branch and the store).
static inline __attribute__((always_inline)) int
copyjit_store_float_item(PyObject *seq, Py_ssize_t index, double value, PyThreadState *tstate)
{
    register intptr_t rax __asm__("rax") = (intptr_t)seq;
    register Py_ssize_t r10 __asm__("r10") = index;
    register PyThreadState *r11 __asm__("r11") = tstate;
    register double xmm15 __asm__("xmm15") = value;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "call *copyjit_store_float_item_rax@GOTPCREL(%%rip)\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "+r"(rax), "+r"(r10), "+r"(r11), "+x"(xmm15)
                     :
                     : "memory", "cc", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13", "xmm14");
    return (int)rax;
}
void copyjit_store_float_item_rax(void);
// ... and of _STORE_ATTR_INSTANCE_F and _I.
__attribute__((preserve_most)) int
copyjit_store_float_attr(PyObject **slot, double value);
__attribute__((preserve_most)) int
copyjit_store_int_attr(PyObject **slot, int64_t value);
// ... of _SYNC_FLOAT_O and _SYNC_INT_O.
__attribute__((preserve_most)) int
copyjit_sync_float(_PyInterpreterFrame *frame, intptr_t slot, double value);
__attribute__((preserve_most)) int
copyjit_sync_int(_PyInterpreterFrame *frame, intptr_t slot, int64_t value);
// ... and of _STORE_FLOAT_LEAVING and _STORE_INT_LEAVING.
__attribute__((preserve_most)) void
copyjit_store_float_leaving(_PyInterpreterFrame *frame, PyThreadState *tstate, intptr_t slot, double value);
__attribute__((preserve_most)) void
copyjit_store_int_leaving(_PyInterpreterFrame *frame, PyThreadState *tstate, intptr_t slot, int64_t value);

// Publish the stack depth: the GC traverses a frame's stack up to stacktop
// (generator frames even while they run), so before anything that can call
// out, stacktop must cover exactly the live stack, not slots already popped.
#define SYNC_SP() (frame->stacktop = (int)(sp - frame->localsplus))

// CPython's float freelist, used directly where a trace frees or makes a
// float: as _PyFloat_ExactDealloc and PyFloat_FromDouble do, without their
// calls, their thread-local lookup of the interpreter (__tls_get_addr, in
// a shared libpython) or, when freeing, copyjit_dealloc_rax's saving of
// every register. n-body frees and makes nine floats a step (stores over
// list items a local holds too, the locals' old values at the exits).
// Only while no reference tracer is set (and, to make one, no tracemalloc
// tracing), else the interpreter's own functions do it. The layout these
// read is checked against the running interpreter at start-up
// (copyjit_check_floats, objects.c).
static inline __attribute__((always_inline)) struct _Py_float_freelist *
copyjit_float_freelist(PyThreadState *tstate)
{
    return &tstate->interp->object_state.freelists.floats;
}

// Put `op`, an object whose count reached 0, on the freelist if it is an
// exact float and the list has room: 1 if done, 0 for _Py_Dealloc to free it.
static inline __attribute__((always_inline)) int
copyjit_free_float(PyThreadState *tstate, PyObject *op)
{
    struct _Py_float_freelist *floats = copyjit_float_freelist(tstate);
    // The type read behind an empty asm: else clang merges this test with a
    // stencil's own tests of the type (_STORE_SUBSCR_LIST_*_PLAIN) and the
    // fast path of the stencil pays for it (a stack frame, setcc chains).
    PyTypeObject *type;
    __asm__("" : "=r"(type) : "0"(Py_TYPE(op)));
    // (numfree < 0: the list is closed, the interpreter finalizing)
    if (type != &PyFloat_Type || (unsigned)floats->numfree >= PyFloat_MAXFREELIST
        || _PyRuntime.ref_tracer.tracer_func != NULL) {
        return 0;
    }
    floats->numfree++;
    Py_SET_TYPE(op, (PyTypeObject *)floats->items);
    floats->items = (PyFloatObject *)op;
    return 1;
}

// Whether objects may be reused without the interpreter seeing them freed
// and made (no reference tracer, no tracemalloc), as copyjit_new_float.
static inline __attribute__((always_inline)) int
copyjit_untraced(void)
{
    return _PyRuntime.ref_tracer.tracer_func == NULL && !_PyRuntime.tracemalloc.config.tracing;
}

// A float from the freelist, or NULL (no exception) when the list is empty
// or the interpreter must see the object made: copyjit_new_float without
// its call, for a stencil's slow path that calls nothing on its way.
static inline __attribute__((always_inline)) PyObject *
copyjit_pop_float(PyThreadState *tstate, double value)
{
    struct _Py_float_freelist *floats = copyjit_float_freelist(tstate);
    PyFloatObject *op = floats->items;
    if (op == NULL || _PyRuntime.ref_tracer.tracer_func != NULL || _PyRuntime.tracemalloc.config.tracing) {
        return NULL;
    }
    floats->items = (PyFloatObject *)Py_TYPE(op);
    floats->numfree--;
    Py_SET_TYPE(op, &PyFloat_Type);  // (a static type: no reference to it)
    op->ob_base.ob_refcnt = 1;
    op->ob_fval = value;
    return (PyObject *)op;
}

// A new float (NULL, an exception set: out of memory).
static inline __attribute__((always_inline)) PyObject *
copyjit_new_float(PyThreadState *tstate, double value)
{
    PyObject *op = copyjit_pop_float(tstate, value);
    return op != NULL ? op : PyFloat_FromDouble(value);
}

// Release a reference to an object something else holds too (its count is
// 2 or more, or it is immortal): nothing is freed, so nothing runs.
static inline __attribute__((always_inline)) void
copyjit_release_shared(PyObject *op)
{
    uint64_t count = (uint64_t)op->ob_refcnt;
    if ((int32_t)count >= 0) {  // not immortal, as _Py_IsImmortal
        op->ob_refcnt = (Py_ssize_t)(count - 1);
    }
}

static inline __attribute__((always_inline)) void
copyjit_decref(PyObject *op, _PyInterpreterFrame *frame, PyObject **sp, PyThreadState *tstate)
{
    uint64_t count = (uint64_t)op->ob_refcnt;
    if ((int32_t)count < 0) {  // immortal, as _Py_IsImmortal
        return;
    }
    count -= 1;
    op->ob_refcnt = (Py_ssize_t)count;
    if (count == 0 && !copyjit_free_float(tstate, op)) {
        SYNC_SP();
        __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                         "call *copyjit_dealloc_rax@GOTPCREL(%%rip)\n\t"
                         "lea 128(%%rsp), %%rsp"
                         : : "a"(op)
                         : "memory", "cc", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                           "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    }
}

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
// 8 * oparg, a spill slot's offset in bytes, as a 32-bit displacement: in
// a section of its own, not a large one (.ldata), the medium code model
// takes it for a small symbol, so `SLOT` is one instruction
// (`movsd xmm1, [r15 + disp32]`), not a movabs of the index and a load.
extern char _JIT_SLOT_OFFSET[] __attribute__((section(".bss.copyjit_small")));
#define SLOT (*(intptr_t *)((char *)slots + (uintptr_t)_JIT_SLOT_OFFSET))
// oparg as a 32-bit immediate, through a hole in the same small section:
// `cmp qword ptr [rdi + 0x10], imm32`, not a movabs of oparg into a
// register and a compare with that. The builder reads the hole as OPARG;
// the uop's oparg is then at most AT_OPARG_MAX (uops.py).
extern char _JIT_OPARG_IMM32[] __attribute__((section(".bss.copyjit_small")));
#define OPARG_IMM32 ((Py_ssize_t)(uintptr_t)_JIT_OPARG_IMM32)
// ARRAY[oparg], for an array of pointers (a frame's locals, a tuple's or a
// list's items), through the same hole: one instruction (`mov rdi,
// [r12 + disp32]`), not a movabs of oparg and an indexed load. The uop's
// oparg is then at most AT_OPARG_MAX (uops.py).
#define AT_OPARG(ARRAY) (*(__typeof__(&(ARRAY)[0]))((char *)(ARRAY) + (uintptr_t)_JIT_SLOT_OFFSET))

// The oparg, made where this statement stands: the `oparg` of a body
// (cgen.py) is an input, which clang materializes at the stencil's entry,
// on a fast path that does not use it as well as on the slow path that
// does (_STORE_SUBSCR_LIST_CONST_F_OVER: 5 instructions a float overwritten
// in place, 3 with this).
#define OPARG_HERE(VAR) __asm__("movabsq $_JIT_OPARG, %0" : "=r"(VAR))

#define TAIL(TARGET) \
    __attribute__((musttail)) return ((jit_func)(TARGET))(STENCIL_ARGS)

// --- Shared with the Python side -------------------------------------------
// These live in bytearrays that copyjit/backend/runtime.py allocates and
// fills; its struct formats are checked against these layouts (the layout
// probes in copyjit/build/versions.py) when the runtime starts.

// What a trace's builtin function object holds (as its bytearray `self`).
// Trace.free() zeroes `trace`, so a stale callable raises instead of jumping
// into freed code, and waits for `active` to drop to zero before the code
// is reused: a trace can be freed while it runs (by code it calls).
typedef struct {
    jit_func trace;
    Py_ssize_t active;  // activations in progress, over all threads
} trace_cell;

// One exit number of a trace: how often it was taken, and at which count
// the JIT wants to judge it (0: never; "normal" exits are never judged).
typedef struct {
    int64_t taken;
    int64_t limit;
} exit_counter;

// Per JIT: what stats() reports as native_entries and exits.
typedef struct {
    int64_t entries;
    int64_t exits;
} entry_totals;

// A backedge with a trace: everything copyjit_on_jump needs to enter it and
// count what happened, without running Python code. Owned by the JIT's
// Location (a bytearray that never moves, so the trace's _COUNT can add to
// `iterations` at a fixed address).
typedef struct {
    int64_t iterations;    // loop iterations run natively (the trace's _COUNT)
    trace_cell *cell;      // the trace (NULL: none)
    exit_counter *exits;   // indexed by the exit number the trace returns
    int64_t exit_count;
    entry_totals *totals;
    int64_t entries;       // native entries since the trace was installed
    int64_t judge_at;      // entries at which the JIT judges the trace (0: never)
    int64_t due;           // nonzero: call the JIT's handler before entering again
    int64_t enclosing;     // 1 + the code unit of the backedge of the loop around this one (0: none)
} location_record;

#define COPYJIT_IDLE_ITERS 8  // (runtime.py's RESERVE format agrees)

// The emergency reserve: address space an exit can give back when it runs
// out of memory while writing the frame back, where it has no way out (the
// frame is half written). COPYJIT_RESERVE_SIZE bytes mapped PROT_NONE and
// never touched (RLIMIT_AS counts them, nothing else does). An exit whose
// box fails unmaps it and boxes again; native code is entered only while it
// is mapped (runtime.c's reserve_ready maps it again first, which succeeds
// once memory was freed), so the interpreter, not a trace, runs a loop
// until then. One per process, in a buffer runtime.py owns (the linker
// symbol `copyjit_reserve` is resolved to it), used with the GIL held.
//
// Behind it, the pool: floats and ints made before entering native code,
// which an exit boxes into when even the reserve is spent already (by a
// trace in another thread, or one that code this trace called ran).
// Every activation of native code holds `per_activation` of each (the most
// boxes any trace's exits, and hand-overs to nested loops, make while it
// runs: runtime.py raises it as traces are made): an entry is refused
// unless the pool has that many more than the activations in progress
// hold (`held`). Pooled objects are chained through their values.
typedef struct {
    void *address;     // the mapping, or NULL: released (or not mapped yet)
    int64_t released;  // times an exit released it
    int64_t refused;   // native entries refused because it (or the pool) could not be made
    PyObject *floats;  // the pool: floats (chained through ob_fval)
    PyObject *ints;    // and ints with room for three digits (chained through ob_digit)
    int64_t pooled;    // floats in the pool, and as many ints (at least)
    int64_t held;      // what activations in progress hold of it
    int64_t per_activation;
    int64_t taken;     // boxes exits took from it
    // And one reraiser per activation (a builtin with its method def
    // `reraise_def`, whose `self` is the exception it raises: objects.c's
    // copyjit_reraise), for an exit whose call raised; chained through
    // their `self`.
    PyObject *reraisers;
    int64_t reraisers_pooled;
    int64_t activations;  // in progress
    PyMethodDef *reraise_def;
    int64_t pool_only;  // nonzero: exits box from the pool alone (tests: runtime.py's pool_only)
    // List iterators a trace released as their last holder, kept for the
    // next iter() of a list a trace makes (_GET_ITER_O, _RELEASE_ITER_O):
    // a loop nested in a trace's makes one at every pass of the loop around
    // it, an allocation, a GC link and their undoing (n-body: 5% of a
    // step). Each is idle as an exhausted one is (it_seq NULL, it_index -1),
    // still tracked by the GC, and this is its one reference.
    int64_t idle_iters_count;
    PyObject *idle_iters[COPYJIT_IDLE_ITERS];
} reserve_state;

extern reserve_state copyjit_reserve;

// Keys of watched dicts (objects.c's copyjit_watch_dict_key). A loop whose
// trace runs code may still have its loads of globals, builtins and module
// attributes moved before it (opt/licm.py): it reads `epoch` there, and
// where the loop loaded one it exits if `epoch` changed since.
// copyjit_on_dict_event adds one to `epoch` whenever a watched dict may
// have changed a key in `keys` (a set of str objects by address, open
// addressing; each holds a reference). `full`: no more room, every change
// counts.
#define COPYJIT_WATCH_KEYS 1024
typedef struct {
    uint64_t epoch;
    int64_t watcher;  // the dict watcher's id + 1 (0: not added yet)
    int64_t count;    // keys in `keys`
    int64_t full;
    PyObject *keys[COPYJIT_WATCH_KEYS];
} watch_state;

extern watch_state copyjit_watch;

#define COPYJIT_RESERVE_SIZE ((size_t)4 << 20)

// Set in the eval breaker of the thread whose exit released the reserve,
// until it is mapped again: every trace running in that thread leaves at its
// next loop head (_CHECK_EVAL_BREAKER), the outer trace of a nested
// activation that spent it too. An event bit CPython 3.13 does not use:
// _Py_HandlePending ignores it (the interpreter only takes its slow path
// while it is set), and RESUME's instrumentation version is not affected.
#define COPYJIT_RESERVE_GONE_BIT ((uintptr_t)1 << 7)
_Static_assert((COPYJIT_RESERVE_GONE_BIT & _PY_EVAL_EVENTS_MASK) == COPYJIT_RESERVE_GONE_BIT,
               "the reserve's bit must be an event bit");
_Static_assert((COPYJIT_RESERVE_GONE_BIT & (_PY_GIL_DROP_REQUEST_BIT | _PY_SIGNALS_PENDING_BIT |
                _PY_CALLS_TO_DO_BIT | _PY_ASYNC_EXCEPTION_BIT | _PY_GC_SCHEDULED_BIT |
                _PY_EVAL_PLEASE_STOP_BIT | _PY_EVAL_EXPLICIT_MERGE_BIT)) == 0,
               "the reserve's bit must be one CPython does not use");

// Gives the reserve back to the system; 0 if there was none to give.
static inline __attribute__((always_inline)) int copyjit_release_reserve(PyThreadState *tstate)
{
    void *address = copyjit_reserve.address;
    if (address == NULL) {
        return 0;
    }
    copyjit_reserve.address = NULL;
    copyjit_reserve.released++;
    _Py_set_eval_breaker_bit(tstate, COPYJIT_RESERVE_GONE_BIT);
    return munmap(address, COPYJIT_RESERVE_SIZE) == 0;
}

// Whether a tool other than copyjit's (5) has local events on `code` (a
// debugger's breakpoint). The 10 events' tool bits read as 8 bytes and 2
// (overlapping if there are fewer), every bit but tool 5's in every byte.
static inline __attribute__((always_inline)) int copyjit_watched_locally(PyCodeObject *code)
{
    _PyCoMonitoringData *data = code->_co_monitoring;
    if (data == NULL) {
        return 0;
    }
    uint8_t *tools = data->local_monitors.tools;
    uint64_t head;
    uint16_t tail;
    __builtin_memcpy(&head, tools, 8);
    __builtin_memcpy(&tail, tools + _PY_MONITORING_LOCAL_EVENTS - 2, 2);
    return ((head | tail) & 0xDFDFDFDFDFDFDFDFull) != 0;
}

// A box from the pool, for an exit whose box failed with the reserve
// spent; NULL if the pool is empty (held wrongly: a bug). This thread's
// traces leave at their next loop head (the bit above), and native code is
// entered again only once the reserve is mapped and the pool made whole.
static inline __attribute__((always_inline)) PyObject *copyjit_pooled_float(PyThreadState *tstate, double value)
{
    PyObject *box = copyjit_reserve.floats;
    if (box == NULL) {
        return NULL;
    }
    memcpy(&copyjit_reserve.floats, &((PyFloatObject *)box)->ob_fval, sizeof(PyObject *));
    ((PyFloatObject *)box)->ob_fval = value;
    copyjit_reserve.taken++;
    copyjit_reserve.pooled--;  // (each chain has `pooled` at least)
    _Py_set_eval_breaker_bit(tstate, COPYJIT_RESERVE_GONE_BIT);
    return box;
}

// (Taken only when PyLong_FromSsize_t failed, which a small int, cached,
// never does: no small int is made here, whose identity `is` could test.)
static inline __attribute__((always_inline)) PyObject *copyjit_pooled_int(PyThreadState *tstate, int64_t value)
{
    PyLongObject *box = (PyLongObject *)copyjit_reserve.ints;
    if (box == NULL) {
        return NULL;
    }
    memcpy(&copyjit_reserve.ints, box->long_value.ob_digit, sizeof(PyObject *));
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    Py_ssize_t digits = 0;
    for (; magnitude != 0; magnitude >>= PyLong_SHIFT) {
        box->long_value.ob_digit[digits++] = (digit)(magnitude & PyLong_MASK);
    }
    _PyLong_SetSignAndDigitCount(box, value < 0 ? -1 : (value > 0), digits);
    copyjit_reserve.taken++;
    copyjit_reserve.pooled--;  // (each chain has `pooled` at least)
    _Py_set_eval_breaker_bit(tstate, COPYJIT_RESERVE_GONE_BIT);
    return (PyObject *)box;
}

// A reraiser of `raised` from the pool (it takes a reference), for an
// exit whose call raised, when even the reserve was spent; NULL if empty.
static inline __attribute__((always_inline)) PyObject *copyjit_pooled_reraiser(PyThreadState *tstate,
                                                                               PyObject *raised)
{
    PyCFunctionObject *reraiser = (PyCFunctionObject *)copyjit_reserve.reraisers;
    if (reraiser == NULL) {
        return NULL;
    }
    copyjit_reserve.reraisers = reraiser->m_self;
    reraiser->m_self = Py_NewRef(raised);
    PyObject_GC_Track(reraiser);  // (untracked while pooled: runtime.c)
    copyjit_reserve.reraisers_pooled--;
    copyjit_reserve.taken++;
    _Py_set_eval_breaker_bit(tstate, COPYJIT_RESERVE_GONE_BIT);
    return (PyObject *)reraiser;
}

// libm's pow without the wrapper around it: glibc's pow sets errno when
// the power is infinite or zero and otherwise returns what its core
// computed, __pow_finite (GLIBC_2.15), which it calls through the PLT
// (~20 instructions a call). runtime.py resolves this to that core, or to
// pow itself on a libc that has none. Only for powers surely finite and
// normal (_POW_FLOAT_CONST's bounds): the same double CPython's pow gives.
double copyjit_pow_finite(double base, double exponent);

// The slow halves of _BOX_*_LEAVING_O, _STORE_*_LEAVING and _RERAISER_O
// (objects.c), out of line: their box failed (or the pool alone is to be used), and the frame
// must be handed back. The emergency reserve is given back and the box
// made again, else one is taken from the pool; the process stops only if
// that is empty too.
PyObject *copyjit_float_for_exit(PyThreadState *tstate, double value);
PyObject *copyjit_int_for_exit(PyThreadState *tstate, int64_t value);
PyObject *copyjit_reraiser_for_exit(PyThreadState *tstate, PyMethodDef *def, PyObject *raised);

// A guard's exit as data (_EXIT_DATA; objects.c says the table's layout):
// the bridge to go on at, or none and the stack's new top.
typedef struct {
    PyObject **sp;
    jit_func bridge;
} copyjit_exit_result;
copyjit_exit_result copyjit_exit_data(_PyInterpreterFrame *frame, PyObject **sp, PyThreadState *tstate,
                                      intptr_t *slots, const int64_t *data, intptr_t i0, intptr_t i1,
                                      intptr_t i2, intptr_t i3, double f0, double f1, double f2, double f3);

#ifndef SPILL_SLOTS
#error "SPILL_SLOTS comes from copyjit/uops.py through the compiler's command line"
#endif

#endif
