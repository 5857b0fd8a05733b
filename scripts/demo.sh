#!/usr/bin/env bash
# `make demo`: start a mail catcher, build the lab network (its contacts mailed through the
# catcher), put a few live faults in it, and run NetWatch against it on its embedded defaults.
# Ctrl-C stops NetWatch and the catcher and removes the lab.
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
MAIL_SMTP=${NETWATCH_DEMO_SMTP:-127.0.0.1:2525}      # the catcher's SMTP (loopback: nothing leaves)
MAIL_PAGE=${NETWATCH_DEMO_MAILBOX:-127.0.0.1:8025}   # its page listing the mails
DATA=data/demo                                       # the demo's database, mails and logs
MAILBOX=$DATA/mailbox
MAILBOX_PID=
AGENT_PIDS=()
AGENT_PORT=${NETWATCH_DEMO_AGENT_PORT:-7422}          # the centre's port for commune agents
AGENT_COMMUNES=(24848 28696)                          # communes whose box runs `netwatch agent`

cleanup() {
  trap - EXIT INT TERM
  echo
  echo "Stopping NetWatch, the commune agents and the mail catcher, removing the lab..."
  for pid in "${AGENT_PIDS[@]}" $MAILBOX_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  "$NW" lab down --index "$INDEX" --state-dir "$STATE" || true
}
trap cleanup EXIT INT TERM

# Every demo starts afresh: the last one's tickets would still be open (so no new ticket, no
# mail), and its mails' links were signed with that lab's secret.
rm -rf data/demo
mkdir -p "$MAILBOX"
# The mail catcher first: every notification of the demo lands in $MAILBOX, nowhere else.
"$NW" mailbox serve --dir "$MAILBOX" --smtp "$MAIL_SMTP" --http "$MAIL_PAGE" >"$DATA/mailbox.log" 2>&1 &
MAILBOX_PID=$!
for _ in $(seq 100); do
  grep -q "^mailbox ready" "$DATA/mailbox.log" && break
  if ! kill -0 "$MAILBOX_PID" 2>/dev/null; then
    cat "$DATA/mailbox.log" >&2
    echo "The mail catcher did not start (is $MAIL_SMTP or $MAIL_PAGE taken? NETWATCH_DEMO_SMTP and NETWATCH_DEMO_MAILBOX move them)." >&2
    exit 1
  fi
  sleep 0.1
done
grep -q "^mailbox ready" "$DATA/mailbox.log" || { echo "The mail catcher did not say it is ready ($DATA/mailbox.log)." >&2; exit 1; }

# The lab's inventory mails its contacts (VNPT, Viettel, provincial IT) through the catcher,
# with ticket links signed for this NetWatch.
"$NW" lab up --index "$INDEX" --state-dir "$STATE" --communes "$COMMUNES" \
  --smtp "$MAIL_SMTP" --public-url "http://$LISTEN"
set -a
# shellcheck disable=SC1091
. "$STATE/lab.env"
set +a

# A few live faults, so there is something to see:
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 28696 loss 20      # Xã Tân Phú Đông: 20 % loss
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 05518 down         # Phường Sông Công: line down
"$NW" lab fault --index "$INDEX" --state-dir "$STATE" 28693 congest      # Xã Tân Thới: saturated

"$NW" check-config "$STATE/netwatch.yaml"
# A token for the provincial IT view (/admin) and the API (every /api/v1 route needs one:
# read and write); only its hash is stored. And an ISP engineer's account (VNPT's tickets
# only), its password random for this demo, hashed with argon2id in the store.
TOKEN=$("$NW" token create demo --scope read --scope write --data-dir "$DATA" | head -1)
VNPT_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
if ! "$NW" user list --data-dir "$DATA" | grep -q '^kt-vnpt '; then
  printf '%s\n' "$VNPT_PASSWORD" | "$NW" user create kt-vnpt --role isp --isp vnpt --data-dir "$DATA" >/dev/null
else
  printf '%s\n' "$VNPT_PASSWORD" | "$NW" user passwd kt-vnpt --data-dir "$DATA" >/dev/null
fi

# Commune agents (docs/agent.md) in two communes' boxes: a key each from the centre's store,
# the box's settings, and `netwatch agent` inside the box's namespace; they dial the centre's
# leafnode port on the lab's root side and wait there until NetWatch listens.
CENTRE=10.$((88 + INDEX)).0.1
for code in "${AGENT_COMMUNES[@]}"; do
  box=$DATA/agents/$code
  mkdir -p "$box"
  "$NW" agent-key add "$code" --config "$STATE/netwatch.yaml" --data-dir "$DATA" >"$box/secret"
  cat >"$box/agent.toml" <<TOML
commune = "$code"
agent = "$code-agent"
secret_file = "secret"
centre = ["nats-leaf://$CENTRE:$AGENT_PORT"]
data_dir = "data"
TOML
  ip netns exec "nwl$INDEX-a$((10#$code))" "$NW" agent --config "$box/agent.toml" >"$box/agent.log" 2>&1 &
  AGENT_PIDS+=($!)
done

cat <<TXT

NetWatch is starting against the lab ($COMMUNES communes, faults: loss at 28696, down at 05518,
congestion at 28693). Look at:
  status page   http://$LISTEN/status
  metrics       http://$LISTEN/metrics
  API schema    http://$LISTEN/openapi.json
  tickets       curl -H "Authorization: Bearer $TOKEN" http://$LISTEN/api/v1/tickets
                (stored in $DATA/netwatch.sqlite3; without the token: 401)
  IT view       http://$LISTEN/admin               (log in with the token: ${TOKEN:-see netwatch token create})
                or as VNPT's engineer: user kt-vnpt, password $VNPT_PASSWORD (VNPT's tickets only)
  mailbox       http://$MAIL_PAGE/      every mail NetWatch sends (or: $NW mailbox list)
  agents        http://$LISTEN/status/xa/24848: "Nhìn từ trung tâm xã", what the box in the
                commune centre measures (also 28696; logs in $DATA/agents/)

The ISP's side: within a minute the line down at 05518 (Phường Sông Công) opens a ticket and
VNPT's NOC is mailed. In the mailbox:
  1. open the mail's signed link (http://$LISTEN/t/...?exp=...&sig=...): the ISP's ticket page,
     with the evidence, and no login;
  2. press "Tiếp nhận" (acknowledge), with a name if you like;
  3. open http://$LISTEN/status/xa/05518: the commune's page now says
     "Nhà mạng đã tiếp nhận xử lý." (the ISP is on it).
Try more faults in another shell, e.g.:
  $NW lab fault --index $INDEX 24848 loss 30
  $NW lab fault --index $INDEX portal slow 3
  $NW lab restore --index $INDEX
Ctrl-C stops NetWatch and the mail catcher and removes the lab.

TXT
"$NW" run --config "$STATE/netwatch.yaml" --listen "$LISTEN" --data-dir "$DATA" \
  --agent-listen "$CENTRE:$AGENT_PORT"
