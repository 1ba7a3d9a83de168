# Sourced by the scripts: system packages the tests need (real parts, not mocks), installed when missing.
_apt() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "missing system packages: $* (install them, e.g. sudo apt-get install $*)" >&2
    return 1
  fi
}

ensure_postgresql() {
  # The PostgreSQL tests start their own throwaway cluster with initdb/pg_ctl from these binaries.
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian packages ..." >&2
    _apt postgresql
  fi
}
