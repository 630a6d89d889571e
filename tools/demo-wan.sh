#!/bin/sh
# The running demo's WAN toggle: down (the cloud simulator refuses every
# connection until told otherwise), up (always reachable) or auto (down 20 s
# every minute, the default). Read by tools/demo-traffic.py within a second.
set -eu
D=${DEMO_DIR:-/tmp/gatehouse-demo}
case ${1:-} in
down | up | auto) ;;
*) echo "usage: sh tools/demo-wan.sh down|up|auto" >&2; exit 2 ;;
esac
[ -f "$D/wan" ] || { echo "demo-wan: no demo running in $D (make demo)" >&2; exit 1; }
echo "$1" >"$D/wan"
echo "demo WAN: $1"
