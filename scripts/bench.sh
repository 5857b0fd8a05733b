#!/usr/bin/env bash
# `make bench`: NetWatch's probes side by side with the tools users would pick instead, in one
# run, each printing CPU and wall seconds and a final RESULT line. Needs root (namespaces, raw
# ICMP). This machine is shared and noisy: compare the ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "make bench needs root (network namespaces and raw ICMP)" >&2
  exit 2
fi
# bench_notify: Prometheus + blackbox_exporter + Alertmanager, the stack users would alert with.
for pkg in prometheus-snmp-exporter prometheus-blackbox-exporter prometheus prometheus-alertmanager; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  fi
  # The packages start their services on install; the benchmarks run their own instances.
  systemctl disable --now "$pkg" >/dev/null 2>&1 || service "$pkg" stop >/dev/null 2>&1 || true
done
# bench_status: wrk as the load generator, nginx serving static copies as the ceiling.
for pkg in wrk nginx-light; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  fi
done
systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
PY=.venv/bin/python
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for bench in bench_icmp bench_snmp bench_https bench_national bench_scheduler bench_history bench_status bench_notify bench_judge bench_agents; do
  echo "== $bench"
  "$PY" "benchmarks/$bench.py" | tee -a "$results"
done
echo
grep '^RESULT ' "$results"
