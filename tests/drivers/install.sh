#!/usr/bin/env bash
# Installs what the driver sessions in this folder need, on Debian. Idempotent and quiet:
# only missing pieces are installed, and a second run does nothing.
#   apt: postgresql-client (psql), postgresql (server binaries for the testkit, and pgbench),
#        libpostgresql-jdbc-java (pgjdbc), a JDK (single-file source launch), nodejs + npm,
#        curl (the HTTP API tests' client), procps (/bin/kill for the demo test)
#   pip: psycopg[binary], asyncpg, aiosmtpd (the notification tests' SMTP receiver), schemathesis (the
#        HTTP API's OpenAPI fuzzer); pinned below
#   npm: pg, pg-copy-streams (pinned in package.json / package-lock.json) via `npm ci`
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PSYCOPG_VERSION=3.3.9
ASYNCPG_VERSION=0.32.0
AIOSMTPD_VERSION=1.4.6
SCHEMATHESIS_VERSION=4.32.5

say() { echo "install.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages ----------------------------------------------------------------------------
missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v curl >/dev/null 2>&1 || missing+=(curl)     # the HTTP API tests' client
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || missing+=(procps)  # /bin/kill, for the demo test
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python drivers -----------------------------------------------------------------------------
have_python_drivers() {
  python3 - "$PSYCOPG_VERSION" "$ASYNCPG_VERSION" "$AIOSMTPD_VERSION" "$SCHEMATHESIS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import aiosmtpd
import asyncpg
import psycopg
import psycopg_binary  # the binary build, so no libpq headers or compiler are needed
found = (psycopg.__version__, asyncpg.__version__, aiosmtpd.__version__, version("schemathesis"))
sys.exit(0 if found == tuple(sys.argv[1:5]) else 1)
PY
}
if ! have_python_drivers; then
  say "pip install psycopg[binary]==$PSYCOPG_VERSION asyncpg==$ASYNCPG_VERSION aiosmtpd==$AIOSMTPD_VERSION schemathesis==$SCHEMATHESIS_VERSION"
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  pip_args=(-q "psycopg[binary]==$PSYCOPG_VERSION" "asyncpg==$ASYNCPG_VERSION" "aiosmtpd==$AIOSMTPD_VERSION"
    "schemathesis==$SCHEMATHESIS_VERSION")
  # Debian's own python3 is "externally managed" (PEP 668); a pyenv/venv python is not.
  if ! python3 -m pip install "${pip_args[@]}" 2>/dev/null; then
    python3 -m pip install --break-system-packages "${pip_args[@]}"
  fi
  have_python_drivers || { say "python drivers still not importable"; exit 1; }
fi

# --- Node driver --------------------------------------------------------------------------------
stamp="$here/node_modules/.portcullis-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
  say "npm ci in $here"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$stamp"
fi
