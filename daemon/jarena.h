/* Parse arenas for large JSON trees (cloud state pages).
 *
 * A state page of 1,000 entities parses into ~40,000 small jansson
 * allocations that all die together once the page is applied; through
 * malloc they cost more than the parse itself. jansson has one global pair
 * of allocation functions: ours (set by jarena_init) bump-allocate into the
 * arena slot the calling thread has switched on with jarena_begin, and
 * ignore frees of arena memory (one address range check); everything else
 * goes to malloc and free as before, from any thread.
 *
 * A slot holds one tree: take it, parse into it (begin/end, on one thread),
 * use and free the tree anywhere (frees are no-ops), then release the slot.
 * Nothing of the tree may outlive the release: copy what must stay. A slot
 * that fills up falls back to malloc for the rest of that tree. */
#ifndef GH_JARENA_H
#define GH_JARENA_H

#include <stddef.h>

#define JARENA_SLOTS 4

/* Reserves the address space (no memory until used) and installs the
 * allocation functions. Idempotent; -1 if the reservation failed (then
 * jarena_take always answers -1 and everything uses malloc). */
int jarena_init(void);
/* A free slot, or -1 when none is (parse with malloc then). */
int jarena_take(void);
/* This thread's jansson allocations go to SLOT until jarena_end. */
void jarena_begin(int slot);
void jarena_end(void);
/* The tree parsed into SLOT is gone: the slot is free again. -1 is ignored. */
void jarena_release(int slot);
/* Gives the memory of the free slots back to the system (a released slot
 * keeps what its tree touched, up to 4 MB, for the next page of a pull);
 * any thread, any time; returns the bytes given back. */
size_t jarena_trim(void);
/* Bytes SLOT's tree used (benchmarks, tests). */
size_t jarena_used(int slot);

#endif
