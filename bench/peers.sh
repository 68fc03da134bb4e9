#!/usr/bin/env bash
# SlayerFS against its peers, from one run: tmpfs, bindfs (a C FUSE passthrough over a local
# directory) and SlayerFS (file storage + SQLite metadata, both on local disk). Prints ONE table.
#
# Needs root (mount, drop_caches), fio, bindfs, fusermount3. Tunables (environment):
#   FIO_SIZE=1G  FIO_RUNTIME=15  SMALL_FILES=2000  TREE_FILES=2000  RSS_MB=4096
#   ONLY="tmpfs bindfs slayerfs"   (which columns to run)
# Usage: bash bench/peers.sh     (or: deno task bench)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
[ -x "$DENO" ] || { echo "${0##*/}: no deno: run ./dev test once (it installs Deno) or set DENO" >&2; exit 1; }
export FIO_SIZE="${FIO_SIZE:-1G}"
export FIO_RUNTIME="${FIO_RUNTIME:-15}"
SMALL_FILES="${SMALL_FILES:-2000}"
TREE_FILES="${TREE_FILES:-2000}"
RSS_MB="${RSS_MB:-4096}"
ONLY="${ONLY:-tmpfs bindfs slayerfs}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-peers.XXXXXX")"
RESULTS="$WORK/results.tsv"
TMPFS_MNT="$WORK/tmpfs"
BINDFS_SRC="$WORK/bindfs-src"
BINDFS_MNT="$WORK/bindfs"
SLAYER_DIR="$WORK/slayer"
SLAYER_MNT="$WORK/slayerfs"
SLAYER_PID=""
: >"$RESULTS"

log() { echo "[peers] $*" >&2; }

# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

cleanup() {
  set +e
  if is_mounted "$SLAYER_MNT"; then
    [ -n "$SLAYER_PID" ] && kill -TERM "$SLAYER_PID" 2>/dev/null
    for _ in $(seq 1 100); do is_mounted "$SLAYER_MNT" || break; sleep 0.1; done
    is_mounted "$SLAYER_MNT" && fusermount3 -u -z "$SLAYER_MNT"
  fi
  [ -n "$SLAYER_PID" ] && kill -KILL "$SLAYER_PID" 2>/dev/null
  is_mounted "$BINDFS_MNT" && fusermount3 -u -z "$BINDFS_MNT"
  is_mounted "$TMPFS_MNT" && umount -l "$TMPFS_MNT"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM




bench_fs() {
  local fs="$1" target="$2" t0
  log "$fs: fio sequential write $FIO_SIZE"
  run_fio seq-write "$fs" "$target" seq-write bw
  drop_caches
  log "$fs: fio sequential read"
  run_fio seq-read "$fs" "$target" seq-read bw
  drop_caches
  log "$fs: fio random read 4K (${FIO_RUNTIME}s)"
  run_fio rand-read "$fs" "$target" rand-read iops
  rm -f "$target/fio.dat"
  log "$fs: $SMALL_FILES small files"
  "$DENO" run -A "$HERE/peers.ts" smallfiles "$target/small" "$SMALL_FILES" |
    while IFS=$'\t' read -r metric ms; do record "$metric" "$fs" "$ms"; done
  log "$fs: tar -x and find over $TREE_FILES files"
  mkdir -p "$target/tree"
  sync
  t0=$(now_ms)
  tar -xf "$WORK/tree.tar" -C "$target/tree"
  sync
  record tar-x "$fs" $(($(now_ms) - t0))
  drop_caches
  t0=$(now_ms)
  find "$target/tree" >/dev/null
  record find "$fs" $(($(now_ms) - t0))
  rm -rf "$target/tree"
}

wait_mounted() {
  local mnt="$1" what="$2"
  for _ in $(seq 1 600); do
    if is_mounted "$mnt" && stat "$mnt" >/dev/null 2>&1; then return 0; fi
    if [ -n "$SLAYER_PID" ] && ! kill -0 "$SLAYER_PID" 2>/dev/null && [ "$what" = slayerfs ]; then
      log "slayerfs exited before mounting:"; cat "$SLAYER_DIR/daemon.log" >&2; return 1
    fi
    sleep 0.1
  done
  log "$what did not mount $mnt"; return 1
}

log "work dir $WORK"
"$DENO" run -A "$HERE/peers.ts" maketree "$WORK/tree-src" "$TREE_FILES"
tar -cf "$WORK/tree.tar" -C "$WORK/tree-src" .
rm -rf "$WORK/tree-src"

if [[ " $ONLY " == *" tmpfs "* ]]; then
  mkdir -p "$TMPFS_MNT"
  mount -t tmpfs -o size=8g slayerfs-peers "$TMPFS_MNT"
  bench_fs tmpfs "$TMPFS_MNT"
  umount "$TMPFS_MNT"
fi

if [[ " $ONLY " == *" bindfs "* ]]; then
  mkdir -p "$BINDFS_SRC" "$BINDFS_MNT"
  bindfs "$BINDFS_SRC" "$BINDFS_MNT"
  wait_mounted "$BINDFS_MNT" bindfs
  bench_fs bindfs "$BINDFS_MNT"
  fusermount3 -u "$BINDFS_MNT"
fi

if [[ " $ONLY " == *" slayerfs "* ]]; then
  mkdir -p "$SLAYER_DIR" "$SLAYER_MNT"
  (cd "$REPO" && "$DENO" run -A cli.ts format --storage "file://$SLAYER_DIR/blocks" \
    "sqlite3://$SLAYER_DIR/meta.db" peers) >/dev/null
  (cd "$REPO" && exec "$DENO" run -A --v8-flags=--max-old-space-size=1024 cli.ts mount \
    --foreground "sqlite3://$SLAYER_DIR/meta.db" "$SLAYER_MNT" >"$SLAYER_DIR/daemon.log" 2>&1) &
  SLAYER_PID=$!
  wait_mounted "$SLAYER_MNT" slayerfs
  bench_fs slayerfs "$SLAYER_MNT"
  log "slayerfs: streaming $RSS_MB MiB through the mount for peak RSS"
  dd if=/dev/zero of="$SLAYER_MNT/stream" bs=1M count="$RSS_MB" conv=fsync status=none
  drop_caches
  dd if="$SLAYER_MNT/stream" of=/dev/null bs=1M status=none
  rm -f "$SLAYER_MNT/stream"
  hwm="$(awk '/^VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$SLAYER_PID/status")"
  printf 'note\tslayerfs daemon peak RSS (VmHWM) after streaming %s MiB in and out\t%s\n' \
    "$RSS_MB" "$hwm" >>"$RESULTS"
  kill -TERM "$SLAYER_PID"
  for _ in $(seq 1 200); do is_mounted "$SLAYER_MNT" || break; sleep 0.1; done
  wait "$SLAYER_PID" 2>/dev/null || true
  SLAYER_PID=""
fi

echo
echo "SlayerFS vs peers — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), fio size $FIO_SIZE"
"$DENO" run -A "$HERE/peers.ts" table "$RESULTS"
