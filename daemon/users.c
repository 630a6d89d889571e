#include "users.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity_int.h"
#include "log.h"
#include "timeutil.h"

#define SCRYPT_LN 14 /* N = 16384: ~16 MiB, ~50 ms on a Raspberry Pi 4 */
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SALT_LEN 16
#define HASH_LEN 32

static int derive(const char *pw, const unsigned char *salt, size_t slen, int ln, int r, int p,
		  unsigned char *out)
{
	uint64_t n = (uint64_t)1 << ln;
	return EVP_PBE_scrypt(pw, strlen(pw), salt, slen, n, (uint64_t)r, (uint64_t)p,
			      (uint64_t)256 << 20, out, HASH_LEN) == 1
		       ? 0
		       : -1;
}

int users_hash(const char *pw, char *out, size_t len)
{
	unsigned char salt[SALT_LEN], h[HASH_LEN];
	unsigned char sb[64], hb[64];
	if (RAND_bytes(salt, sizeof salt) != 1 || derive(pw, salt, sizeof salt, SCRYPT_LN, SCRYPT_R, SCRYPT_P, h))
		return -1;
	EVP_EncodeBlock(sb, salt, sizeof salt);
	EVP_EncodeBlock(hb, h, sizeof h);
	snprintf(out, len, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", SCRYPT_LN, SCRYPT_R, SCRYPT_P, sb, hb);
	OPENSSL_cleanse(h, sizeof h);
	return 0;
}

int users_hash_check(const char *pw, const char *enc)
{
	int ln, r, p, off = 0;
	char sb[64], hb[64];
	if (sscanf(enc, "$scrypt$ln=%d,r=%d,p=%d$%n", &ln, &r, &p, &off) != 3 || !off)
		return -1;
	if (ln < 10 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 16)
		return -1;
	const char *rest = enc + off, *dollar = strchr(rest, '$');
	if (!dollar || (size_t)(dollar - rest) >= sizeof sb || strlen(dollar + 1) >= sizeof hb)
		return -1;
	memcpy(sb, rest, (size_t)(dollar - rest));
	sb[dollar - rest] = '\0';
	snprintf(hb, sizeof hb, "%s", dollar + 1);
	unsigned char salt[64], want[64], got[HASH_LEN];
	int sl = EVP_DecodeBlock(salt, (const unsigned char *)sb, (int)strlen(sb));
	int hl = EVP_DecodeBlock(want, (const unsigned char *)hb, (int)strlen(hb));
	if (sl < SALT_LEN || hl < HASH_LEN)
		return -1;
	if (derive(pw, salt, SALT_LEN, ln, r, p, got))
		return -1;
	int ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
	OPENSSL_cleanse(got, sizeof got);
	return ok ? 0 : -1;
}

static int name_ok(const char *n)
{
	size_t l = strlen(n);
	if (l < 1 || l > 64)
		return 0;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-' || *p == '@'))
			return 0;
	return 1;
}

static int role_ok(const char *r)
{
	return r && (!strcmp(r, "admin") || !strcmp(r, "manager") || !strcmp(r, "viewer"));
}

static int audit(store_t *st, const char *actor, const char *action, const char *name, const char *role)
{
	json_t *after = role ? json_pack("{s:s,s:s}", "name", name, "role", role) : NULL;
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO audit_logs(ts, actor, action, entity, eid, after) "
					 "VALUES (?, ?, ?, 'user', ?, ?)");
	int rc = -1;
	if (s) {
		char *a = after ? json_dumps(after, JSON_COMPACT) : NULL;
		sqlite3_bind_int64(s, 1, gh_now());
		sqlite3_bind_text(s, 2, actor ? actor : "cli", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, action, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, a, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
		sqlite3_reset(s);
		free(a);
	}
	json_decref(after);
	return rc;
}

int users_add(store_t *st, const char *name, const char *role, const char *pw, const char *actor,
	      gh_err_t *err)
{
	if (!name_ok(name))
		return gh_err(err, 422, "invalid", "name", "user name must be 1-64 letters, digits, . _ - @");
	if (!role_ok(role))
		return gh_err(err, 422, "invalid", "role", "role must be admin, manager or viewer");
	if (!pw || strlen(pw) < 8 || strlen(pw) > 256)
		return gh_err(err, 422, "invalid", "password", "password must be 8-256 characters");
	char hash[160];
	if (users_hash(pw, hash, sizeof hash))
		return gh_err(err, 500, "crypto", "", "cannot hash password");
	if (store_begin(st))
		return store_db_err(st, err, "begin");
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO users(name, role, hash, created_at, updated_at) "
					 "VALUES (?, ?, ?, ?, ?4) ON CONFLICT(name) DO NOTHING");
	if (!s)
		goto dbfail;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, gh_now());
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto dbfail;
	if (sqlite3_changes(store_db(st)) == 0) {
		store_rollback(st);
		return gh_err(err, 409, "duplicate", "name", "user %s already exists", name);
	}
	if (audit(st, actor, "user_add", name, role) || store_commit(st))
		goto dbfail;
	log_info("users", "user %s added with role %s by %s", name, role, actor ? actor : "cli");
	return 0;
dbfail:
	store_rollback(st);
	return store_db_err(st, err, "adding user");
}

/* Runs SQL (binding TEXT1, then NOW, then NAME when the statement has a
 * third parameter) and audits ACTION; 404 when no user NAME. */
static int change_user(store_t *st, const char *sql, const char *text1, const char *name,
		       const char *actor, const char *action, gh_err_t *err)
{
	if (store_begin(st))
		return store_db_err(st, err, "begin");
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		goto dbfail;
	if (text1) {
		sqlite3_bind_text(s, 1, text1, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, gh_now());
		sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	}
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto dbfail;
	if (sqlite3_changes(store_db(st)) == 0) {
		store_rollback(st);
		return gh_err(err, 404, "not_found", "name", "no user %s", name);
	}
	if (audit(st, actor, action, name, NULL) || store_commit(st))
		goto dbfail;
	return 0;
dbfail:
	store_rollback(st);
	return store_db_err(st, err, action);
}

int users_passwd(store_t *st, const char *name, const char *pw, const char *actor, gh_err_t *err)
{
	if (!pw || strlen(pw) < 8 || strlen(pw) > 256)
		return gh_err(err, 422, "invalid", "password", "password must be 8-256 characters");
	char hash[160];
	if (users_hash(pw, hash, sizeof hash))
		return gh_err(err, 500, "crypto", "", "cannot hash password");
	return change_user(st, "UPDATE users SET hash = ?, updated_at = ? WHERE name = ?", hash, name,
			   actor, "user_passwd", err);
}

int users_del(store_t *st, const char *name, const char *actor, gh_err_t *err)
{
	return change_user(st, "DELETE FROM users WHERE name = ?", NULL, name, actor, "user_del", err);
}

/* unknown users still pay for one hash, so timing does not tell */
static const char dummy[] = "$scrypt$ln=14,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

int users_lookup(store_t *st, const char *name, char *hash, size_t hlen, char *role, size_t rlen)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT hash, role FROM users WHERE name = ?");
	snprintf(hash, hlen, "%s", dummy);
	role[0] = '\0';
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	int found = 0;
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(hash, hlen, "%s", (const char *)sqlite3_column_text(s, 0));
		snprintf(role, rlen, "%s", (const char *)sqlite3_column_text(s, 1));
		found = 1;
	}
	sqlite3_reset(s);
	return found ? 0 : -1;
}

int users_verify(store_t *st, const char *name, const char *pw, char *role, size_t len)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT hash, role FROM users WHERE name = ?");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	char hash[160] = "", r[16] = "";
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(s, 0));
		snprintf(r, sizeof r, "%s", (const char *)sqlite3_column_text(s, 1));
	}
	sqlite3_reset(s);
	int ok = users_hash_check(pw, hash[0] ? hash : dummy) == 0 && hash[0];
	if (ok && role)
		snprintf(role, len, "%s", r);
	return ok ? 0 : -1;
}
