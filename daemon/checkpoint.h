/* WAL checkpoints off the event loop: the loop's connection never runs one
 * (wal_autocheckpoint 0), a thread with its own connection runs a PASSIVE
 * checkpoint every second, so the fsync of the database file never stalls
 * a door decision or an event ack. */
#ifndef GH_CHECKPOINT_H
#define GH_CHECKPOINT_H

typedef struct ckpt ckpt_t;

/* Starts the checkpointer on the database at PATH; NULL on failure (logged). */
ckpt_t *ckpt_start(const char *path, unsigned interval_ms);
/* Stops the thread (after one last checkpoint) and frees it. */
void ckpt_stop(ckpt_t *c);

/* 1 while the WAL is long (4 MB): commits came while every checkpoint ran
 * (hundreds of decisions a second), so the WAL never restarted (a write
 * transaction restarts it only when it begins with every frame copied).
 * The loop then holds the commits nobody waits for, kicks a checkpoint,
 * waits until ckpt_caught_up, and the next write transaction restarts
 * the WAL. */
int ckpt_lagging(const ckpt_t *c);
/* The WAL's size in frames at the last checkpoint. */
int ckpt_wal_frames(const ckpt_t *c);
/* The loop restarted the WAL (store_wal_restart): no frames left. */
void ckpt_wal_restarted(ckpt_t *c);
/* Runs a checkpoint now; returns its generation for ckpt_caught_up. */
unsigned ckpt_kick(ckpt_t *c);
/* 1 once a checkpoint begun after kick GEN copied every frame. */
int ckpt_caught_up(const ckpt_t *c, unsigned gen);

#endif
