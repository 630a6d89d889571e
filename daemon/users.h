/* Local admin users (ADMIN.md roles admin, manager, viewer) with scrypt
 * password hashes (OpenSSL EVP_PBE_scrypt, random 16-byte salt). */
#ifndef GH_USERS_H
#define GH_USERS_H

#include "err.h"
#include "store.h"

/* Creates NAME (1..64 of letters, digits, . _ -) with ROLE; 409 if it
 * exists, 422 for a bad name, role or a password shorter than 8. */
int users_add(store_t *st, const char *name, const char *role, const char *password,
	      const char *actor, gh_err_t *err);
int users_passwd(store_t *st, const char *name, const char *password, const char *actor,
		 gh_err_t *err);
int users_del(store_t *st, const char *name, const char *actor, gh_err_t *err);
/* 0 and ROLE (>= 16 bytes) when NAME/PASSWORD match; -1 otherwise (same
 * work whether the user exists or not). */
int users_verify(store_t *st, const char *name, const char *password, char *role, size_t len);

/* The stored hash and role of NAME (0), or a dummy hash and "" (-1): the
 * caller checks the password with users_hash_check away from the loop. */
int users_lookup(store_t *st, const char *name, char *hash, size_t hlen, char *role, size_t rlen);

/* "$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>" into OUT (>= 128 bytes). */
int users_hash(const char *password, char *out, size_t len);
int users_hash_check(const char *password, const char *encoded);

#endif
