#!/bin/sh
# The part of the official postgres image's entrypoint that compose.yaml relies on: a cluster made
# on first start with POSTGRES_USER / POSTGRES_PASSWORD as its superuser and POSTGRES_DB created,
# password logins over TCP, then `postgres` with the container's arguments.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD is not set" >&2
    exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password"
    initdb --username="$POSTGRES_USER" --pwfile="$password" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password"
    # initdb allows TCP logins from loopback only; other containers reach it over a network
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # on the socket only, while nobody else can connect
        pg_ctl --wait --silent --options="-c listen_addresses=''" start
        createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
        pg_ctl --wait --silent --mode=fast stop
    fi
fi
case "${1:-}" in -*) set -- postgres "$@" ;; esac
if [ "${1:-}" = postgres ]; then
    shift
    # every address by default, as the official image; compose's podman file narrows it to loopback
    set -- postgres -c listen_addresses='*' "$@"
fi
exec "$@"
