#include "checkpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

struct ckpt {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	unsigned interval_ms;
	unsigned failures;
	int kicked;
	unsigned kick_gen;      /* under mu */
	atomic_uint caught_gen; /* the last kick after which every frame was copied */
	atomic_int lagging;
	atomic_int frames;
	sqlite3 *db;
};

/* WAL frames (about 4 MB) left behind by a checkpoint that make it lag */
#define LAG_FRAMES 1000

int ckpt_lagging(const ckpt_t *c) { return c ? atomic_load(&c->lagging) : 0; }

int ckpt_wal_frames(const ckpt_t *c) { return c ? atomic_load(&c->frames) : 0; }

void ckpt_wal_restarted(ckpt_t *c)
{
	if (c)
		atomic_store(&c->frames, 0);
}

unsigned ckpt_kick(ckpt_t *c)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	c->kicked = 1;
	unsigned gen = ++c->kick_gen;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return gen;
}

int ckpt_caught_up(const ckpt_t *c, unsigned gen) { return !c || (int)(atomic_load(&c->caught_gen) - gen) >= 0; }

static void *run(void *arg)
{
	ckpt_t *c = arg;
	pthread_setname_np(pthread_self(), "gh-checkpoint"); /* top -H, /proc/PID/task/TID/comm */
	pthread_mutex_lock(&c->mu);
	for (;;) {
		/* monotonic: a wall clock set back by an hour must not stop
		 * checkpoints (and let the WAL grow) for that hour */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		unsigned wait_ms = c->interval_ms; /* or at once when kicked */
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!c->stop && !c->kicked && pthread_cond_timedwait(&c->cv, &c->mu, &until) != ETIMEDOUT)
			;
		c->kicked = 0;
		unsigned gen = c->kick_gen;
		int stop = c->stop;
		pthread_mutex_unlock(&c->mu);
		int frames = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
		if (rc == SQLITE_OK && frames < 0) {
			/* this connection runs no statements, so its pager has not
			 * opened the WAL yet and the checkpoint did nothing (-1
			 * frames; the WAL grew without bound, tests/soak): one read
			 * opens it, then checkpoint */
			sqlite3_exec(c->db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
			rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
		}
		if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
			/* a full disk fails every second: one line a minute */
			if (c->failures++ % 60 == 0)
				log_warn("store", "checkpoint: %s", sqlite3_errmsg(c->db));
		} else if (rc == SQLITE_OK) {
			c->failures = 0;
		}
		if (rc == SQLITE_OK) {
			/* a long WAL is one not restarted for a while: commits came
			 * while every checkpoint ran (the loop then holds them) */
			atomic_store(&c->frames, frames);
			atomic_store(&c->lagging, frames >= LAG_FRAMES);
			if (done >= frames)
				atomic_store(&c->caught_gen, gen);
		}
		if (rc == SQLITE_OK && frames > 0)
			log_debug("store", "checkpoint: %d of %d WAL frames", done, frames);
		pthread_mutex_lock(&c->mu);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

ckpt_t *ckpt_start(const char *path, unsigned interval_ms)
{
	ckpt_t *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->interval_ms = interval_ms ? interval_ms : 1000;
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_err("store", "checkpointer: cannot open %s", path);
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, 200);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&c->thread, NULL, run, c)) {
		log_err("store", "checkpointer: cannot start its thread");
		sqlite3_close(c->db);
		free(c);
		return NULL;
	}
	return c;
}

void ckpt_stop(ckpt_t *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	sqlite3_close(c->db);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
