#!/usr/bin/env bash
# A cold sequential read of an object that `slayerfs import` made a file of, against s3fs reading
# the same object, on ONE s3rver process (issue #14). Prints ONE table.
#
# One object of SIZE random bytes is put by the plain AWS SDK (multipart, 64 MiB parts) into the
# bucket `data`; a SlayerFS volume (SQLite metadata, its own blocks in the bucket `vol` of the same
# server) imports it with `slayerfs import` (no byte copied); then, ROUNDS times, each of:
#   slayerfs  a fresh mount (new daemon, its disk cache folder emptied), dropped kernel caches,
#             `dd bs=1M` of the imported file to /dev/null: every byte comes from the object by
#             ranged GETs.
#   s3fs      a fresh s3fs mount of the bucket `data` (no local cache: s3fs's default), dropped
#             kernel caches, `dd bs=1M` of the object to /dev/null.
#   native    (NATIVE=1) the same cold read of a file of SIZE written through the mount before
#             (its own blocks in the bucket `vol`): what the import adds or saves.
#   client    the plain SDK's rates on the same server: one GET of the whole object as a single
#             stream, and bench/s3_client_bench.ts (PUT then GET of SIZE in 4 MiB objects, 16 at
#             once; the GET rate is the one shown).
#
# Needs root (mount, drop_caches), s3fs, node/npm (s3rver), fusermount3.
# Tunables (environment): SIZE=1G  ROUNDS=2  NATIVE=1  SLAYER_MOUNT_OPTS="" (extra `slayerfs mount` options)
# Usage: bash bench/import_read.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
[ -x "$DENO" ] || { echo "${0##*/}: no deno: run ./dev test once (it installs Deno) or set DENO" >&2; exit 1; }
SIZE="${SIZE:-1G}"
ROUNDS="${ROUNDS:-2}"
NATIVE="${NATIVE:-1}"
SLAYER_MOUNT_OPTS="${SLAYER_MOUNT_OPTS:-}"
SIZE_BYTES="$(numfmt --from=iec "$SIZE")"
KEY="ds/big.bin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-import-read.XXXXXX")"
RESULTS="$WORK/results.tsv"
ENV_FILE="$WORK/s3.env"
SERVER_PID=""
SLAYER_PID=""
S3FS_PID=""
SLAYER_MNT="$WORK/mnt-slayerfs"
S3FS_MNT="$WORK/mnt-s3fs"
META="sqlite3://$WORK/slayer/meta.db"
: >"$RESULTS"

log() { echo "[import-read $(date +%T)] $*" >&2; }

# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

cleanup() {
  local status=$?
  set +e
  trap - INT TERM
  stop_daemon "$SLAYER_MNT" "$SLAYER_PID"
  stop_daemon "$S3FS_MNT" "$S3FS_PID"
  finish_s3_run "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

helper() { (cd "$REPO" && "$DENO" run -A "$HERE/import_read.ts" "$@"); }
slayer() { (cd "$REPO" && SLAYERFS_HOME="$WORK/slayer-home" "$DENO" run -A cli.ts "$@"); }
mibps() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }'; }

# timed_dd ROUND NAME FILE: reads FILE with dd bs=1M, checks the byte count, records MiB/s.
timed_dd() {
  local t0 t1 bytes
  t0=$(now_ms)
  bytes="$(dd if="$3" of=/dev/null bs=1M 2>&1 | awk '/bytes/ { print $1 }')"
  t1=$(now_ms)
  [ "$bytes" = "$SIZE_BYTES" ] || { log "$2 read $bytes bytes of $SIZE_BYTES"; return 1; }
  log "$2: $(mibps "$SIZE_BYTES" $((t1 - t0))) MiB/s ($((t1 - t0)) ms)"
  printf '%s\t%s\t%s\n' "$1" "$2" "$(mibps "$SIZE_BYTES" $((t1 - t0)))" >>"$RESULTS"
}

# mount_slayerfs: a fresh daemon on an empty disk cache, kernel caches dropped.
mount_slayerfs() {
  rm -rf "$WORK/slayer-home/cache"
  drop_caches
  mkdir -p "$SLAYER_MNT"
  # shellcheck disable=SC2086 # SLAYER_MOUNT_OPTS is a list of options
  (cd "$REPO" && SLAYERFS_HOME="$WORK/slayer-home" exec "$DENO" run -A \
    --v8-flags=--max-old-space-size=1024 cli.ts mount --foreground $SLAYER_MOUNT_OPTS \
    "$META" "$SLAYER_MNT" >>"$WORK/slayerfs.log" 2>&1) &
  SLAYER_PID=$!
  wait_for_mount "$SLAYER_MNT" slayerfs "$SLAYER_PID" "$WORK/slayerfs.log"
}

umount_slayerfs() {
  stop_daemon "$SLAYER_MNT" "$SLAYER_PID"
  SLAYER_PID=""
}

read_slayerfs() {
  mount_slayerfs
  timed_dd "$1" slayerfs "$SLAYER_MNT/datasets/$KEY"
  umount_slayerfs
  if [ "$NATIVE" = 1 ]; then
    mount_slayerfs
    timed_dd "$1" native "$SLAYER_MNT/native.bin"
    umount_slayerfs
  fi
}

read_s3fs() {
  drop_caches
  mkdir -p "$S3FS_MNT"
  s3fs data "$S3FS_MNT" -f -o "passwd_file=$WORK/s3fs.passwd,url=$S3_ENDPOINT" \
    -o use_path_request_style,endpoint="$AWS_REGION" >>"$WORK/s3fs.log" 2>&1 &
  S3FS_PID=$!
  wait_for_mount "$S3FS_MNT" s3fs "$S3FS_PID" "$WORK/s3fs.log"
  timed_dd "$1" s3fs "$S3FS_MNT/$KEY"
  stop_daemon "$S3FS_MNT" "$S3FS_PID"
  S3FS_PID=""
}

read_client() {
  local v
  v="$(helper get data "$KEY")"
  log "plain SDK, one GET: $v MiB/s"
  printf '%s\tclient-get-one\t%s\n' "$1" "$v" >>"$RESULTS"
  v="$(cd "$REPO" && "$DENO" run -A "$HERE/s3_client_bench.ts" plain "$SIZE" 4M 16 |
    awk -F'\t' '$1 == "client-get" { print $2 }')"
  log "plain SDK, parallel GET: $v MiB/s"
  printf '%s\tclient-get\t%s\n' "$1" "$v" >>"$RESULTS"
}

log "work dir $WORK"
for tool in s3fs node fusermount3; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y s3fs nodejs fuse3)"; exit 1; }
done
log "starting s3rver"
(cd "$REPO" && exec "$DENO" run -A "$HERE/peers_s3.ts" server "$ENV_FILE" $$ >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
for _ in $(seq 1 1200); do
  [ -f "$ENV_FILE" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { log "s3rver failed:"; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$ENV_FILE" ] || { log "s3rver did not start"; exit 1; }
# shellcheck disable=SC1090
source "$ENV_FILE"
log "s3rver at $S3_ENDPOINT"
(cd "$REPO" && "$DENO" run -A "$HERE/peers_s3.ts" mkbucket data vol plain)
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/s3fs.passwd"
chmod 600 "$WORK/s3fs.passwd"

log "putting $KEY ($SIZE) with the plain SDK"
etag="$(helper put data "$KEY" "$SIZE")"
log "ETag $etag"
S3_PARAMS="endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
mkdir -p "$WORK/slayer"
slayer format --storage "s3://vol/vol?$S3_PARAMS" "$META" imp >/dev/null
t0=$(now_ms)
slayer import -q "$META" "s3://data/ds/?$S3_PARAMS" /datasets/ds
log "imported in $(($(now_ms) - t0)) ms (process start included)"
if [ "$NATIVE" = 1 ]; then
  log "writing native.bin ($SIZE) through the mount"
  mount_slayerfs
  head -c "$SIZE_BYTES" /dev/urandom | dd of="$SLAYER_MNT/native.bin" bs=1M iflag=fullblock conv=fsync status=none
  umount_slayerfs
fi

for round in $(seq 1 "$ROUNDS"); do
  log "round $round"
  read_slayerfs "$round"
  read_s3fs "$round"
  read_client "$round"
done

echo
echo "Cold sequential read of an imported $SIZE object, one s3rver — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
helper table "$RESULTS"
