/* The status document (ADMIN.md GET /api/v1/status) from the store. */
#ifndef GH_STATUS_H
#define GH_STATUS_H

#include <jansson.h>
#include <stdint.h>

#include "store.h"

/* {"version","uptime","wan","rev","devices":{"online","total"},"boards":[],
 *  "outbox","emergency","counts":{entity:n},"schema"}. UPTIME < 0 omits it. */
json_t *status_json(store_t *st, int64_t uptime, const char *wan);

#endif
