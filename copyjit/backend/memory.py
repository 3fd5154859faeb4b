"""Executable memory: one reserved arena, shared pages, never writable and executable.

The arena is one reservation of address space (PROT_NONE until used), so
every piece of code and data in it can reach every other with a 32-bit
PC-relative displacement: stencils call C functions through one shared GOT
and jump between traces directly.

Pages are read+execute; writes go through `copyjit_write_code` (see
copyjit/c/runtime.c), a native helper that flips the pages to read+write,
copies and flips them back within one call made with the GIL held, so no
other thread can execute from them in between. Many traces share a page;
freed blocks go back to a first-fit free list and are poisoned with `int3`
so a stale jump traps instead of running someone else's code.
"""

from __future__ import annotations

import _thread  # not threading: its import costs ~2 ms of start-up, for a Lock
import os

from copyjit.backend import native  # not ctypes: ~1.5 ms of start-up

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
ALIGNMENT = 16  # code blocks start on a 16-byte boundary (x86 fetch blocks)
# 64 MiB: well within the ±2 GiB reach of a rel32, and thousands of traces
# (those of code that dies are freed). Not more: a reservation counts
# against RLIMIT_AS even unused, and the 1 GiB reserved before took a
# program's memory limit (resource.setrlimit) for the JIT's
# (tests/test_robustness.py). It cannot grow in place: mmap places new
# mappings just below the last, so the space after it is taken.
RESERVE = 64 << 20
POISON = b"\xcc"  # int3

# <sys/mman.h> on Linux (as the mmap module has them, which start-up does not import).
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE = 0x02, 0x20, 0x4000

_mmap = native.function(native.symbol("mmap"), native.c_void_p, native.c_void_p, native.c_size_t,
                        native.c_int, native.c_int, native.c_int, native.c_long, python=False, errno=True)
_mprotect = native.function(native.symbol("mprotect"), native.c_int, native.c_void_p, native.c_size_t,
                            native.c_int, python=False, errno=True)
_MAP_FAILED = native.c_void_p(-1).value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable

    Writer = Callable[[int, bytes], None]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = native.get_errno()
        raise OSError(errno, f"copyjit: {what}: {os.strerror(errno)}")


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def protect(address: int, size: int, prot: int) -> None:
    _check(_mprotect(address, size, prot), f"mprotect({address:#x}, {size:#x})")


def write_unsynchronized(address: int, data: bytes, final_prot: int) -> None:
    """Write with mprotect from Python. Only safe while no trace exists."""
    start = address - address % PAGE_SIZE
    size = round_up(address + len(data), PAGE_SIZE) - start
    protect(start, size, PROT_READ | PROT_WRITE)
    native.memmove(address, data, len(data))
    protect(start, size, final_prot)


class Arena:
    """First-fit allocator over one reservation of address space."""

    def __init__(self, reserve: int = RESERVE) -> None:
        flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        base = _mmap(None, reserve, PROT_NONE, flags, -1, 0)
        if base in (None, _MAP_FAILED):
            raise MemoryError(f"copyjit: cannot reserve {reserve >> 20} MiB of address space")
        self.base: int = base
        self.end: int = base + reserve
        self.top: int = base  # everything at or above is untouched
        self._free_starts: list[int] = []  # sorted; parallel to _free_sizes
        self._free_sizes: list[int] = []
        self.writer: Writer | None = None  # set once the native writer exists
        self.in_use = 0
        # The GIL protects single list operations, not alloc's and free's
        # sequences of them: threads emit and free concurrently.
        self._lock = _thread.allocate_lock()

    def reserve_pages(self, size: int) -> int:
        """Whole pages at the top, for the runtime's own code and data."""
        if self.top % PAGE_SIZE:
            raise RuntimeError("copyjit: reserve_pages after code was allocated")
        return self._bump(round_up(size, PAGE_SIZE))

    def _bump(self, size: int) -> int:
        if self.top + size > self.end:
            raise MemoryError("copyjit: the code arena is full")
        address = self.top
        self.top += size
        return address

    def alloc(self, size: int) -> int:
        size = round_up(max(size, 1), ALIGNMENT)
        with self._lock:
            address = self._first_fit(size)
            if address is None:
                address = self._bump(size)
            self.in_use += size
            return address

    def _first_fit(self, size: int) -> int | None:
        for i, free in enumerate(self._free_sizes):
            if free >= size:
                address = self._free_starts[i]
                if free == size:
                    del self._free_starts[i], self._free_sizes[i]
                else:
                    self._free_starts[i] += size
                    self._free_sizes[i] -= size
                return address
        return None

    def free(self, address: int, size: int, wait: bool = True) -> bool:
        """Poison and give back the block; without `wait`, only if the
        arena's lock is free now (returns whether it freed)."""
        size = round_up(max(size, 1), ALIGNMENT)
        if not self._lock.acquire(wait):
            return False
        try:
            self._check_allocated(address, size)
            self.write(address, POISON * size)
            self.in_use -= size
            self._insert_free(address, size)
        finally:
            self._lock.release()
        return True

    def _check_allocated(self, address: int, size: int) -> None:
        # bisect.bisect, imported at the first free (not at start-up, where
        # loading even its C module costs ~0.2 ms).
        from _bisect import bisect_right as bisect

        i = bisect(self._free_starts, address)
        before = i and self._free_starts[i - 1] + self._free_sizes[i - 1] > address
        after = i < len(self._free_starts) and self._free_starts[i] < address + size
        if before or after or not self.base <= address < address + size <= self.top:
            raise ValueError(f"copyjit: freeing {address:#x}+{size:#x}, which is not allocated")

    def _insert_free(self, address: int, size: int) -> None:
        from _bisect import bisect_right as bisect  # see _check_allocated

        i = bisect(self._free_starts, address)
        self._free_starts.insert(i, address)
        self._free_sizes.insert(i, size)
        # Coalesce with the following block, then with the preceding one.
        if i + 1 < len(self._free_starts) and address + size == self._free_starts[i + 1]:
            self._free_sizes[i] += self._free_sizes.pop(i + 1)
            del self._free_starts[i + 1]
        if i and self._free_starts[i - 1] + self._free_sizes[i - 1] == address:
            self._free_sizes[i - 1] += self._free_sizes.pop(i)
            del self._free_starts[i]
        if self._free_starts and self._free_starts[-1] + self._free_sizes[-1] == self.top:
            # The last block touches the top: give it back to the bump region.
            self.top = self._free_starts.pop()
            self._free_sizes.pop()

    def write(self, address: int, data: bytes) -> None:
        if not (self.base <= address and address + len(data) <= self.top):
            raise ValueError(f"copyjit: write outside the arena at {address:#x}")
        if self.writer is None:
            raise RuntimeError("copyjit: the arena has no writer yet")
        self.writer(address, data)

    @property
    def free_blocks(self) -> list[tuple[int, int]]:
        return list(zip(self._free_starts, self._free_sizes, strict=False))
