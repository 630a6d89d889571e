/* Parse arenas for jansson (see jarena.h). One reservation of
 * JARENA_SLOTS x SLOT_BYTES of address space; a slot is a bump allocator
 * used by one thread at a time; frees inside the reservation are no-ops. */
#include "jarena.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLOT_BYTES ((size_t)16 << 20) /* a 1,000-entity page uses ~1.5 MB */
#define KEEP_BYTES ((size_t)4 << 20)  /* resident after a release until jarena_trim; the rest goes back */
#define ALIGN 16

typedef struct {
	atomic_int busy;
	size_t used;
	size_t touched; /* the most used since the last jarena_trim: resident */
} slot_t;

static _Atomic(char *) base;
static slot_t slots[JARENA_SLOTS];
static _Thread_local slot_t *cur;
static _Thread_local char *cur_mem;

static void *arena_malloc(size_t n)
{
	slot_t *s = cur;
	if (s) {
		size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
		if (need >= n && s->used + need <= SLOT_BYTES) {
			void *p = cur_mem + s->used;
			s->used += need;
			return p;
		}
	}
	return malloc(n);
}

static void arena_free(void *p)
{
	char *b = atomic_load_explicit(&base, memory_order_relaxed);
	if (b && (char *)p >= b && (char *)p < b + JARENA_SLOTS * SLOT_BYTES)
		return; /* arena memory: goes with its slot */
	free(p);
}

int jarena_init(void)
{
	if (atomic_load(&base))
		return 0;
	void *m = mmap(NULL, JARENA_SLOTS * SLOT_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	atomic_store(&base, (char *)m);
	/* frees of pointers malloc gave before this go to free(): safe at any time */
	json_set_alloc_funcs(arena_malloc, arena_free);
	return 0;
}

int jarena_take(void)
{
	if (!atomic_load(&base))
		return -1;
	for (int i = 0; i < JARENA_SLOTS; i++) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&slots[i].busy, &expect, 1)) {
			slots[i].used = 0;
			return i;
		}
	}
	return -1;
}

void jarena_begin(int slot)
{
	if (slot < 0 || slot >= JARENA_SLOTS)
		return;
	cur = &slots[slot];
	cur_mem = atomic_load(&base) + (size_t)slot * SLOT_BYTES;
}

void jarena_end(void)
{
	cur = NULL;
	cur_mem = NULL;
}

void jarena_release(int slot)
{
	if (slot < 0 || slot >= JARENA_SLOTS)
		return;
	slot_t *s = &slots[slot];
	if (s->used > KEEP_BYTES) /* an unusually large tree: its memory back */
		madvise(atomic_load(&base) + (size_t)slot * SLOT_BYTES + KEEP_BYTES, s->used - KEEP_BYTES,
			MADV_DONTNEED);
	size_t kept = s->used < KEEP_BYTES ? s->used : KEEP_BYTES;
	if (kept > s->touched)
		s->touched = kept;
	s->used = 0;
	atomic_store(&s->busy, 0);
}

size_t jarena_trim(void)
{
	char *b = atomic_load(&base);
	size_t freed = 0;
	if (!b)
		return 0;
	for (int i = 0; i < JARENA_SLOTS; i++) {
		int expect = 0;
		if (!atomic_compare_exchange_strong(&slots[i].busy, &expect, 1))
			continue; /* in use: next time */
		if (slots[i].touched) {
			size_t n = (slots[i].touched + 4095) & ~(size_t)4095;
			madvise(b + (size_t)i * SLOT_BYTES, n, MADV_DONTNEED);
			freed += n;
			slots[i].touched = 0;
		}
		atomic_store(&slots[i].busy, 0);
	}
	return freed;
}

size_t jarena_used(int slot) { return slot >= 0 && slot < JARENA_SLOTS ? slots[slot].used : 0; }
