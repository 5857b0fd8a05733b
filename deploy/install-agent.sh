#!/bin/sh
# Install the NetWatch commune agent on a Debian 12 box (amd64 or arm64), in one command:
#
#   sudo sh install-agent.sh --wheel netwatch-0.1.0-py3-none-any.whl \
#       --commune 24848 --agent 24848-agent --centre nats-leaf://centre.example.vn:7422 \
#       --secret-file key.txt
#
# Run it from the folder that holds it and netwatch-agent.service (the release's deploy/).
# It installs python3-venv, makes the system user netwatch-agent, a virtual environment in
# /opt/netwatch-agent with the wheel (and its dependencies, from PyPI or from --pip-args, e.g.
# "--no-index --find-links /media/usb/wheels" on a box without Internet), the settings
# /etc/netwatch-agent/agent.toml (kept if present) with the secret in /etc/netwatch-agent/secret,
# the systemd unit, and starts it. Run it again to upgrade: the settings are left alone.
#
# --root DIR installs into DIR instead of / (no apt, no user, no systemctl): for packaging and
# for the tests (tests/agent/test_box_deploy.py).
set -eu
unset PYTHONPATH PYTHONHOME  # the venv's own packages, not a caller's

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --wheel FILE|URL --commune CODE --agent ID --centre URL[,URL...]"
    echo "         [--secret-file FILE] [--python python3] [--pip-args ARGS] [--root DIR] [--no-start]"
    exit 2
}

WHEEL="" COMMUNE="" AGENT="" CENTRE="" SECRET_FILE="" PYTHON=python3 PIP_ARGS="" ROOT="" START=1
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) WHEEL=$2; shift 2 ;;
        --commune) COMMUNE=$2; shift 2 ;;
        --agent) AGENT=$2; shift 2 ;;
        --centre) CENTRE=$2; shift 2 ;;
        --secret-file) SECRET_FILE=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --pip-args) PIP_ARGS=$2; shift 2 ;;
        --root) ROOT=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        -h|--help) usage ;;
        *) echo "install-agent.sh: unknown option $1" >&2; usage ;;
    esac
done
[ -n "$WHEEL" ] || { echo "install-agent.sh: --wheel is required" >&2; usage; }

HERE=$(cd "$(dirname "$0")" && pwd)
UNIT_SRC="$HERE/netwatch-agent.service"
[ -f "$UNIT_SRC" ] || { echo "install-agent.sh: $UNIT_SRC missing (run it from deploy/)" >&2; exit 1; }

PREFIX="$ROOT/opt/netwatch-agent"
ETC="$ROOT/etc/netwatch-agent"
UNIT_DIR="$ROOT/etc/systemd/system"
say() { echo "install-agent.sh: $*"; }

if [ -z "$ROOT" ]; then
    [ "$(id -u)" = 0 ] || { echo "install-agent.sh: run as root (sudo)" >&2; exit 1; }
    arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
    case "$arch" in
        amd64|arm64|x86_64|aarch64) ;;
        *) echo "install-agent.sh: $arch is not supported (amd64, arm64)" >&2; exit 1 ;;
    esac
    say "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv ca-certificates >/dev/null
    if ! id netwatch-agent >/dev/null 2>&1; then
        say "creating the system user netwatch-agent"
        useradd --system --home-dir /var/lib/netwatch-agent --no-create-home \
            --shell /usr/sbin/nologin netwatch-agent
    fi
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "install-agent.sh: $PYTHON is older than Python 3.11" >&2; exit 1; }

say "virtual environment in $PREFIX"
[ -x "$PREFIX/bin/python" ] || "$PYTHON" -m venv "$PREFIX"
# shellcheck disable=SC2086  # PIP_ARGS is a list of options on purpose
"$PREFIX/bin/pip" install -q --disable-pip-version-check $PIP_ARGS --upgrade "$WHEEL"
mkdir -p "$PREFIX/share/doc"
[ ! -f "$HERE/../docs/agent.md" ] || cp "$HERE/../docs/agent.md" "$PREFIX/share/doc/agent.md"

mkdir -p "$ETC"
chmod 0750 "$ETC"
if [ -n "$SECRET_FILE" ]; then
    install -m 0640 "$SECRET_FILE" "$ETC/secret"
elif [ ! -s "$ETC/secret" ] && [ -t 0 ]; then
    printf "The agent's secret (from \`netwatch agent-key add %s\` at the centre): " "$COMMUNE"
    stty -echo; read -r secret; stty echo; echo
    (umask 027; printf '%s\n' "$secret" > "$ETC/secret")
fi
if [ ! -f "$ETC/agent.toml" ]; then
    [ -n "$COMMUNE" ] && [ -n "$AGENT" ] && [ -n "$CENTRE" ] \
        || { echo "install-agent.sh: first install needs --commune, --agent and --centre" >&2; exit 1; }
    urls=$(printf '%s' "$CENTRE" | sed 's/[^,][^,]*/"&"/g; s/,/, /g')
    say "settings in $ETC/agent.toml"
    (umask 027; cat > "$ETC/agent.toml" <<TOML
# NetWatch commune agent (docs/agent.md). What to measure comes from the centre; this file
# says who the agent is, where the centre is and how much disk it may use.
commune = "$COMMUNE"
agent = "$AGENT"
secret_file = "secret"                 # next to this file, mode 0640
centre = [$urls]
data_dir = "/var/lib/netwatch-agent"
buffer_max_bytes = 67108864            # 64 MiB: ~14 days of rounds at 30 s; oldest dropped first
forward_rate_bps = 32000               # bytes/s when sending a backlog home after an outage
log_level = "info"
TOML
    )
else
    say "keeping the settings in $ETC/agent.toml"
fi
[ -n "$ROOT" ] || chown -R root:netwatch-agent "$ETC"
[ ! -f "$ETC/secret" ] || chmod 0640 "$ETC/secret"
chmod 0640 "$ETC/agent.toml"

mkdir -p "$UNIT_DIR"
install -m 0644 "$UNIT_SRC" "$UNIT_DIR/netwatch-agent.service"

if [ ! -s "$ETC/secret" ]; then
    say "no secret yet: put the agent's key in $ETC/secret, then: systemctl enable --now netwatch-agent"
    exit 0
fi
if [ -n "$ROOT" ]; then
    "$PREFIX/bin/netwatch" agent --check --config "$ETC/agent.toml"
    exit 0
fi
runuser -u netwatch-agent -- "$PREFIX/bin/netwatch" agent --check --config "$ETC/agent.toml"
systemctl daemon-reload
if [ "$START" = 1 ]; then
    systemctl enable --now netwatch-agent
    systemctl restart netwatch-agent  # an upgrade runs the new code
    say "running: journalctl -u netwatch-agent -f shows what it does"
else
    systemctl enable netwatch-agent
fi
