#!/bin/sh
# Entry point of the fangxin image: runs its arguments, after giving an ingester a stable MQTT
# client id when none is configured.
#
# Why: an ingester holds a persistent MQTT session, and Mosquitto keeps queueing that session's
# share of the shared subscription while it is away (measured on Mosquitto 2.0.11: with one of two
# members offline, half of the messages wait for it). The default client id follows the hostname,
# which changes when `docker compose up` recreates a container. Keeping the first id in the data
# dir, which compose hands on to the replacement container as the same anonymous volume, lets the
# replica resume its own session instead of leaving it to fill up unread.
set -eu

if [ "${1:-}" = "fangxin" ] && [ "${2:-}" = "ingest" ] && [ -z "${FANGXIN_INGEST_CLIENT_ID:-}" ]; then
    id_file="${FANGXIN_DATA_DIR:-/var/lib/fangxin}/ingest-client-id"
    if [ ! -s "$id_file" ]; then
        mkdir -p "$(dirname "$id_file")"
        printf 'fangxin-ingest-%s\n' "$(uname -n)" > "$id_file.tmp"
        mv "$id_file.tmp" "$id_file"
    fi
    FANGXIN_INGEST_CLIENT_ID="$(cat "$id_file")"
    export FANGXIN_INGEST_CLIENT_ID
fi

exec "$@"
