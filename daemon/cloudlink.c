/* The cloud link (CLOUD.md). libcurl multi in the libuv loop: curl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION -> uv_poll) and when to
 * time out (CURLMOPT_TIMERFUNCTION -> uv_timer); we hand the events back
 * with curl_multi_socket_action. Nothing here blocks.
 *
 * Two channels:
 *   sync     one request at a time: state pull (until "more" is false) ->
 *            local changes push -> outbox drain -> heartbeat when due;
 *   commands the long poll, then the command results to report.
 * Every failure (transport, TLS, timeout, 5xx, 429) sets the WAN down and
 * backs the channel off (1 s doubling to 5 min, with jitter, at least the
 * server's Retry-After). Other 4xx are logged with their body and retried
 * only after the longest backoff. */
#include "cloudlink.h"

#include <curl/curl.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bulk.h"
#include "entity.h"
#include "jarena.h"
#include "jutil.h"
#include "log.h"
#include "timeutil.h"

#define PAGE_LIMIT 1000
#define EVENTS_BATCH 500
#define CHANGES_BATCH 100
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 300000
#define SYNC_EVERY_MS 60000
#define HEARTBEAT_EVERY_MS 60000
#define RESP_MAX (64u << 20)
#define LONGPOLL_WAIT_S 25

typedef enum { R_STATE, R_CHANGES, R_EVENTS, R_HEARTBEAT, R_COMMANDS, R_RESULT } rkind_t;
enum { CH_SYNC, CH_CMD, CH_RESULT, CH__COUNT };

typedef struct channel {
	int busy;
	int backoff_ms;
	uint64_t next_ms;
} channel_t;

typedef struct creq {
	struct creq *next;
	cloudlink_t *c;
	rkind_t kind;
	int ch;
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	char *resp;
	size_t len, cap;
	long retry_after_s;
	unsigned epoch;   /* state pulls: a page fetched ahead is dropped if its epoch passed */
	json_t *ctx;      /* what the request carried, for its answer */
	char what[48];    /* for logs: "GET /state" */
	char err[CURL_ERROR_SIZE];
	/* state pages from the puller thread: the transfer's outcome, the
	 * tree parsed there (into arena SLOT) or why it did not parse, and
	 * whether the puller went on with the next page */
	int from_puller, chained, slot;
	CURLcode res;
	long status;
	json_t *parsed;
	char perr[160];
	/* ... and its changes' field checks done there too (ent_prepare), one
	 * per change: their JSON in PBUF, or why they are refused */
	struct prep {
		int state; /* 0 not prepared, 1 prepared (PBUF+OFF, LEN), 2 refused (WHY) */
		size_t off, len;
		char *why;
	} *prep;
	size_t nprep;
	char *pbuf;
	size_t plen, pcap;
} creq_t;

/* State pulls run on a thread of their own (see "state pulls" below). */
#define PULL_AHEAD 2 /* pages fetched and parsed ahead of the one applied */

typedef struct puller {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uv_async_t async;
	int started;
	/* under mu */
	char path[900];  /* the next request, if have_job */
	int have_job, stop;
	unsigned epoch;  /* the chain the loop wants: other pages are dropped */
	creq_t *done, **done_tail;
	int ndone;
	creq_t *trash;   /* applied pages: their trees are freed here, not in the loop */
	/* read without the lock by the transfer's progress callback */
	atomic_uint cur_epoch;
	atomic_int astop;
	/* the puller thread's own */
	char *buf;
	size_t buf_cap;
} puller_t;

typedef struct sockctx {
	uv_poll_t poll;
	curl_socket_t fd;
	cloudlink_t *c;
	struct sockctx *next, *prev;
} sockctx_t;

struct cloudlink {
	uv_loop_t *loop;
	store_t *st;
	char *spare;      /* the last large response buffer, for the next one: */
	size_t spare_cap; /* freeing one per page consolidated malloc's fast bins */
	ctl_env_t env;
	CURLM *multi;
	uv_timer_t curl_timer;
	uv_timer_t retry_timer; /* wakes the schedule when a backoff ends */
	char base[700];
	char auth[600];
	char ca_file[4096], pin[160];
	int insecure, standalone;
	long outbox_max;
	int backoff_min, backoff_max;
	char wan[16];
	cloud_wan_fn wan_cb;
	void *wan_ctx;
	cloud_gate_fn gate;
	void *gate_ctx;
	uv_timer_t hold_timer; /* a state page held by the gate */
	creq_t *held;
	uint64_t bulk_next_ms; /* end_bulk's next try after a failure */
	int bulk_retry_ms;
	channel_t ch[CH__COUNT];
	creq_t *inflight;
	sockctx_t *socks;
	/* sync state */
	int want_pull, want_push, want_drain;
	uint64_t next_sync_ms, next_hb_ms;
	char snap_cursor[512];
	int resync;          /* 410: start over from a full snapshot */
	unsigned pull_epoch; /* moves on with each new pull and when a page fails: pages fetched ahead are dropped */
	int pulling;         /* a chain of state pages is under way (pull_submit .. its last page or pull_cancel) */
	puller_t pl;
	char last_error[256];
	int64_t sent, rejected;
	unsigned ticks;
	int stopping, closing;
};

static void pump(cloudlink_t *c);

/* ---- WAN state and backoff ---- */

static void set_wan(cloudlink_t *c, const char *wan)
{
	if (!strcmp(c->wan, wan))
		return;
	int was_down = !strcmp(c->wan, "down");
	log_info("cloud", "WAN %s -> %s", c->wan, wan);
	snprintf(c->wan, sizeof c->wan, "%s", wan);
	if (!strcmp(wan, "up") && was_down)
		c->want_pull = 1; /* after every reconnect */
	if (c->wan_cb)
		c->wan_cb(c->wan_ctx, c->wan);
}

static void on_retry(uv_timer_t *t) { pump(t->data); }

static void backoff(cloudlink_t *c, int ch, long retry_after_s, int longest)
{
	channel_t *k = &c->ch[ch];
	int b = longest ? c->backoff_max : k->backoff_ms ? k->backoff_ms : c->backoff_min;
	/* jitter: somewhere in [b/2, 3b/2), so boxes do not retry in step */
	uint32_t rnd = 0;
	if (RAND_bytes((unsigned char *)&rnd, sizeof rnd) != 1)
		rnd = (uint32_t)gh_mono_ms();
	uint64_t wait = (uint64_t)b / 2 + rnd % (uint64_t)b;
	if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > wait)
		wait = (uint64_t)retry_after_s * 1000;
	k->next_ms = gh_mono_ms() + wait;
	k->backoff_ms = b * 2 > c->backoff_max ? c->backoff_max : b * 2;
	/* wake up when the earliest backoff ends */
	uint64_t now = gh_mono_ms(), first = 0;
	for (int i = 0; i < CH__COUNT; i++)
		if (c->ch[i].next_ms > now && (!first || c->ch[i].next_ms < first))
			first = c->ch[i].next_ms;
	if (first)
		uv_timer_start(&c->retry_timer, on_retry, first - now, 0);
}

static void ok_channel(cloudlink_t *c, int ch)
{
	c->ch[ch].backoff_ms = 0;
	c->ch[ch].next_ms = 0;
}

/* ---- curl in the loop ---- */

static void check_done(cloudlink_t *c);

static void sock_closed(uv_handle_t *h) { free(h->data); }

static void on_sock(uv_poll_t *p, int status, int events)
{
	sockctx_t *sc = p->data;
	int flags = 0, running = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	cloudlink_t *c = sc->c;
	curl_multi_socket_action(c->multi, sc->fd, flags, &running);
	check_done(c);
}

static void sock_forget(cloudlink_t *c, sockctx_t *sc)
{
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		c->socks = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	uv_poll_stop(&sc->poll);
	uv_close((uv_handle_t *)&sc->poll, sock_closed);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	cloudlink_t *c = userp;
	sockctx_t *sc = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			sock_forget(c, sc);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = calloc(1, sizeof *sc);
		if (!sc)
			return -1;
		sc->fd = s;
		sc->c = c;
		if (uv_poll_init_socket(c->loop, &sc->poll, s)) {
			free(sc);
			return -1;
		}
		sc->poll.data = sc;
		sc->next = c->socks;
		if (c->socks)
			c->socks->prev = sc;
		c->socks = sc;
		curl_multi_assign(c->multi, s, sc);
	}
	int ev = 0;
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&sc->poll, ev, on_sock);
	return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
	cloudlink_t *c = t->data;
	int running = 0;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	(void)m;
	cloudlink_t *c = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&c->curl_timer);
	else /* never call back into curl from inside its own callback */
		uv_timer_start(&c->curl_timer, on_curl_timer, timeout_ms ? (uint64_t)timeout_ms : 1, 0);
	return 0;
}

/* *BUF (*CAP bytes) grown to hold NEED, doubling from FIRST: 0, -1 out of memory. */
static int buf_grow(char **buf, size_t *cap, size_t need, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : first;
	while (c < need)
		c *= 2;
	char *b = realloc(*buf, c);
	if (!b)
		return -1;
	*buf = b;
	*cap = c;
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userp)
{
	creq_t *r = userp;
	size_t add = size * n;
	if (r->len + add + 1 > RESP_MAX)
		return 0; /* too large: the transfer fails */
	if (!r->resp && !r->from_puller && r->c->spare) { /* the spare is the loop's */
		r->resp = r->c->spare;
		r->cap = r->c->spare_cap;
		r->c->spare = NULL;
	}
	if (buf_grow(&r->resp, &r->cap, r->len + add + 1, 16384))
		return 0;
	memcpy(r->resp + r->len, p, add);
	r->len += add;
	r->resp[r->len] = '\0';
	return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
	creq_t *r = userp;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		char v[32];
		size_t k = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
		memcpy(v, p + 12, k);
		v[k] = '\0';
		long s = strtol(v, NULL, 10); /* seconds; an HTTP date counts as 0 */
		r->retry_after_s = s > 0 && s < 86400 ? s : 0;
	}
	return len;
}

/* A state page's field checks (prepare_page). */
static void prep_free(creq_t *r)
{
	for (size_t i = 0; i < r->nprep; i++)
		free(r->prep[i].why);
	free(r->prep);
	free(r->pbuf);
	r->prep = NULL;
	r->pbuf = NULL;
	r->nprep = r->plen = r->pcap = 0;
}

static void req_free(creq_t *r)
{
	if (r->h)
		curl_easy_cleanup(r->h);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	if (r->resp && !r->c->spare && r->cap >= 65536 && r->cap <= 4u << 20) {
		r->c->spare = r->resp;
		r->c->spare_cap = r->cap;
	} else {
		free(r->resp);
	}
	json_decref(r->ctx);
	prep_free(r);
	free(r);
}

/* The options of a request to METHOD PATH (under the site's base URL) with
 * BODY (may be NULL) on easy handle H, answers into R. */
static void req_setopt(cloudlink_t *c, creq_t *r, CURL *h, const char *method, const char *path, const char *body,
		       long timeout_ms)
{
	const char *q = strchr(path, '?');
	snprintf(r->what, sizeof r->what, "%s %.*s", method, (int)(q ? q - path : (long)strlen(path)), path);
	char url[1600];
	snprintf(url, sizeof url, "%s%s", c->base, path);
	r->hdrs = curl_slist_append(r->hdrs, c->auth);
	r->hdrs = curl_slist_append(r->hdrs, "Accept: application/json");
	if (body)
		r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
	r->hdrs = curl_slist_append(r->hdrs, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PRIVATE, r);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->insecure ? "https,http" : "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->pin[0])
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, c->pin);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "gatehoused/" GH_VERSION);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
	}
}

/* Starts METHOD PATH (under the site's base URL) with BODY (taken over, may
 * be NULL) on channel CH. */
static creq_t *req_start(cloudlink_t *c, rkind_t kind, int ch, const char *method, const char *path, char *body,
			 long timeout_ms)
{
	creq_t *r = calloc(1, sizeof *r);
	if (!r) {
		free(body);
		return NULL;
	}
	r->c = c;
	r->kind = kind;
	r->ch = ch;
	r->body = body;
	r->slot = -1;
	r->h = curl_easy_init();
	if (!r->h) {
		req_free(r);
		return NULL;
	}
	req_setopt(c, r, r->h, method, path, body, timeout_ms);
	if (curl_multi_add_handle(c->multi, r->h) != CURLM_OK) {
		req_free(r);
		return NULL;
	}
	r->next = c->inflight;
	c->inflight = r;
	c->ch[ch].busy = 1;
	return r;
}

/* ---- small helpers ---- */

static int64_t kv_int(store_t *st, const char *key)
{
	char buf[64];
	return store_kv_get(st, key, buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : 0;
}

static void kv_int_set(store_t *st, const char *key, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)v);
	store_kv_set(st, key, buf);
}

static int64_t count_of(store_t *st, const char *sql)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int64_t n = -1;
	if (s && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	if (s)
		sqlite3_reset(s);
	return n;
}

/* JSON string escaping into a growing buffer (events are built by hand:
 * their data is stored as JSON text already). */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_jstr(sbuf_t *b, const char *s)
{
	if (!s) {
		sb_str(b, "null");
		return;
	}
	sb_add(b, "\"", 1);
	const char *run = s;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		sb_add(b, run, (size_t)((const char *)p - run));
		char esc[8];
		snprintf(esc, sizeof esc, "\\u%04x", *p);
		sb_str(b, esc);
		run = (const char *)p + 1;
	}
	sb_str(b, run);
	sb_add(b, "\"", 1);
}

__attribute__((format(printf, 3, 4))) static void bad_answer(cloudlink_t *c, creq_t *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[200];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->last_error, sizeof c->last_error, "%s: %s", r->what, msg);
	log_err("cloud", "%s: bad answer from the cloud: %s", r->what, msg);
}

/* ---- state pulls on a thread of their own ----
 * A first snapshot is a thousand pages or more: receiving them (TLS, the
 * kernel) and parsing them (jansson) was a third of the loop's time while
 * they were applied. The puller thread does both, blocking, with an easy
 * handle of its own (kept alive between pages), and keeps up to PULL_AHEAD
 * pages ready while the loop applies the one before: a page that says
 * "more" is followed at once by the request the loop would make next. The
 * loop only applies, one page per wake-up so devices are answered between
 * pages. Every pull the loop starts (pull_submit) and every page it does not
 * want the rest after (pull_cancel) moves the epoch on: pages of an older
 * chain are dropped, a transfer of one is aborted. */

static void finish(cloudlink_t *c, creq_t *r, CURLcode res, long status);

static void state_path(char *buf, size_t len, int64_t since, const char *cursor)
{
	if (cursor && *cursor) {
		char *esc = curl_easy_escape(NULL, cursor, 0);
		snprintf(buf, len, "/state?since=0&limit=%d&cursor=%s", PAGE_LIMIT, esc ? esc : "");
		curl_free(esc);
	} else {
		snprintf(buf, len, "/state?since=%lld&limit=%d", (long long)since, PAGE_LIMIT);
	}
}

/* A puller request, on either thread (never through req_free: the loop's
 * spare buffer is not the puller's to touch). */
static void pull_free(creq_t *r)
{
	if (!r)
		return;
	json_decref(r->parsed);
	jarena_release(r->slot);
	curl_slist_free_all(r->hdrs);
	free(r->resp);
	prep_free(r);
	free(r);
}

/* DATA's compact JSON at the end of R's PBUF: its length, 0 if out of memory. */
static size_t pbuf_dump(creq_t *r, const json_t *data)
{
	for (;;) {
		size_t room = r->pcap - r->plen;
		size_t n = json_dumpb(data, r->pbuf ? r->pbuf + r->plen : NULL, room, JSON_COMPACT);
		if (!n || n <= room)
			return n;
		if (buf_grow(&r->pbuf, &r->pcap, r->plen + n, 256u << 10))
			return 0;
	}
}

/* On the puller thread, the state page just parsed (into its arena slot):
 * the field checks of its upserts and their JSON (ent_prepare), so the loop
 * is left with what needs the database (a fifth of its work). A change the
 * loop would refuse as malformed is left to it. */
static void prepare_page(creq_t *r, json_t *page)
{
	json_t *changes = json_object_get(page, "changes");
	size_t n = json_array_size(changes), i;
	json_t *ch;
	if (!n || !(r->prep = calloc(n, sizeof *r->prep)))
		return;
	r->nprep = n;
	json_array_foreach(changes, i, ch) {
		const char *entity = json_string_value(json_object_get(ch, "entity"));
		const char *op = json_string_value(json_object_get(ch, "op"));
		const char *id = json_string_value(json_object_get(ch, "id"));
		json_t *data = json_object_get(ch, "data");
		int e = entity ? ent_parse(entity) : -1;
		if (e < 0 || !op || strcmp(op, "upsert") || !id || !json_is_object(data) ||
		    !json_is_integer(json_object_get(ch, "seq")))
			continue;
		gh_err_t err = { 0 };
		int rc = ent_prepare((ent_t)e, id, data, &err);
		size_t len = rc > 0 ? pbuf_dump(r, data) : 0;
		if (len) { /* (not dumped, out of memory: the loop does it all) */
			r->prep[i] = (struct prep){ .state = 1, .off = r->plen, .len = len };
			r->plen += len;
		} else if (rc < 0) {
			char msg[300];
			snprintf(msg, sizeof msg, "%.60s%s%.200s", err.field[0] ? err.field : "",
				 err.field[0] ? ": " : "", err.message);
			r->prep[i] = (struct prep){ .state = 2, .why = strdup(msg) };
			if (!r->prep[i].why)
				r->prep[i].state = 0;
		}
	}
}

static int pull_progress(void *userp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	creq_t *r = userp;
	puller_t *p = &r->c->pl;
	return atomic_load(&p->astop) || atomic_load(&p->cur_epoch) != r->epoch; /* non-zero aborts */
}

/* GET PATH, blocking, then the answer's tree when it is a 2xx JSON object;
 * *NEXT gets the page that follows when the page says "more". */
static creq_t *pull_fetch(cloudlink_t *c, CURL *h, const char *path, unsigned epoch, char *next, size_t next_len)
{
	puller_t *p = &c->pl;
	next[0] = '\0';
	creq_t *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->c = c;
	r->kind = R_STATE;
	r->ch = CH_SYNC;
	r->epoch = epoch;
	r->from_puller = 1;
	r->slot = -1;
	r->resp = p->buf; /* the thread's buffer, while the page is only parsed */
	r->cap = p->buf_cap;
	p->buf = NULL;
	p->buf_cap = 0;
	curl_easy_reset(h);
	req_setopt(c, r, h, "GET", path, NULL, 30000);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, pull_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
	r->res = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->res != CURLE_OK || r->status < 200 || r->status >= 300 || !r->resp)
		return r; /* the body stays for the loop's log */
	json_error_t je;
	r->slot = jarena_take();
	jarena_begin(r->slot);
	r->parsed = json_loadb(r->resp, r->len, 0, &je);
	if (r->parsed)
		prepare_page(r, r->parsed);
	jarena_end();
	if (!r->parsed) {
		snprintf(r->perr, sizeof r->perr, "%s", je.text);
		return r;
	}
	/* parsed: the body is not needed any more */
	if (r->cap <= (4u << 20)) {
		p->buf = r->resp;
		p->buf_cap = r->cap;
		r->resp = NULL;
		r->len = r->cap = 0;
	}
	json_t *rev = json_object_get(r->parsed, "rev");
	const char *cursor = json_string_value(json_object_get(r->parsed, "snapshot_cursor"));
	if (json_is_object(r->parsed) && json_is_true(json_object_get(r->parsed, "more")) && json_is_integer(rev) &&
	    json_integer_value(rev) >= 0 && ((cursor && *cursor) || json_integer_value(rev) > 0))
		state_path(next, next_len, json_integer_value(rev), cursor);
	return r;
}

static void *pull_main(void *arg)
{
	cloudlink_t *c = arg;
	pthread_setname_np(pthread_self(), "gh-cloud-pull");
	puller_t *p = &c->pl;
	CURL *h = curl_easy_init();
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		if (p->trash) {
			creq_t *t = p->trash;
			p->trash = NULL;
			pthread_mutex_unlock(&p->mu);
			while (t) {
				creq_t *n = t->next;
				pull_free(t);
				t = n;
			}
			pthread_mutex_lock(&p->mu);
			continue;
		}
		if (!p->have_job || p->ndone >= PULL_AHEAD) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		char path[sizeof p->path], next[sizeof p->path];
		memcpy(path, p->path, sizeof path);
		unsigned epoch = p->epoch;
		p->have_job = 0;
		pthread_mutex_unlock(&p->mu);
		creq_t *r = h ? pull_fetch(c, h, path, epoch, next, sizeof next) : NULL;
		pthread_mutex_lock(&p->mu);
		if (!r) { /* out of memory: the loop hears of it as a failed transfer */
			if (!h)
				h = curl_easy_init();
			continue;
		}
		if (p->stop || epoch != p->epoch) {
			pull_free(r); /* a chain the loop does not want any more */
			continue;
		}
		if (next[0]) {
			memcpy(p->path, next, sizeof p->path);
			p->have_job = 1;
			r->chained = 1;
		}
		*p->done_tail = r;
		p->done_tail = &r->next;
		p->ndone++;
		uv_async_send(&p->async);
	}
	pthread_mutex_unlock(&p->mu);
	if (h)
		curl_easy_cleanup(h);
	free(p->buf);
	p->buf = NULL;
	return NULL;
}

/* Drops the pages queued for the loop; with P's lock held. */
static void pull_drop_done(puller_t *p)
{
	while (p->done) {
		creq_t *r = p->done;
		p->done = r->next;
		pull_free(r);
	}
	p->done_tail = &p->done;
	p->ndone = 0;
	pthread_cond_signal(&p->cv);
}

/* An applied page: the puller frees its tree (4 % of a snapshot's time in
 * the loop). */
static void pull_trash(cloudlink_t *c, creq_t *r)
{
	puller_t *p = &c->pl;
	if (!r)
		return;
	if (!p->started || c->stopping) {
		pull_free(r);
		return;
	}
	pthread_mutex_lock(&p->mu);
	r->next = p->trash;
	p->trash = r;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* The chain of pages is not wanted any more (a page failed, a new pull). */
static void pull_cancel(cloudlink_t *c)
{
	puller_t *p = &c->pl;
	c->pull_epoch++;
	c->ch[CH_SYNC].busy = 0;
	c->pulling = 0;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mu);
	p->epoch = c->pull_epoch;
	atomic_store(&p->cur_epoch, p->epoch);
	p->have_job = 0;
	pull_drop_done(p);
	pthread_mutex_unlock(&p->mu);
}

static void pulled(cloudlink_t *c);
static void on_pulled(uv_async_t *a) { pulled(a->data); }
static void on_hold(uv_timer_t *t) { pulled(t->data); }

/* R waits while the checkpointer catches up (the WAL gate): 1 held. */
static int held_for_checkpoint(cloudlink_t *c, creq_t *r)
{
	if (r->epoch != c->pull_epoch || !c->gate || !c->gate(c->gate_ctx))
		return 0;
	c->held = r;
	uv_timer_start(&c->hold_timer, on_hold, 5, 0);
	return 1;
}

/* A page the puller made: applied (unless its pull was given up), the
 * chain stopped if the loop stopped it, the tree handed back. */
static void apply_pulled(cloudlink_t *c, creq_t *r)
{
	if (r->epoch == c->pull_epoch) {
		finish(c, r, r->res, r->status);
		if (!c->ch[CH_SYNC].busy)
			c->pulling = 0; /* failed or done: no page follows */
		if (r->chained && !c->ch[CH_SYNC].busy)
			pull_cancel(c); /* the pages after it are not wanted */
	}
	pull_trash(c, r);
}

/* One page per wake-up (the rest of the loop runs in between): a page held
 * for the checkpointer first, else the next in the puller's queue. */
static void pulled(cloudlink_t *c)
{
	puller_t *p = &c->pl;
	creq_t *r = c->held;
	int more = 1; /* after a held page: those that came meanwhile */
	c->held = NULL;
	if (r && (c->stopping || r->epoch != c->pull_epoch)) {
		pull_free(r);
		r = NULL;
	}
	if (!r) {
		if (uv_is_active((uv_handle_t *)&c->hold_timer))
			return; /* woken while a page is held: it goes first */
		pthread_mutex_lock(&p->mu);
		r = p->done;
		if (r) {
			p->done = r->next;
			if (!p->done)
				p->done_tail = &p->done;
			p->ndone--;
			pthread_cond_signal(&p->cv); /* room for one more ahead */
		}
		more = p->done != NULL;
		pthread_mutex_unlock(&p->mu);
		if (!r || c->stopping) {
			pull_free(r);
			return;
		}
	}
	if (held_for_checkpoint(c, r))
		return;
	apply_pulled(c, r);
	if (more)
		uv_async_send(&p->async);
	pump(c);
}

/* Starts a chain of state pages at PATH on the puller thread. */
static int pull_submit(cloudlink_t *c, const char *path)
{
	puller_t *p = &c->pl;
	if (c->standalone || c->stopping)
		return -1;
	if (!p->started) {
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		p->done_tail = &p->done;
		if (pthread_create(&p->th, NULL, pull_main, c)) {
			log_err("cloud", "cannot start the state puller thread");
			pthread_cond_destroy(&p->cv);
			pthread_mutex_destroy(&p->mu);
			return -1;
		}
		p->started = 1;
	}
	pull_cancel(c); /* whatever came before */
	pthread_mutex_lock(&p->mu);
	snprintf(p->path, sizeof p->path, "%s", path);
	p->have_job = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	c->ch[CH_SYNC].busy = 1;
	c->pulling = 1;
	return 0;
}

static void pull_stop(cloudlink_t *c)
{
	puller_t *p = &c->pl;
	if (!p->started)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	atomic_store(&p->astop, 1);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pull_drop_done(p);
	while (p->trash) {
		creq_t *t = p->trash;
		p->trash = t->next;
		pull_free(t);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	p->started = 0;
}

/* ---- state pull ---- */

static const ent_ctx_t cloud_ctx = { .actor = "cloud" };

static void cloud_change_failed(cloudlink_t *c, int64_t seq, const char *entity, const char *id, const json_t *data,
				const char *error)
{
	log_err("cloud", "cloud change %lld (%s %s) not applied: %s", (long long)seq, entity, id, error);
	sqlite3_stmt *s = store_stmt(c->st, "INSERT INTO conflicts(change_id, entity, eid, local, cloud, error, ts) "
					    "VALUES (?, ?, ?, NULL, ?, ?, ?)");
	if (!s)
		return;
	char cid[40];
	snprintf(cid, sizeof cid, "cloud:%lld", (long long)seq);
	char *d = data ? jdump(data) : NULL;
	sqlite3_bind_text(s, 1, cid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, d, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, gh_now());
	sqlite3_step(s);
	sqlite3_reset(s);
	free(d);
}

/* No entity of a kind a snapshot sweeps is stored (a fresh box). */
static int box_empty(cloudlink_t *c)
{
	for (int e = 0; e < ENT__COUNT; e++)
		if (e != ENT_SETTINGS && ent_any(c->st, (ent_t)e) != 0)
			return 0;
	return 1;
}

/* The message a refused change is kept with (conflicts) */
static void refusal(char *msg, size_t len, const gh_err_t *err)
{
	snprintf(msg, len, "%.60s%s%.200s", err->field[0] ? err->field : "", err->field[0] ? ": " : "", err->message);
}

static void bulk_refused(void *ctx, ent_t e, const char *id, int64_t rev, const char *data, const gh_err_t *err)
{
	char msg[300];
	refusal(msg, sizeof msg, err);
	json_t *d = json_loads(data, 0, NULL);
	cloud_change_failed(ctx, rev, ent_name(e), id, d, msg);
	json_decref(d);
}

/* A bulk load (bulk.h) whose snapshot did not come to its end (it failed,
 * the daemon stopped): the box is not left without its lookup index. The
 * sort blocks the loop for a second or two: a failure is tried again after
 * BULK_RETRY_MS, doubled up to 10 minutes. */
#define BULK_RETRY_MS 10000

static void end_bulk(cloudlink_t *c)
{
	gh_err_t err = { 0 };
	if (gh_mono_ms() < c->bulk_next_ms)
		return;
	if (store_begin(c->st) == 0) {
		if (bulk_end(c->st, bulk_refused, c, &err) == 0) {
			if (store_commit(c->st) == 0) {
				c->bulk_retry_ms = 0;
				return;
			}
			snprintf(err.message, sizeof err.message, "its commit failed");
		} else {
			store_rollback(c->st); /* store_bulk is 1 again */
		}
	} else {
		snprintf(err.message, sizeof err.message, "the database is busy");
	}
	c->bulk_retry_ms = c->bulk_retry_ms ? c->bulk_retry_ms * 2 : BULK_RETRY_MS;
	if (c->bulk_retry_ms > 600000)
		c->bulk_retry_ms = 600000;
	c->bulk_next_ms = gh_mono_ms() + (uint64_t)c->bulk_retry_ms;
	log_err("cloud", "building the credentials' lookup index: %s (tried again in %d s)", err.message,
		c->bulk_retry_ms / 1000);
}

static int start_pull_at(cloudlink_t *c, int64_t since, const char *cursor)
{
	char path[900];
	state_path(path, sizeof path, since, cursor);
	int64_t lrev0 = kv_int(c->st, "cloud_snap_lrev0");
	if (!(cursor && *cursor) && since == 0 && lrev0 <= 0) {
		/* a full snapshot: what it does not contain goes at its end;
		 * -1: the box had no entity when it began (a first pairing):
		 * nothing to sweep (the sweep reads every table: 0.6 s at 1.28M
		 * entities). A snapshot started again keeps the first start's
		 * mark, or takes one now if the first began on an empty box
		 * (what that one wrote and the cloud has deleted since goes). */
		int64_t l = store_lrev(c->st);
		int empty = box_empty(c);
		gh_err_t err = { 0 };
		if (store_begin(c->st) == 0) {
			kv_int_set(c->st, "cloud_snap_lrev0", empty ? -1 : l > 0 ? l : 1);
			if (empty && bulk_begin(c->st, &err))
				log_warn("cloud", "first snapshot without a bulk load: %s", err.message);
			if (store_commit(c->st)) /* rolled back: no bulk load (store_bulk) */
				log_err("cloud", "cannot mark the snapshot's start: its commit failed");
		}
	}
	return pull_submit(c, path) == 0;
}

static void start_pull(cloudlink_t *c)
{
	start_pull_at(c, c->resync ? 0 : kv_int(c->st, "rev"), c->snap_cursor);
}

/* Deletes the cloud-owned entities a full snapshot did not contain: the
 * dependants first, settings never. */
static int sweep(cloudlink_t *c, int64_t lrev0)
{
	static const ent_t order[] = { ENT_PARKING_LOT, ENT_CREDENTIAL, ENT_TEMP_KEY, ENT_ACCESS_GROUP,
				       ENT_RELAY_BOARD, ENT_DEVICE,      ENT_PERSON,   ENT_APARTMENT,
				       ENT_BUILDING,    ENT_MAC };
	int n = 0;
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		json_t *ids = ent_cloud_stale(c->st, order[i], lrev0);
		if (!ids)
			return -1;
		size_t k;
		json_t *id;
		json_array_foreach(ids, k, id) {
			gh_err_t err = { 0 };
			if (ent_delete(c->st, order[i], json_string_value(id), &cloud_ctx, &err) == 0)
				n++;
			else if (err.status != 404)
				log_err("cloud", "resync: cannot delete %s %s: %s", ent_name(order[i]),
					json_string_value(id), err.message);
		}
		json_decref(ids);
	}
	log_info("cloud", "full snapshot applied: %d entities the cloud no longer has were deleted", n);
	return 0;
}

/* The changes of a state page, in the page's transaction. FAST: no
 * savepoint per entity (ent_ctx in_caller_tx); -2 when a write failed and
 * the transaction must be rolled back, the page then applied again without
 * FAST. Entities that fail validation are refused (conflicts), the rest go
 * on. */
static int apply_changes(cloudlink_t *c, const creq_t *r, json_t *changes, int is_full, int fast,
			 int *applied_out, int *failed_out)
{
	ent_ctx_t ctx = cloud_ctx;
	ctx.lenient_refs = is_full;
	ctx.bulk = store_bulk(c->st);
	size_t i;
	json_t *ch;
	int applied = 0, failed = 0;
	json_array_foreach(changes, i, ch) {
		json_t *seq = json_object_get(ch, "seq"), *data = json_object_get(ch, "data");
		const char *entity = json_string_value(json_object_get(ch, "entity"));
		const char *op = json_string_value(json_object_get(ch, "op"));
		const char *id = json_string_value(json_object_get(ch, "id"));
		int e = entity ? ent_parse(entity) : -1;
		int64_t sq = json_is_integer(seq) ? json_integer_value(seq) : 0;
		const char *why = !json_is_object(ch) ? "a change must be an object"
				  : !json_is_integer(seq)                 ? "seq must be an integer"
				  : e < 0                                 ? "unknown entity"
				  : !op || (strcmp(op, "upsert") && strcmp(op, "delete")) ? "op must be upsert or delete"
				  : !id                                   ? "id must be a string"
				  : !strcmp(op, "upsert") && !json_is_object(data) ? "data must be an object"
										   : NULL;
		const struct prep *pp = r && i < r->nprep ? &r->prep[i] : NULL;
		if (!why && pp && pp->state == 2)
			why = pp->why; /* its fields, checked by the puller */
		if (why) {
			cloud_change_failed(c, sq, entity ? entity : "?", id ? id : "?", data, why);
			failed++;
			continue;
		}
		gh_err_t err = { 0 };
		ctx.rev = sq;
		int upsert = !strcmp(op, "upsert");
		ctx.in_caller_tx = fast && upsert;
		ctx.consume = 1; /* the page's tree, freed after it */
		ctx.prepared = pp && pp->state == 1 ? r->pbuf + pp->off : NULL;
		ctx.prepared_len = pp ? pp->len : 0;
		int rc = upsert ? ent_put(c->st, (ent_t)e, id, data, &ctx, NULL, &err)
				: ent_delete(c->st, (ent_t)e, id, &ctx, &err);
		if (rc == -2)
			return -2;
		if (rc && !(err.status == 404 && !upsert)) {
			char msg[300];
			refusal(msg, sizeof msg, &err);
			cloud_change_failed(c, sq, entity, id, data, msg);
			failed++;
			continue;
		}
		applied++;
	}
	*applied_out = applied;
	*failed_out = failed;
	return 0;
}

static int on_state(cloudlink_t *c, creq_t *r, json_t *j)
{
	json_t *changes = json_object_get(j, "changes"), *rev = json_object_get(j, "rev");
	json_t *more = json_object_get(j, "more"), *full = json_object_get(j, "full");
	if (!json_is_array(changes) || !json_is_integer(rev) || json_integer_value(rev) < 0 ||
	    (more && !json_is_boolean(more)) || (full && !json_is_boolean(full))) {
		bad_answer(c, r, "expected {\"rev\":int,\"more\":bool,\"full\":bool,\"changes\":[...]}");
		return -1;
	}
	int is_full = json_is_true(full), has_more = json_is_true(more);
	const char *cursor = json_string_value(json_object_get(j, "snapshot_cursor"));
	/* the next page is fetched while this one is applied (the puller
	 * went on by itself; dropped if this page fails) */
	if (has_more) {
		if (r->chained)
			c->ch[CH_SYNC].busy = 1;
		else
			start_pull_at(c, json_integer_value(rev), cursor);
	}
	/* the last page of a bulk load builds the index, in a transaction of
	 * its own (inside the loop pass's, a savepoint, SQLite would copy every
	 * page of the dropped index it reuses into the savepoint's journal, in
	 * memory, and the pass's commit would decide: the next tick builds it) */
	int own = !has_more && store_bulk(c->st) && !store_in_tx(c->st);
	if (store_begin(c->st)) {
		pull_cancel(c);
		bad_answer(c, r, "database busy");
		return -1;
	}
	int applied = 0, failed = 0;
	if (apply_changes(c, r, changes, is_full, 1, &applied, &failed) == -2) {
		/* a write failed half way (no savepoint per entity): the page
		 * again, each entity in a savepoint of its own */
		log_warn("cloud", "a write of the state page failed: applying it again entity by entity");
		store_rollback(c->st);
		if (store_begin(c->st)) {
			pull_cancel(c);
			bad_answer(c, r, "database busy");
			return -1;
		}
		apply_changes(c, r, changes, is_full, 0, &applied, &failed);
	}
	int rc = 0;
	if (has_more && cursor && *cursor) {
		snprintf(c->snap_cursor, sizeof c->snap_cursor, "%s", cursor);
	} else {
		c->snap_cursor[0] = '\0';
		if (!has_more || !is_full)
			kv_int_set(c->st, "rev", json_integer_value(rev));
		int64_t lrev0 = kv_int(c->st, "cloud_snap_lrev0");
		/* inside another unit's transaction (the loop pass) the page is a
		 * savepoint of it: the index is built by the next tick (end_bulk) */
		if (own)
			end_bulk(c); /* a savepoint: a failure keeps the page, the tick tries again */
		if (!rc && !has_more && lrev0 != 0) {
			if (lrev0 > 0)
				rc = sweep(c, lrev0);
			store_kv_set(c->st, "cloud_snap_lrev0", "0");
		}
	}
	/* a failed commit has rolled back already: one rollback, not two (a
	 * second would undo the loop pass's transaction this one nests in) */
	if (rc ? (store_rollback(c->st), 1) : store_commit(c->st)) {
		bad_answer(c, r, "cannot store the page: %s", sqlite3_errmsg(store_db(c->st)));
		c->snap_cursor[0] = '\0';
		pull_cancel(c);
		return -1;
	}
	if (applied || failed)
		log_info("cloud", "state page: %d applied, %d refused, rev %lld%s", applied, failed,
			 (long long)json_integer_value(rev), has_more ? ", more to come" : "");
	if (!has_more) {
		c->pulling = 0;
		c->resync = 0;
		c->want_pull = 0;
		c->next_sync_ms = gh_mono_ms() + SYNC_EVERY_MS;
		c->want_push = c->want_drain = 1;
	} else {
		c->want_pull = 1;
	}
	return 0;
}

/* ---- local changes ---- */

/* The next batch of local changes to push: *BODY gets the request's JSON
 * text; returns what was sent (with each change's seq) for the answer, or
 * NULL when nothing is pending. */
static json_t *changes_batch(cloudlink_t *c, char **body)
{
	*body = NULL;
	sqlite3_stmt *s = store_stmt(c->st, "SELECT seq, change_id, entity, op, eid, base_rev, data FROM local_changes "
					    "WHERE state = 'pending' ORDER BY seq LIMIT ?");
	if (!s)
		return NULL;
	sqlite3_bind_int(s, 1, CHANGES_BATCH);
	json_t *list = json_array(), *sent = json_array(), *seen = json_object();
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *entity = (const char *)sqlite3_column_text(s, 2);
		const char *eid = (const char *)sqlite3_column_text(s, 4);
		char key[200];
		snprintf(key, sizeof key, "%s/%s", entity, eid);
		/* one change per entity in a batch: the next is based on the
		 * revision this one will get */
		if (json_object_get(seen, key))
			break;
		json_object_set_new(seen, key, json_true());
		const char *data = (const char *)sqlite3_column_text(s, 6);
		json_t *d = data ? json_loads(data, 0, NULL) : NULL;
		json_t *one = json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "change_id", (const char *)sqlite3_column_text(s, 1),
					"entity", entity, "op", (const char *)sqlite3_column_text(s, 3), "id", eid,
					"base_rev", (json_int_t)sqlite3_column_int64(s, 5), "data", d ? d : json_null());
		json_array_append(list, one);
		json_t *mine = json_deep_copy(one);
		json_object_set_new(mine, "seq", json_integer(sqlite3_column_int64(s, 0)));
		json_array_append_new(sent, mine);
		json_decref(one);
	}
	sqlite3_reset(s);
	json_decref(seen);
	if (!json_array_size(list)) {
		json_decref(list);
		json_decref(sent);
		return NULL;
	}
	json_t *b = json_pack("{s:o}", "changes", list);
	*body = jdump(b);
	json_decref(b);
	return sent;
}

static int start_push(cloudlink_t *c)
{
	char *body;
	json_t *sent = changes_batch(c, &body);
	if (!sent)
		return 0;
	creq_t *r = req_start(c, R_CHANGES, CH_SYNC, "POST", "/changes", body, 30000);
	if (r)
		r->ctx = sent;
	else
		json_decref(sent);
	return r != NULL;
}

static void audit(cloudlink_t *c, const char *action, const char *entity, const char *eid, const json_t *before,
		  const json_t *after)
{
	sqlite3_stmt *s = store_stmt(c->st, "INSERT INTO audit_logs(ts, actor, action, entity, eid, before, after) "
					    "VALUES (?, 'cloud', ?, ?, ?, ?, ?)");
	if (!s)
		return;
	char *b = before && !json_is_null(before) ? jdump(before) : NULL;
	char *a = after && !json_is_null(after) ? jdump(after) : NULL;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_bind_text(s, 2, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, entity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, eid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, b, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, a, -1, SQLITE_TRANSIENT);
	sqlite3_step(s);
	sqlite3_reset(s);
	free(b);
	free(a);
}

/* The cloud's version wins: CURRENT (null: the entity is gone there). */
static void take_cloud_version(cloudlink_t *c, ent_t e, const char *eid, json_t *current, int64_t rev)
{
	gh_err_t err = { 0 };
	ent_ctx_t ctx = cloud_ctx;
	ctx.rev = rev;
	ctx.lenient_refs = 1;
	int rc = json_is_object(current) ? ent_put(c->st, e, eid, current, &ctx, NULL, &err)
					 : ent_delete(c->st, e, eid, &ctx, &err);
	if (rc && err.status != 404)
		log_err("cloud", "cannot take the cloud's version of %s %s: %s", ent_name(e), eid, err.message);
}

static int set_change_state(cloudlink_t *c, int64_t seq, const char *state)
{
	sqlite3_stmt *s = store_stmt(c->st, "UPDATE local_changes SET state = ? WHERE seq = ?");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, seq);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int on_changes(cloudlink_t *c, creq_t *r, json_t *j)
{
	json_t *results = json_object_get(j, "results");
	if (!json_is_array(results)) {
		bad_answer(c, r, "expected {\"results\":[...]}");
		return -1;
	}
	if (store_begin(c->st)) {
		bad_answer(c, r, "database busy");
		return -1;
	}
	int done = 0, conflicts = 0;
	size_t i, k;
	json_t *res, *mine;
	json_array_foreach(results, i, res) {
		const char *cid = json_string_value(json_object_get(res, "change_id"));
		const char *status = json_string_value(json_object_get(res, "status"));
		json_t *rev = json_object_get(res, "rev"), *current = json_object_get(res, "current");
		const char *error = json_string_value(json_object_get(res, "error"));
		json_t *sent = NULL;
		json_array_foreach(r->ctx, k, mine)
			if (cid && !strcmp(cid, json_string_value(json_object_get(mine, "change_id"))))
				sent = mine;
		if (!sent || !status) {
			log_warn("cloud", "POST /changes: a result without a known change_id or status: skipped");
			continue;
		}
		int64_t seq = json_integer_value(json_object_get(sent, "seq"));
		const char *entity = json_string_value(json_object_get(sent, "entity"));
		const char *eid = json_string_value(json_object_get(sent, "id"));
		int e = ent_parse(entity);
		int64_t rv = json_is_integer(rev) ? json_integer_value(rev) : 0;
		if (!strcmp(status, "applied")) {
			set_change_state(c, seq, "applied");
			/* later edits of the same entity are based on this revision */
			sqlite3_stmt *s = store_stmt(c->st, "UPDATE local_changes SET base_rev = ? WHERE entity = ? "
							    "AND eid = ? AND state = 'pending' AND seq > ?");
			int later = 0;
			if (s) {
				sqlite3_bind_int64(s, 1, rv);
				sqlite3_bind_text(s, 2, entity, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 3, eid, -1, SQLITE_STATIC);
				sqlite3_bind_int64(s, 4, seq);
				sqlite3_step(s);
				sqlite3_reset(s);
				later = sqlite3_changes(store_db(c->st)) > 0;
			}
			if (e >= 0)
				ent_synced(c->st, (ent_t)e, eid, rv, later);
			done++;
		} else if (!strcmp(status, "conflict") || !strcmp(status, "rejected")) {
			int conflict = !strcmp(status, "conflict");
			set_change_state(c, seq, conflict ? "conflict" : "rejected");
			sqlite3_stmt *s = store_stmt(c->st, "INSERT INTO conflicts(change_id, entity, eid, local, cloud, "
							    "error, ts) VALUES (?, ?, ?, ?, ?, ?, ?)");
			if (s) {
				json_t *local = json_object_get(sent, "data");
				char *l = local && !json_is_null(local) ? jdump(local) : NULL;
				char *cl = json_is_object(current) ? jdump(current) : NULL;
				sqlite3_bind_text(s, 1, cid, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 2, entity, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 3, eid, -1, SQLITE_STATIC);
				sqlite3_bind_text(s, 4, l, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(s, 5, cl, -1, SQLITE_TRANSIENT);
				sqlite3_bind_text(s, 6, error ? error : conflict ? "changed in the cloud meanwhile" : "rejected",
						  -1, SQLITE_TRANSIENT);
				sqlite3_bind_int64(s, 7, gh_now());
				sqlite3_step(s);
				sqlite3_reset(s);
				free(l);
				free(cl);
			}
			audit(c, conflict ? "conflict" : "rejected", entity, eid, json_object_get(sent, "data"), current);
			log_warn("cloud", "local change of %s %s %s by the cloud%s%s: the cloud's version is kept, "
					  "the local one is in the conflicts list",
				 entity, eid, conflict ? "conflicts with a change" : "was rejected", error ? ": " : "",
				 error ? error : "");
			/* cloud wins: a conflict names the cloud's current version
			 * (null: gone there); a rejection only if it sends one */
			if (e >= 0 && (conflict || json_is_object(current)))
				take_cloud_version(c, (ent_t)e, eid, current, rv);
			conflicts++;
		} else {
			log_warn("cloud", "POST /changes: unknown status \"%s\" for change %s: kept pending", status, cid);
		}
	}
	if (store_commit(c->st)) { /* rolled back by store_commit */
		bad_answer(c, r, "cannot store the results");
		return -1;
	}
	if (!done && !conflicts) {
		bad_answer(c, r, "no change of the batch was answered");
		return -1;
	}
	log_info("cloud", "local changes pushed: %d applied, %d conflicts or rejections", done, conflicts);
	return 0;
}

/* ---- event outbox ---- */

static int add_events(sbuf_t *b, json_t *map, sqlite3_stmt *s, int *n)
{
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 1);
		if (json_object_get(map, id))
			continue;
		json_object_set_new(map, id, json_integer(sqlite3_column_int64(s, 0)));
		sb_str(b, *n ? ",{\"id\":" : "{\"id\":");
		sb_jstr(b, id);
		sb_str(b, ",\"device\":");
		sb_jstr(b, (const char *)sqlite3_column_text(s, 2));
		sb_str(b, ",\"type\":");
		sb_jstr(b, (const char *)sqlite3_column_text(s, 3));
		char ts[32];
		snprintf(ts, sizeof ts, ",\"ts\":%lld,\"data\":", (long long)sqlite3_column_int64(s, 4));
		sb_str(b, ts);
		const char *data = (const char *)sqlite3_column_text(s, 5);
		sb_str(b, data && *data ? data : "{}");
		sb_str(b, "}");
		(*n)++;
	}
	sqlite3_reset(s);
	return 0;
}

/* Alarms first (they jump the queue), then the oldest of the rest: the
 * backlog drains in order, one batch in flight at a time. *BODY gets the
 * request's JSON text; returns the map of event id -> outbox seq for the
 * answer, or NULL when nothing is pending. */
static json_t *events_batch(cloudlink_t *c, char **body)
{
	*body = NULL;
	sqlite3_stmt *a = store_stmt(c->st, "SELECT seq, id, device, type, ts, data FROM outbox INDEXED BY outbox_alarms "
					    "WHERE state = 'pending' AND is_alarm = 1 ORDER BY seq LIMIT ?");
	sqlite3_stmt *o = store_stmt(c->st, "SELECT seq, id, device, type, ts, data FROM outbox INDEXED BY outbox_state "
					    "WHERE state = 'pending' ORDER BY seq LIMIT ?");
	if (!a || !o)
		return NULL;
	sbuf_t b = { 0 };
	json_t *map = json_object();
	int n = 0;
	sb_str(&b, "{\"events\":[");
	sqlite3_bind_int(a, 1, EVENTS_BATCH);
	add_events(&b, map, a, &n);
	sqlite3_bind_int(o, 1, EVENTS_BATCH - n);
	if (n < EVENTS_BATCH)
		add_events(&b, map, o, &n);
	sb_str(&b, "]}");
	if (!n || b.oom) {
		free(b.p);
		json_decref(map);
		return NULL;
	}
	*body = b.p;
	return map;
}

static int start_drain(cloudlink_t *c)
{
	char *body;
	json_t *map = events_batch(c, &body);
	if (!map)
		return 0;
	creq_t *r = req_start(c, R_EVENTS, CH_SYNC, "POST", "/events", body, 30000);
	if (r)
		r->ctx = map;
	else
		json_decref(map);
	return r != NULL;
}

static int on_events(cloudlink_t *c, creq_t *r, json_t *j)
{
	json_t *acc = json_object_get(j, "accepted"), *rej = json_object_get(j, "rejected");
	if (!json_is_array(acc) || (rej && !json_is_array(rej))) {
		bad_answer(c, r, "expected {\"accepted\":[ids],\"rejected\":[...]}");
		return -1;
	}
	sqlite3_stmt *del = store_stmt(c->st, "DELETE FROM outbox WHERE seq = ?");
	sqlite3_stmt *bad = store_stmt(c->st, "UPDATE outbox SET state = 'rejected', error = ? WHERE seq = ?");
	if (!del || !bad || store_begin(c->st)) {
		bad_answer(c, r, "database busy");
		return -1;
	}
	int na = 0, nr = 0;
	size_t i;
	json_t *x;
	json_array_foreach(acc, i, x) {
		json_t *seq = json_string_value(x) ? json_object_get(r->ctx, json_string_value(x)) : NULL;
		if (!seq)
			continue; /* not ours: ignore */
		sqlite3_bind_int64(del, 1, json_integer_value(seq));
		sqlite3_step(del);
		sqlite3_reset(del);
		na++;
	}
	json_array_foreach(rej, i, x) {
		const char *id = json_string_value(json_object_get(x, "id"));
		json_t *seq = id ? json_object_get(r->ctx, id) : NULL;
		if (!seq)
			continue;
		const char *e = json_string_value(json_object_get(x, "error"));
		sqlite3_bind_text(bad, 1, e ? e : "rejected by the cloud", -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(bad, 2, json_integer_value(seq));
		sqlite3_step(bad);
		sqlite3_reset(bad);
		log_warn("cloud", "event %s rejected by the cloud: %s (kept)", id, e ? e : "no reason given");
		nr++;
	}
	if (store_commit(c->st)) { /* rolled back by store_commit */
		bad_answer(c, r, "cannot store the results");
		return -1;
	}
	c->sent += na;
	c->rejected += nr;
	if (!na && !nr) {
		bad_answer(c, r, "no event of the batch was accepted or rejected");
		return -1;
	}
	return 0;
}

/* Outbox size limit: beyond it the oldest non-alarm events go, counted. */
static void outbox_limit(cloudlink_t *c)
{
	int64_t span = count_of(c->st, "SELECT COALESCE(max(seq) - min(seq) + 1, 0) FROM outbox");
	if (span <= c->outbox_max)
		return;
	int64_t n = count_of(c->st, "SELECT count(*) FROM outbox");
	if (n <= c->outbox_max)
		return;
	sqlite3_stmt *s = store_stmt(c->st, "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox "
					    "WHERE is_alarm = 0 ORDER BY seq LIMIT ?)");
	if (!s || store_begin(c->st))
		return;
	sqlite3_bind_int64(s, 1, n - c->outbox_max);
	sqlite3_step(s);
	sqlite3_reset(s);
	int dropped = sqlite3_changes(store_db(c->st));
	kv_int_set(c->st, "outbox_dropped", kv_int(c->st, "outbox_dropped") + dropped);
	if (store_commit(c->st)) { /* rolled back by store_commit */
		return;
	}
	log_warn("cloud", "event outbox over its limit of %ld events: the %d oldest non-alarm events were dropped",
		 c->outbox_max, dropped);
}

/* ---- heartbeat ---- */

static void start_heartbeat(cloudlink_t *c)
{
	json_t *b = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "version", GH_VERSION, "uptime",
			      (json_int_t)((gh_mono_ms() - c->env.started_ms) / 1000), "devices_online",
			      (json_int_t)count_of(c->st, "SELECT count(*) FROM presence p JOIN devices d ON "
							   "d.id = p.device WHERE p.online = 1"),
			      "devices_total", (json_int_t)ent_count(c->st, ENT_DEVICE), "outbox",
			      (json_int_t)count_of(c->st, "SELECT count(*) FROM outbox WHERE state = 'pending'"), "rev",
			      (json_int_t)kv_int(c->st, "rev"));
	req_start(c, R_HEARTBEAT, CH_SYNC, "POST", "/heartbeat", jdump(b), 30000);
	json_decref(b);
	c->next_hb_ms = gh_mono_ms() + HEARTBEAT_EVERY_MS;
}

/* ---- commands ---- */

static void start_commands(cloudlink_t *c)
{
	char cur[256] = "", path[400];
	store_kv_get(c->st, "cloud_cmd_cursor", cur, sizeof cur);
	char *esc = curl_easy_escape(NULL, cur[0] ? cur : "0", 0);
	snprintf(path, sizeof path, "/commands?after=%s&wait=%d", esc ? esc : "0", LONGPOLL_WAIT_S);
	curl_free(esc);
	req_start(c, R_COMMANDS, CH_CMD, "GET", path, NULL, (LONGPOLL_WAIT_S + 10) * 1000L);
}

static int resp_ok(const json_t *resp, char *err, size_t len)
{
	if (json_is_true(json_object_get(resp, "ok")))
		return 1;
	const char *m = json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
	snprintf(err, len, "%s", m ? m : "failed");
	return 0;
}

/* Runs a cloud command; *device_cmd gets the device command to wait for,
 * if any. Returns "done", "failed" or "running". */
static const char *exec_command(cloudlink_t *c, const char *op, const char *target, json_t *args, char *device_cmd,
				char *err, size_t errlen)
{
	json_t *req = NULL, *resp = NULL;
	const char *state = "failed";
	device_cmd[0] = '\0';
	if (!strcmp(op, "sync")) {
		c->want_pull = 1;
		return "done";
	}
	if (!strcmp(op, "reset") && json_is_string(json_object_get(args, "apartment"))) {
		gh_err_t e = { 0 };
		if (ent_apartment_reset(c->st, json_string_value(json_object_get(args, "apartment")), &cloud_ctx, &e)) {
			snprintf(err, errlen, "%s", e.message);
			return "failed";
		}
		return "done";
	}
	if (!strcmp(op, "relay.open") && !target) {
		json_t *board = json_object_get(args, "board"), *ch = json_object_get(args, "channel");
		if (!json_is_string(board) || !json_is_integer(ch)) {
			snprintf(err, errlen, "relay.open without a target needs args board and channel");
			return "failed";
		}
		req = json_pack("{s:s,s:O,s:O,s:s}", "op", "relay.open", "target", board, "relay", ch, "actor", "cloud");
	} else if (!strcmp(op, "relay.open")) {
		json_t *relay = json_object_get(args, "relay");
		req = json_pack("{s:s,s:s,s:I,s:s}", "op", "relay.open", "target", target, "relay",
				(json_int_t)(json_is_integer(relay) ? json_integer_value(relay) : 1), "actor", "cloud");
	} else if (!strcmp(op, "emergency") && !target) {
		const char *st = json_string_value(json_object_get(args, "state"));
		json_t *on = json_object_get(args, "on");
		req = json_pack("{s:s,s:s}", "op", "emergency", "state",
				st ? st : json_is_boolean(on) ? (json_is_true(on) ? "on" : "off") : "");
		if (json_object_get(args, "doors"))
			json_object_set(req, "doors", json_object_get(args, "doors"));
	} else if (!strcmp(op, "reboot") || !strcmp(op, "reset") || !strcmp(op, "autop") || !strcmp(op, "message") ||
		   !strcmp(op, "firmware") || !strcmp(op, "emergency")) {
		req = json_pack("{s:s,s:s}", "op", "command", "command", op);
		json_object_set_new(req, "devices", target ? json_pack("[s]", target) : json_string("all"));
		json_object_set_new(req, "args", json_is_object(args) ? json_deep_copy(args) : json_object());
	} else {
		snprintf(err, errlen, "unknown command op %s", op);
		return "failed";
	}
	resp = ctl_handle(&c->env, req);
	if (!resp_ok(resp, err, errlen)) {
		state = "failed";
	} else if (json_is_string(json_object_get(resp, "command"))) {
		snprintf(device_cmd, 40, "%s", json_string_value(json_object_get(resp, "command")));
		state = "running";
	} else if (json_is_object(json_object_get(resp, "commands")) && json_object_size(json_object_get(resp, "commands")) == 1) {
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(resp, "commands"), k, v) snprintf(device_cmd, 40, "%s", json_string_value(v));
		state = "running";
	} else if (json_is_string(json_object_get(resp, "state")) &&
		   !strcmp(json_string_value(json_object_get(resp, "state")), "offline")) {
		snprintf(err, errlen, "the board is offline");
		state = "failed";
	} else {
		state = "done";
	}
	json_decref(req);
	json_decref(resp);
	return state;
}

static int on_commands(cloudlink_t *c, creq_t *r, json_t *j)
{
	json_t *cmds = json_object_get(j, "commands"), *cursor = json_object_get(j, "cursor");
	if (!json_is_array(cmds) || !(json_is_integer(cursor) || json_is_string(cursor))) {
		bad_answer(c, r, "expected {\"cursor\":...,\"commands\":[...]}");
		return -1;
	}
	/* recorded first (deduplicated by id), then run: a command is never
	 * run twice, even across a restart */
	json_t *fresh = json_array();
	if (store_begin(c->st)) {
		json_decref(fresh);
		return -1;
	}
	sqlite3_stmt *s = store_stmt(c->st, "INSERT OR IGNORE INTO cloud_commands(id, op, target, args, received_at, "
					    "updated_at) VALUES (?, ?, ?, ?, ?, ?5)");
	size_t i;
	json_t *cmd;
	json_array_foreach(cmds, i, cmd) {
		const char *id = json_string_value(json_object_get(cmd, "id"));
		const char *op = json_string_value(json_object_get(cmd, "op"));
		json_t *target = json_object_get(cmd, "target"), *args = json_object_get(cmd, "args");
		if (!id || !op || (target && !json_is_null(target) && !json_is_string(target)) ||
		    (args && !json_is_null(args) && !json_is_object(args))) {
			log_err("cloud", "a command without a string id and op (or with a bad target or args): ignored");
			continue;
		}
		char *a = args && json_is_object(args) ? jdump(args) : NULL;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, op, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, json_string_value(target), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, a ? a : "{}", -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 5, gh_now());
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		free(a);
		if (rc == SQLITE_DONE && sqlite3_changes(store_db(c->st)) == 1)
			json_array_append(fresh, cmd);
		else if (rc == SQLITE_DONE)
			log_info("cloud", "command %s seen before: ignored", id);
	}
	char cur[64];
	if (json_is_integer(cursor))
		snprintf(cur, sizeof cur, "%lld", (long long)json_integer_value(cursor));
	else
		snprintf(cur, sizeof cur, "%.60s", json_string_value(cursor));
	store_kv_set(c->st, "cloud_cmd_cursor", cur);
	if (store_commit(c->st)) { /* rolled back by store_commit */
		json_decref(fresh);
		return -1;
	}
	json_array_foreach(fresh, i, cmd) {
		const char *id = json_string_value(json_object_get(cmd, "id"));
		const char *op = json_string_value(json_object_get(cmd, "op"));
		const char *target = json_string_value(json_object_get(cmd, "target"));
		char dev[48], err[256] = "";
		const char *state = exec_command(c, op, target, json_object_get(cmd, "args"), dev, err, sizeof err);
		log_info("cloud", "command %s (%s%s%s): %s%s%s", id, op, target ? " " : "", target ? target : "", state,
			 err[0] ? ": " : "", err);
		sqlite3_stmt *u = store_stmt(c->st, "UPDATE cloud_commands SET state = ?, device_cmd = NULLIF(?, ''), "
						    "error = NULLIF(?, ''), updated_at = ? WHERE id = ?");
		if (u && store_begin(c->st) == 0) {
			sqlite3_bind_text(u, 1, state, -1, SQLITE_STATIC);
			sqlite3_bind_text(u, 2, dev, -1, SQLITE_STATIC);
			sqlite3_bind_text(u, 3, err, -1, SQLITE_STATIC);
			sqlite3_bind_int64(u, 4, gh_now());
			sqlite3_bind_text(u, 5, id, -1, SQLITE_STATIC);
			sqlite3_step(u);
			sqlite3_reset(u);
			store_commit(c->st);
		}
	}
	json_decref(fresh);
	return 0;
}

/* Device commands of cloud commands that have an outcome now. */
static void follow_commands(cloudlink_t *c)
{
	sqlite3_stmt *s = store_stmt(c->st, "UPDATE cloud_commands SET state = CASE (SELECT state FROM commands "
					    "WHERE cid = device_cmd) WHEN 'acked' THEN 'done' ELSE 'failed' END, "
					    "error = (SELECT CASE state WHEN 'acked' THEN NULL WHEN 'expired' THEN "
					    "'the device did not answer in time' ELSE COALESCE(error, 'failed') END "
					    "FROM commands WHERE cid = device_cmd), updated_at = ? WHERE state = 'running' "
					    "AND device_cmd IS NOT NULL AND (SELECT state FROM commands WHERE cid = "
					    "device_cmd) IN ('acked', 'failed', 'expired')");
	if (!s || store_begin(c->st))
		return;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_step(s);
	sqlite3_reset(s);
	store_commit(c->st);
}

static void start_result(cloudlink_t *c)
{
	sqlite3_stmt *s = store_stmt(c->st, "SELECT id, state, error FROM cloud_commands WHERE reported = 0 AND "
					    "state IN ('done', 'failed') LIMIT 1");
	if (!s)
		return;
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return;
	}
	char path[300];
	char *esc = curl_easy_escape(NULL, (const char *)sqlite3_column_text(s, 0), 0);
	snprintf(path, sizeof path, "/commands/%s/result", esc ? esc : "");
	curl_free(esc);
	json_t *b = json_pack("{s:s}", "status", (const char *)sqlite3_column_text(s, 1));
	if (sqlite3_column_text(s, 2))
		json_object_set_new(b, "error", json_string((const char *)sqlite3_column_text(s, 2)));
	json_t *ctx = json_string((const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	creq_t *r = req_start(c, R_RESULT, CH_RESULT, "POST", path, jdump(b), 30000);
	json_decref(b);
	if (r)
		r->ctx = ctx;
	else
		json_decref(ctx);
}

static void result_reported(cloudlink_t *c, creq_t *r, int how)
{
	sqlite3_stmt *s = store_stmt(c->st, "UPDATE cloud_commands SET reported = ? WHERE id = ?");
	if (!s || store_begin(c->st))
		return;
	sqlite3_bind_int(s, 1, how);
	sqlite3_bind_text(s, 2, json_string_value(r->ctx), -1, SQLITE_STATIC);
	sqlite3_step(s);
	sqlite3_reset(s);
	store_commit(c->st);
}

/* ---- completion ---- */

static void finish(cloudlink_t *c, creq_t *r, CURLcode res, long status)
{
	c->ch[r->ch].busy = 0;
	if (r->kind == R_STATE && r->epoch != c->pull_epoch)
		return; /* a page fetched ahead of one that failed */
	if (res != CURLE_OK) {
		snprintf(c->last_error, sizeof c->last_error, "%s: %.180s", r->what, r->err[0] ? r->err : curl_easy_strerror(res));
		log_warn("cloud", "%s failed: %s", r->what, r->err[0] ? r->err : curl_easy_strerror(res));
		set_wan(c, "down");
		backoff(c, r->ch, 0, 0);
		return;
	}
	if (status == 429 || status >= 500) {
		snprintf(c->last_error, sizeof c->last_error, "%s: HTTP %ld", r->what, status);
		log_warn("cloud", "%s: HTTP %ld%s", r->what, status, r->retry_after_s ? " (Retry-After)" : "");
		set_wan(c, "down");
		backoff(c, r->ch, r->retry_after_s, 0);
		return;
	}
	set_wan(c, "up"); /* the cloud answered */
	if (status == 410 && r->kind == R_STATE) {
		log_warn("cloud", "state revision too old for the cloud (410): full resync");
		c->resync = 1;
		c->want_pull = 1;
		c->snap_cursor[0] = '\0';
		store_kv_set(c->st, "cloud_snap_lrev0", "0");
		ok_channel(c, r->ch);
		return;
	}
	if (status < 200 || status >= 300) {
		snprintf(c->last_error, sizeof c->last_error, "%s: HTTP %ld", r->what, status);
		log_err("cloud", "%s: HTTP %ld: %.300s", r->what, status, r->resp ? r->resp : "");
		if (r->kind == R_RESULT && status == 404) {
			result_reported(c, r, 2); /* the cloud does not know it: give up */
			return;
		}
		backoff(c, r->ch, r->retry_after_s, 1);
		return;
	}
	int rc = 0;
	if (r->kind == R_HEARTBEAT) {
		rc = 0;
	} else if (r->kind == R_RESULT) {
		result_reported(c, r, 1);
	} else {
		json_error_t je = { .text = "" };
		json_t *j = NULL;
		int slot = -1;
		if (r->from_puller) { /* parsed on the puller thread, freed with R */
			j = r->parsed;
			snprintf(je.text, sizeof je.text, "%s", r->perr);
		} else {
			/* a state page's tree is parsed into an arena: freed at once */
			slot = r->kind == R_STATE ? jarena_take() : -1;
			jarena_begin(slot);
			j = r->resp ? json_loadb(r->resp, r->len, 0, &je) : NULL;
			if (r->kind == R_STATE && j)
				prepare_page(r, j); /* as the puller does (cloud_handle_answer) */
			jarena_end();
		}
		if (!json_is_object(j)) {
			bad_answer(c, r, "not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
			rc = -1;
		} else if (r->kind == R_STATE) {
			rc = on_state(c, r, j);
		} else if (r->kind == R_CHANGES) {
			rc = on_changes(c, r, j);
		} else if (r->kind == R_EVENTS) {
			rc = on_events(c, r, j);
		} else if (r->kind == R_COMMANDS) {
			rc = on_commands(c, r, j);
		}
		if (!r->from_puller) {
			json_decref(j);
			jarena_release(slot);
		}
	}
	if (rc)
		backoff(c, r->ch, r->retry_after_s, 0);
	else
		ok_channel(c, r->ch);
}

static void check_done(cloudlink_t *c)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		creq_t *r = NULL;
		CURL *h = m->easy_handle;
		CURLcode res = m->data.result;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(c->multi, h);
		for (creq_t **p = &c->inflight; *p; p = &(*p)->next)
			if (*p == r) {
				*p = r->next;
				break;
			}
		if (r) {
			finish(c, r, res, status);
			req_free(r);
		}
	}
	if (!c->stopping)
		pump(c);
}

/* ---- the schedule ---- */

static void pump(cloudlink_t *c)
{
	if (c->standalone || c->stopping)
		return;
	uint64_t now = gh_mono_ms();
	if (!c->ch[CH_SYNC].busy && now >= c->ch[CH_SYNC].next_ms) {
		if (c->want_pull || c->resync || now >= c->next_sync_ms)
			start_pull(c);
		else if (now >= c->next_hb_ms)
			start_heartbeat(c);
		else if (c->want_push && !start_push(c))
			c->want_push = 0;
		if (!c->ch[CH_SYNC].busy && c->want_drain && !start_drain(c))
			c->want_drain = 0;
	}
	if (!c->ch[CH_CMD].busy && now >= c->ch[CH_CMD].next_ms)
		start_commands(c);
	if (!c->ch[CH_RESULT].busy && now >= c->ch[CH_RESULT].next_ms)
		start_result(c);
}

void cloud_kick(cloudlink_t *c)
{
	if (!c || c->standalone)
		return;
	c->want_drain = 1;
	pump(c);
}

void cloud_tick(cloudlink_t *c)
{
	/* a bulk load whose snapshot is not coming to its end (it failed, or
	 * the box runs standalone now): ended here, an ordinary pull follows */
	if (c && store_bulk(c->st) && !c->pulling)
		end_bulk(c);
	if (c && c->standalone) {
		/* no cloud: events live in the log tables only (pairing later
		 * uploads the site's state, not its past events) */
		if (++c->ticks % 10 == 0)
			store_exec(c->st, "DELETE FROM outbox", NULL);
		return;
	}
	if (!c)
		return;
	c->want_push = c->want_drain = 1;
	follow_commands(c);
	if (++c->ticks % 10 == 0)
		outbox_limit(c);
	pump(c);
}

/* ---- life cycle ---- */

cloudlink_t *cloud_start(uv_loop_t *loop, const cloud_cfg_t *cfg, store_t *st, const ctl_env_t *env)
{
	cloudlink_t *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->loop = loop;
	c->st = st;
	c->env = *env;
	if (store_bulk(st))
		end_bulk(c); /* cut short by a crash or a stop */
	if (jarena_init())
		log_warn("cloud", "no address space for parse arenas: state pages parse with malloc");
	c->outbox_max = cfg->outbox_max > 0 ? cfg->outbox_max : 5000000;
	c->backoff_min = cfg->backoff_min_ms > 0 ? cfg->backoff_min_ms : BACKOFF_MIN_MS;
	c->backoff_max = cfg->backoff_max_ms >= c->backoff_min ? cfg->backoff_max_ms : BACKOFF_MAX_MS;
	uv_timer_init(loop, &c->curl_timer);
	c->curl_timer.data = c;
	uv_timer_init(loop, &c->retry_timer);
	c->retry_timer.data = c;
	uv_async_init(loop, &c->pl.async, on_pulled);
	c->pl.async.data = c;
	uv_timer_init(loop, &c->hold_timer);
	c->hold_timer.data = c;
	if (!cfg->url || !cfg->url[0]) {
		c->standalone = 1;
		snprintf(c->wan, sizeof c->wan, "standalone");
		log_info("cloud", "no [cloud] url: standalone, the local state is the source of truth");
		return c;
	}
	snprintf(c->wan, sizeof c->wan, "down");
	size_t ul = strlen(cfg->url);
	while (ul && cfg->url[ul - 1] == '/')
		ul--;
	char *site = curl_easy_escape(NULL, cfg->site ? cfg->site : "", 0);
	snprintf(c->base, sizeof c->base, "%.*s/v1/sites/%s", (int)ul, cfg->url, site ? site : "");
	curl_free(site);
	snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", cfg->token ? cfg->token : "");
	snprintf(c->ca_file, sizeof c->ca_file, "%s", cfg->ca_file ? cfg->ca_file : "");
	if (cfg->pin && cfg->pin[0])
		snprintf(c->pin, sizeof c->pin, "%s%s", strncmp(cfg->pin, "sha256//", 8) ? "sha256//" : "", cfg->pin);
	c->insecure = cfg->insecure;
	if (c->insecure && !strncmp(cfg->url, "http://", 7))
		log_warn("cloud", "[cloud] insecure: plain http:// to %.*s (tests only)", (int)ul, cfg->url);
	c->multi = curl_multi_init();
	if (!c->multi) {
		log_err("cloud", "cannot set up libcurl: running standalone");
		c->standalone = 1;
		snprintf(c->wan, sizeof c->wan, "standalone");
		return c;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 3L);
	/* a command interrupted by a restart is not run again: it failed */
	store_exec(st, "UPDATE cloud_commands SET state = 'failed', error = 'interrupted by a gateway restart' "
		       "WHERE state = 'running' AND device_cmd IS NULL", NULL);
	c->want_pull = 1;
	c->next_hb_ms = gh_mono_ms() + 5000;
	log_info("cloud", "cloud link to %.*s (site %s)", (int)ul, cfg->url, cfg->site ? cfg->site : "");
	pump(c);
	return c;
}

void cloud_set_wan_cb(cloudlink_t *c, cloud_wan_fn fn, void *ctx)
{
	if (!c)
		return;
	c->wan_cb = fn;
	c->wan_ctx = ctx;
}

void cloud_set_gate(cloudlink_t *c, cloud_gate_fn fn, void *ctx)
{
	if (!c)
		return;
	c->gate = fn;
	c->gate_ctx = ctx;
}

void cloud_set_env(cloudlink_t *c, const ctl_env_t *env)
{
	if (c)
		c->env = *env;
}

const char *cloud_wan(const cloudlink_t *c) { return c ? c->wan : "standalone"; }

json_t *cloud_status(cloudlink_t *c)
{
	if (!c)
		return json_null();
	json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "wan", c->wan, "rev", (json_int_t)kv_int(c->st, "rev"),
			      "outbox_pending",
			      (json_int_t)count_of(c->st, "SELECT count(*) FROM outbox WHERE state = 'pending'"),
			      "outbox_rejected",
			      (json_int_t)count_of(c->st, "SELECT count(*) FROM outbox WHERE state = 'rejected'"),
			      "outbox_dropped", (json_int_t)kv_int(c->st, "outbox_dropped"), "changes_pending",
			      (json_int_t)count_of(c->st, "SELECT count(*) FROM local_changes WHERE state = 'pending'"),
			      "conflicts", (json_int_t)count_of(c->st, "SELECT count(*) FROM conflicts"));
	json_object_set_new(o, "last_error", c->last_error[0] ? json_string(c->last_error) : json_null());
	json_object_set_new(o, "events_sent", json_integer(c->sent));
	json_object_set_new(o, "events_rejected", json_integer(c->rejected));
	return o;
}

/* the timers and the puller's wake-up live inside the link: free it once
 * the last has closed */
static void timer_closed(uv_handle_t *h)
{
	cloudlink_t *c = h->data;
	if (--c->closing == 0) {
		free(c->spare);
		free(c);
	}
}

void cloud_stop(cloudlink_t *c)
{
	if (!c)
		return;
	c->stopping = 1;
	pull_stop(c);
	while (c->inflight) {
		creq_t *r = c->inflight;
		c->inflight = r->next;
		curl_multi_remove_handle(c->multi, r->h);
		req_free(r);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (c->socks)
		sock_forget(c, c->socks);
	pull_free(c->held);
	c->held = NULL;
	c->closing = 4;
	uv_close((uv_handle_t *)&c->pl.async, timer_closed);
	uv_timer_stop(&c->hold_timer);
	uv_close((uv_handle_t *)&c->hold_timer, timer_closed);
	uv_timer_stop(&c->retry_timer);
	uv_close((uv_handle_t *)&c->retry_timer, timer_closed);
	uv_timer_stop(&c->curl_timer);
	uv_close((uv_handle_t *)&c->curl_timer, timer_closed);
}

/* ---- answers without a transfer (fuzzing, tests) ---- */

int cloud_handle_answer(cloudlink_t *c, const char *kind, long status, const char *body, size_t len)
{
	/* in rkind_t order */
	static const char *const kinds[] = { "state", "changes", "events", "heartbeat", "commands", "result" };
	int k = -1;
	for (int i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++)
		if (!strcmp(kind, kinds[i]))
			k = i;
	if (!c || k < 0)
		return -1;
	creq_t *r = calloc(1, sizeof *r);
	if (!r)
		return -1;
	r->c = c;
	r->kind = (rkind_t)k;
	r->ch = k == R_COMMANDS ? CH_CMD : k == R_RESULT ? CH_RESULT : CH_SYNC;
	r->epoch = c->pull_epoch;
	snprintf(r->what, sizeof r->what, "answer to %s", kinds[k]);
	/* what the request would have carried, built as for a real one */
	char *sent = NULL;
	if (k == R_CHANGES) {
		r->ctx = changes_batch(c, &sent);
	} else if (k == R_EVENTS) {
		r->ctx = events_batch(c, &sent);
	} else if (k == R_RESULT) {
		sqlite3_stmt *s = store_stmt(c->st, "SELECT id FROM cloud_commands WHERE reported = 0 AND "
						    "state IN ('done', 'failed') LIMIT 1");
		if (s && sqlite3_step(s) == SQLITE_ROW)
			r->ctx = json_string((const char *)sqlite3_column_text(s, 0));
		if (s)
			sqlite3_reset(s);
	}
	free(sent);
	if (body) {
		r->resp = malloc(len + 1);
		if (!r->resp) {
			req_free(r);
			return -1;
		}
		memcpy(r->resp, body, len);
		r->resp[len] = '\0';
		r->len = len;
		r->cap = len + 1;
	}
	c->ch[r->ch].busy = 1;
	finish(c, r, CURLE_OK, status);
	req_free(r);
	return 0;
}
