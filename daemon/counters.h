/* Process-wide counters since start, for /metrics (Prometheus counters:
 * they restart at 0 with the daemon). Atomic: bumped on the loop thread
 * today, read by whoever renders them. */
#ifndef GH_COUNTERS_H
#define GH_COUNTERS_H

#include <stdatomic.h>

typedef struct gh_counters {
	atomic_ullong decisions_granted; /* door decisions written as success */
	atomic_ullong decisions_denied;  /* ... as failed */
	atomic_ullong events_in;         /* device events stored (first time) */
	atomic_ullong events_dup;        /* device events seen again (acked, not stored) */
	atomic_ullong mqtt_requests;     /* device requests answered (access.check, call.route, sync.pull) */
} gh_counters_t;

extern gh_counters_t gh_counters;

#define GH_COUNT(field) atomic_fetch_add_explicit(&gh_counters.field, 1, memory_order_relaxed)
#define GH_COUNTER(field) ((unsigned long long)atomic_load_explicit(&gh_counters.field, memory_order_relaxed))

#endif
