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
    echo "installing PostgreSQL from Debian packages (the database tests start a throwaway cluster of their own) ..." >&2
    _apt postgresql
  fi
}

ensure_chromium() {
  # The conformance report test renders the HTML report in Debian's headless Chromium (driven by Playwright
  # with executable_path; Playwright's own browser download is not used).
  if ! [ -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null 2>&1; then
    echo "installing Chromium from Debian packages (the conformance report test renders its HTML page in a real headless browser) ..." >&2
    _apt chromium
  fi
}
