#!/usr/bin/env bash
# Docker with the overlay2 driver, its --data-root on a SlayerFS mount (file:// store) against on
# local disk: time of `docker import` of a busybox rootfs and of `docker run --rm` of a small
# command (median of RUNS), in one run. Starts private dockerd daemons (Debian docker.io), one at a
# time, and cleans up after itself.
# Tunables: RUNS=9
# Usage: sudo bash bench/docker.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
RUNS=${RUNS:-9}
command -v dockerd >/dev/null || apt-get install -y -qq docker.io containerd runc >/dev/null
command -v busybox >/dev/null || apt-get install -y -qq busybox-static >/dev/null
WORK=$(mktemp -d /tmp/slayerfs-bench-docker.XXXXXX)
MNT=$WORK/mnt
DPID=
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && sleep 2
  pkill -KILL -f "$WORK/exec" 2>/dev/null || true
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  "$REPO/dev" cli umount "$MNT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A busybox rootfs, as a tar.
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/tmp"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh echo cat true ls; do ln -s busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/busybox.tar" .

mkdir -p "$MNT"
SLAYERFS_HOME=$WORK/home "$REPO/dev" cli format sqlite3://$WORK/meta.db bench >/dev/null
SLAYERFS_HOME=$WORK/home "$REPO/dev" cli mount sqlite3://$WORK/meta.db "$MNT" >/dev/null

ms() { date +%s%N | awk '{printf "%d", $1 / 1000000}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

# Runs the measurements with the data root at $1; prints "import_ms run_ms".
measure() {
  local root=$1 sock=$WORK/d.sock
  mkdir -p "$root" "$WORK/exec"
  setsid dockerd --data-root "$root" --exec-root "$WORK/exec" -H "unix://$sock" \
    --pidfile "$WORK/d.pid" --storage-driver overlay2 --bridge none --iptables=false \
    --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
  DPID=$!
  for _ in $(seq 120); do docker -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.5; done
  local t0 t1 imp runs=()
  t0=$(ms)
  docker -H "unix://$sock" import "$WORK/busybox.tar" bench/busybox >/dev/null
  t1=$(ms)
  imp=$((t1 - t0))
  docker -H "unix://$sock" run --rm --network none bench/busybox true >/dev/null # first run
  for _ in $(seq "$RUNS"); do
    t0=$(ms)
    docker -H "unix://$sock" run --rm --network none bench/busybox sh -c 'echo hi > /tmp/x; cat /tmp/x' >/dev/null
    t1=$(ms)
    runs+=($((t1 - t0)))
  done
  docker -H "unix://$sock" rmi bench/busybox >/dev/null
  kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=
  grep -o " $root[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  echo "$imp $(printf '%s\n' "${runs[@]}" | median)"
}

read -r s_imp s_run < <(measure "$MNT/docker")
read -r l_imp l_run < <(measure "$WORK/local-docker")
printf '%-34s %12s %16s\n' "docker --data-root" "import (ms)" "run --rm (ms)"
printf '%-34s %12s %16s\n' "on SlayerFS (overlay2 upper)" "$s_imp" "$s_run"
printf '%-34s %12s %16s\n' "on local disk (ext4, overlay2)" "$l_imp" "$l_run"
awk -v a="$s_run" -v b="$l_run" 'BEGIN { printf "run ratio SlayerFS/local: %.2fx (median of %d)\n", a / b, '"$RUNS"' }'
