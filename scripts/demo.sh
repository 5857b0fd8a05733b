#!/usr/bin/env bash
# `make demo`: build the lab network, put a few live faults in it, and run NetWatch against it
# on its embedded defaults. Ctrl-C stops NetWatch and removes the lab.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "make demo builds a lab network with Linux namespaces: run it as root (or with CAP_NET_ADMIN)." >&2
  exit 2
fi

NW=.venv/bin/netwatch
INDEX=${NETWATCH_DEMO_LAB:-0}
STATE=data/lab$INDEX
LISTEN=${NETWATCH_DEMO_LISTEN:-127.0.0.1:8080}
COMMUNES=${NETWATCH_DEMO_COMMUNES:-6}

cleanup() {
  trap - EXIT INT TERM
  echo
  echo "Stopping NetWatch and removing the lab..."
  "$NW" lab down --index "$INDEX" --state-dir "$STATE" || true
}
trap cleanup EXIT INT TERM

"$NW" lab up --index "$INDEX" --state-dir "$STATE" --communes "$COMMUNES"
set -a
# shellcheck disable=SC1091
. "$STATE/lab.env"
set +a

# A few live faults, so there is something to see:
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 28696 loss 20      # Xã Tân Phú Đông: 20 % loss
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 05518 down         # Phường Sông Công: line down
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 28693 congest      # Xã Tân Thới: saturated

"$NW" check-config "$STATE/netwatch.yaml"
# A token for the provincial IT view (/admin) and the write API; only its hash is stored.
TOKEN=$("$NW" token create demo --data-dir data | head -1)

cat <<TXT

NetWatch is starting against the lab ($COMMUNES communes, faults: loss at 28696, down at 05518,
congestion at 28693). Look at:
  status page   http://$LISTEN/status
  metrics       http://$LISTEN/metrics
  API docs      http://$LISTEN/docs
  tickets       http://$LISTEN/api/v1/tickets      (stored in data/netwatch.sqlite3)
  IT view       http://$LISTEN/admin               (log in with the token: ${TOKEN:-see netwatch token create})
  ISP pages     /t/...: the signed link in each ticket's e-mail (the demo sends none: no mail server)
Try more faults in another shell, e.g.:
  $NW lab fault --index $INDEX 24848 loss 30
  $NW lab fault --index $INDEX portal slow 3
  $NW lab restore --index $INDEX
Ctrl-C stops NetWatch and removes the lab.

TXT
"$NW" run --config "$STATE/netwatch.yaml" --listen "$LISTEN" --data-dir data
