#!/usr/bin/env bash
# Sequential and random reads of one 1 GiB file on a fresh SlayerFS volume on local disk
# (`file://` blocks, SQLite metadata, no disk cache), with the daemon's CPU time per read: fio
# writes the file, the caches are dropped, fio reads it three times (cold, then twice "warm": fio
# drops the file's pages before each job, so a warm read measures the FUSE read path with the
# block files in the page cache), then random 4 KiB reads. Prints one line per build.
#
# To compare builds, give each checkout (a `git worktree` of another commit, say); they run in
# turn, alternating ROUNDS times, on the same machine:
#   bash bench/local_read.sh [REPO...]        (default: this checkout)
# Tunables (environment): FIO_SIZE=1G  FIO_RUNTIME=8  ROUNDS=1
# Needs root (mount, drop_caches), fio, jq, fusermount3.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DENO="${DENO:-$(command -v deno || echo "$HERE/../.tools/node_modules/.bin/deno")}"
export FIO_SIZE="${FIO_SIZE:-1G}" FIO_RUNTIME="${FIO_RUNTIME:-8}"
ROUNDS="${ROUNDS:-1}"
WORK="$(mktemp -d /tmp/slayerfs-local-read.XXXXXX)"
MNT="$WORK/mnt"
PID=""
log() { echo "[local_read] $*" >&2; }
# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

cleanup() {
  set +e
  stop_daemon "$MNT" "$PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ms() { awk '{ print ($14 + $15) * 10 }' "/proc/$PID/stat"; }

one_build() {
  local repo="$1" out c0 r
  stop_daemon "$MNT" "$PID"
  rm -rf "$WORK/vol" && mkdir -p "$WORK/vol" "$MNT"
  (cd "$repo" && "$DENO" run -A cli.ts format --storage "file://$WORK/vol/blocks" \
    "sqlite3://$WORK/vol/meta.db" bench) >/dev/null
  (cd "$repo" && exec "$DENO" run -A --v8-flags=--max-old-space-size=1024 cli.ts mount \
    --foreground --no-metrics "sqlite3://$WORK/vol/meta.db" "$MNT" >"$WORK/daemon.log" 2>&1) &
  PID=$!
  for _ in $(seq 1 300); do is_mounted "$MNT" && break; sleep 0.1; done
  is_mounted "$MNT" || { cat "$WORK/daemon.log" >&2; exit 1; }
  FIO_FILE="$MNT/fio.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
  out="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo "$repo"):"
  drop_caches
  for kind in cold warm warm; do
    c0=$(cpu_ms)
    r=$(FIO_FILE="$MNT/fio.dat" fio --output-format=json "$HERE/fio/seq-read.fio" |
      jq '.jobs[0].read.bw_bytes / 1048576 | floor')
    out="$out $kind $r MiB/s (daemon $(($(cpu_ms) - c0)) ms CPU);"
  done
  r=$(FIO_FILE="$MNT/fio.dat" fio --output-format=json "$HERE/fio/rand-read.fio" |
    jq '.jobs[0].read.iops | floor')
  echo "$out random 4K $r IOPS; peak RSS $(awk '/^VmHWM/ { printf "%d MiB", $2 / 1024 }' "/proc/$PID/status")"
}

[ $# -gt 0 ] || set -- "$(cd "$HERE/.." && pwd)"
for _ in $(seq 1 "$ROUNDS"); do
  for repo in "$@"; do one_build "$repo"; done
done
