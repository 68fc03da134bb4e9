#!/usr/bin/env bash
# Cold random 4 KiB reads and the daemon's peak RSS, SlayerFS against one peer from one run:
#   MODE=local  SlayerFS (file:// storage + SQLite, defaults) vs bindfs over the same disk
#   MODE=s3     SlayerFS (s3:// on one s3rver + SQLite, defaults) vs s3fs on the same server
# Each filesystem: a fresh mount writes two files of SIZE (fio, 1 MiB writes, fsync); a second
# fresh mount (SlayerFS: disk cache emptied) with dropped kernel caches runs fio randread 4k for
# FIO_RUNTIME seconds on the second file, never read before (a file read before would replay its
# predictive-prefetch pattern when opened). SlayerFS also reads at random for FIO_RUNTIME on the writing mount first.
# Printed: IOPS, and SlayerFS's VmHWM (MiB) of the writing-then-reading daemon and of the cold
# reading one (default V8 flags, as a user would mount it).
# Needs root, fio, jq, bindfs / s3fs, node (s3rver). Usage: MODE=local bash bench/randread_seg.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
MODE="${MODE:-local}"
SIZE="${SIZE:-512M}"
export FIO_SIZE="$SIZE"
export FIO_RUNTIME="${FIO_RUNTIME:-20}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-randseg.XXXXXX")"
RESULTS="$WORK/results.tsv"
ENV_FILE="$WORK/s3.env"
SERVER_PID=""
SLAYER_PID=""
PEER_PID=""
SMNT="$WORK/mnt-slayerfs"
PMNT="$WORK/mnt-peer"
mkdir -p "$SMNT" "$PMNT" "$WORK/slayer" "$WORK/peer-src"
: >"$RESULTS"

log() { echo "[randseg $(date +%T)] $*" >&2; }
# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

stop() {
  local mnt="$1" pid="$2"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if is_mounted "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
}

cleanup() {
  set +e
  stop "$SMNT" "$SLAYER_PID"
  stop "$PMNT" "$PEER_PID"
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  [ -n "${S3_DATA_DIR:-}" ] && rm -rf "$S3_DATA_DIR"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_mounted() {
  for _ in $(seq 1 600); do
    if is_mounted "$1" && stat "$1" >/dev/null 2>&1; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "$1: daemon exited"; tail -20 "$WORK"/*.log >&2; return 1; }
    sleep 0.1
  done
  return 1
}

mount_slayer() {
  rm -rf "$WORK/home/cache"
  (cd "$REPO" && SLAYERFS_HOME="$WORK/home" exec "$DENO" run -A cli.ts mount --foreground \
    "sqlite3://$WORK/slayer/meta.db" "$SMNT" >>"$WORK/slayer.log" 2>&1) &
  SLAYER_PID=$!
  wait_mounted "$SMNT" "$SLAYER_PID"
}

mount_peer() {
  if [ "$MODE" = local ]; then
    bindfs -f "$WORK/peer-src" "$PMNT" &
  else
    s3fs peer "$PMNT" -f -o "passwd_file=$WORK/s3fs.passwd,url=$S3_ENDPOINT" \
      -o use_path_request_style,endpoint="$AWS_REGION" >>"$WORK/peer.log" 2>&1 &
  fi
  PEER_PID=$!
  wait_mounted "$PMNT" "$PEER_PID"
}

hwm() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

if [ "$MODE" = s3 ]; then
  start_s3_server
  (cd "$REPO" && "$DENO" run -A "$HERE/peers_s3.ts" mkbucket slayerfs peer)
  printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/s3fs.passwd"
  chmod 600 "$WORK/s3fs.passwd"
  STORAGE="s3://slayerfs/vol?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
else
  STORAGE="file://$WORK/slayer/blocks"
fi
(cd "$REPO" && SLAYERFS_HOME="$WORK/home" "$DENO" run -A cli.ts format --storage "$STORAGE" \
  "sqlite3://$WORK/slayer/meta.db" randseg) >/dev/null

PEER=$([ "$MODE" = local ] && echo bindfs || echo s3fs)
for fs in "$PEER" slayerfs; do
  log "$fs: write $SIZE"
  if [ "$fs" = slayerfs ]; then mount_slayer; mnt="$SMNT"; else mount_peer; mnt="$PMNT"; fi
  FIO_FILE="$mnt/fio.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
  # The file the cold phase reads: never read before, so no predictive-prefetch pattern replays.
  FIO_FILE="$mnt/cold.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
  if [ "$fs" = slayerfs ]; then
    # The issue's RSS measure: the same fresh mount writes, then reads at random for FIO_RUNTIME.
    drop_caches
    log "$fs: random 4K reads on the writing mount, ${FIO_RUNTIME}s"
    out="$(FIO_FILE="$mnt/fio.dat" fio --output-format=json "$HERE/fio/rand-read.fio")"
    record rand-read-iops-same-mount slayerfs "$(jq '[.jobs[] | .read.iops] | add | floor' <<<"$out")"
    record hwm-write-then-read-MiB slayerfs "$(hwm "$SLAYER_PID")"
    stop "$SMNT" "$SLAYER_PID"; drop_caches; mount_slayer
  else
    stop "$PMNT" "$PEER_PID"; drop_caches; mount_peer
  fi
  log "$fs: cold random 4K reads, ${FIO_RUNTIME}s"
  out="$(FIO_FILE="$mnt/cold.dat" fio --output-format=json "$HERE/fio/rand-read.fio")"
  record rand-read-iops "$fs" "$(jq '[.jobs[] | .read.iops] | add | floor' <<<"$out")"
  if [ "$fs" = slayerfs ]; then
    record hwm-cold-read-MiB slayerfs "$(hwm "$SLAYER_PID")"
    stop "$SMNT" "$SLAYER_PID"; SLAYER_PID=""
  else
    stop "$PMNT" "$PEER_PID"; PEER_PID=""
  fi
done

echo "randread_seg MODE=$MODE $(date -u +%Y-%m-%dT%H:%MZ) size $SIZE runtime ${FIO_RUNTIME}s load $(cut -d' ' -f1-3 /proc/loadavg) commit $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)"
cat "$RESULTS"
