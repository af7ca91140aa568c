"""glibc's allocator told to keep what a job frees for its next allocation of the same size.

By default glibc serves every block above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh
mmap and gives it back to the kernel on free, and trims the heap's top above 128 KiB. A training step frees
and reallocates the same activations and gradients (the 113 MB embedding gradient, logits, MLP activations)
every micro-batch, so the kernel zero-fills those pages again each time: a full fine-tuning job of the
default spent 16 s of its 76 s in the kernel (`time`: sys). With blocks kept in the heap the same job spends
6 s there; what is computed is unchanged, bit for bit (allocation only). benchmarks/malloc.py measures it.

Written by hand: glibc's mallopt(3) through ctypes. On a C library without mallopt (musl, macOS) it does
nothing: only speed differs.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
KEEP = 2**31 - 1  # mallopt takes an int: 2 GiB, above any one tensor of a 135M model's step


def keep_freed_memory() -> bool:
    """Large blocks from the heap, not from mmap, and a freed heap top kept, not trimmed. True when applied."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, KEEP) == 1 for option in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD))
