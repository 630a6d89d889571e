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

#endif
