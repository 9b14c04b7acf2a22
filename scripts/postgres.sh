#!/usr/bin/env bash
# A private PostgreSQL server on loopback for the tests: its own data folder and port, trust
# authentication on 127.0.0.1 only, run as the `postgres` system user (initdb refuses root).
#   scripts/postgres.sh install   apt-get install postgresql if missing
#   scripts/postgres.sh start     start it; prints `export VOUCH_TEST_POSTGRES_URL=… VOUCH_TEST_POSTGRES_DATA=…`
#   scripts/postgres.sh stop      stop it
set -euo pipefail
DATA=${VOUCH_TEST_POSTGRES_DATA:-/var/tmp/vouch-test-pg}
PORT=${VOUCH_TEST_POSTGRES_PORT:-54329}
bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
  install)
    if [ -z "$(bin_dir)" ]; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    fi
    ;;
  start)
    BIN=$(bin_dir)
    [ -n "$BIN" ] || { echo "PostgreSQL is not installed (scripts/postgres.sh install)" >&2; exit 1; }
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"
      [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
      chmod 700 "$DATA"
      as_postgres "$BIN/initdb" -D "$DATA" -U vouch -A trust --no-sync >/dev/null
    fi
    if ! as_postgres "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_postgres "$BIN/pg_ctl" -D "$DATA" -w -l "$DATA/server.log" \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    fi
    echo "export VOUCH_TEST_POSTGRES_URL='host=127.0.0.1 port=$PORT user=vouch dbname=postgres' VOUCH_TEST_POSTGRES_DATA='$DATA'"
    ;;
  stop)
    BIN=$(bin_dir)
    [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ] && as_postgres "$BIN/pg_ctl" -D "$DATA" -w stop -m fast >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
