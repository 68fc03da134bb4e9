#!/usr/bin/env bash
# SlayerFS against its S3 peers, from one run on ONE s3rver process: SlayerFS (s3:// storage +
# SQLite metadata), s3fs (Debian) and rclone mount (Debian, --vfs-cache-mode full), each on its own
# bucket, plus a plain parallel S3 client (AWS SDK, 4 MiB objects, concurrency 16) measuring the
# server's own PUT/GET throughput, and bindfs (local disk) as the reference for warm reads.
# Prints ONE table.
#
# What the rows mean:
#   seq write    fio 1 MiB writes + fsync; the clock stops when the data is durable in S3: when fio
#                returns for SlayerFS (close/fsync return after upload), and when HEAD shows the
#                whole object for s3fs and rclone (rclone uploads after close, --vfs-write-back 0s).
#   cold         a fresh mount (daemon restarted; rclone's VFS cache dir and SlayerFS's disk cache
#                dir emptied) and dropped kernel caches. SlayerFS's metadata is local SQLite, so only its data is cold.
#   warm         read again right after the cold sequential read.
#   small files  create includes, for rclone, the wait until every file is an object in S3.
#   tar -x       tar + sync; for rclone also until every file is an object in S3.
#   find         over the extracted tree, cold. For rclone, empty directory-marker objects are put
#                (untimed) before the remount: s3rver 3.7.1 omits "directories" that hold only
#                subdirectories from delimiter listings, and rclone 1.60 writes no markers.
#   RSS          the SlayerFS daemon's VmHWM on a fresh mount while streaming RSS_MB in and out.
#
# Needs root (mount, drop_caches), fio, jq, bindfs, s3fs, rclone, node/npm (s3rver), fusermount3.
# Tunables (environment):
#   SIZE=1G  FIO_RUNTIME=15  SMALL_FILES=2000  TREE_FILES=2000  RSS_MB=4096  CLIENT_CONC=16
#   ONLY="slayerfs s3fs rclone"  (which filesystems)   BINDFS=1 (0 skips the warm-read reference)
#   SLAYER_S3_PARAMS="&http=node"  (appended to SlayerFS's storage URL, for A/B runs)
# Usage: bash bench/peers_s3.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
[ -x "$DENO" ] || { echo "${0##*/}: no deno: run ./dev test once (it installs Deno) or set DENO" >&2; exit 1; }
SIZE="${SIZE:-1G}"
export FIO_SIZE="$SIZE"
export FIO_RUNTIME="${FIO_RUNTIME:-15}"
SMALL_FILES="${SMALL_FILES:-2000}"
TREE_FILES="${TREE_FILES:-2000}"
RSS_MB="${RSS_MB:-4096}"
CLIENT_CONC="${CLIENT_CONC:-16}"
ONLY="${ONLY:-slayerfs s3fs rclone}"
SLAYER_S3_PARAMS="${SLAYER_S3_PARAMS:-}"
BINDFS="${BINDFS:-1}"
SIZE_BYTES="$(numfmt --from=iec "$SIZE")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-peers-s3.XXXXXX")"
RESULTS="$WORK/results.tsv"
ENV_FILE="$WORK/s3.env"
SERVER_PID=""
declare -A PID=([slayerfs]="" [s3fs]="" [rclone]="")
declare -A MNT=([slayerfs]="$WORK/mnt-slayerfs" [s3fs]="$WORK/mnt-s3fs" [rclone]="$WORK/mnt-rclone")
declare -A BUCKET=([slayerfs]="slayerfs" [s3fs]="s3fs" [rclone]="rclone")
BINDFS_SRC="$WORK/bindfs-src"
BINDFS_MNT="$WORK/mnt-bindfs"
: >"$RESULTS"

log() { echo "[peers-s3 $(date +%T)] $*" >&2; }

# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

helper() { (cd "$REPO" && "$DENO" run -A "$HERE/peers_s3.ts" "$@"); }

cleanup() {
  local status=$? fs
  set +e
  trap - INT TERM
  for fs in slayerfs s3fs rclone; do stop_daemon "${MNT[$fs]}" "${PID[$fs]}"; done
  is_mounted "$BINDFS_MNT" && { fusermount3 -u "$BINDFS_MNT" || fusermount3 -u -z "$BINDFS_MNT"; }
  finish_s3_run "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



mibps() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }'; }


mount_fs() {
  local fs="$1" mnt="${MNT[$1]}" logf="$WORK/$1.log"
  mkdir -p "$mnt"
  case "$fs" in
    slayerfs)
      (cd "$REPO" && SLAYERFS_HOME="$WORK/slayer-home" exec "$DENO" run -A \
        --v8-flags=--max-old-space-size=1024 cli.ts mount \
        --foreground "sqlite3://$WORK/slayer/meta.db" "$mnt" >>"$logf" 2>&1) &
      ;;
    s3fs)
      s3fs "${BUCKET[s3fs]}" "$mnt" -f -o "passwd_file=$WORK/s3fs.passwd,url=$S3_ENDPOINT" \
        -o use_path_request_style,endpoint="$AWS_REGION" >>"$logf" 2>&1 &
      ;;
    rclone)
      # rclone's AWS SDK fails on an AWS_CA_BUNDLE in the environment with a plain-http endpoint.
      env -u AWS_CA_BUNDLE rclone mount "s3rv:${BUCKET[rclone]}" "$mnt" --config "$WORK/rclone.conf" \
        --vfs-cache-mode full --vfs-write-back 0s --cache-dir "$WORK/rclone-cache" \
        --log-file "$logf" ${PEERS_RCLONE_VV:+-vv} &
      ;;
  esac
  PID[$fs]=$!
  wait_for_mount "$mnt" "$fs" "${PID[$fs]}" "$logf"
}

umount_fs() {
  local fs="$1"
  stop_daemon "${MNT[$fs]}" "${PID[$fs]}"
  PID[$fs]=""
}

# A cold start: fresh daemon, empty rclone VFS cache and SlayerFS disk cache, dropped kernel caches.
remount_cold() {
  local fs="$1"
  umount_fs "$fs"
  [ "$fs" = rclone ] && rm -rf "$WORK/rclone-cache"
  [ "$fs" = slayerfs ] && rm -rf "$WORK/slayer-home/cache"
  drop_caches
  mount_fs "$fs"
}

# watch_start KIND ARGS...: starts `peers_s3.ts watch-KIND ARGS...`, which reports when S3 holds
# the data once the clock has stopped (for filesystems that upload after returning).
WATCHER=""
watch_start() {
  rm -f "$WORK/go"
  helper "watch-$1" "${@:2}" 900 "$WORK/go" >"$WORK/watch.out" &
  WATCHER=$!
  sleep 2 # let the watcher start before the clock does
}

# watch_end FS WHAT: after the caller's clock stopped (its t0 and t1), waits for the watcher, if
# any, and moves t1 to the time S3 held everything.
watch_end() {
  local tw
  touch "$WORK/go"
  [ -n "$WATCHER" ] || return 0
  wait "$WATCHER"
  WATCHER=""
  tw="$(cat "$WORK/watch.out")"
  if [ "$tw" -gt "$t1" ]; then
    note "$1" "$2: returned after $((t1 - t0)) ms, all in S3 after $((tw - t0)) ms"
    t1="$tw"
  fi
}

# Timed sequential write until durable in S3 (see the header).
seq_write_durable() {
  local fs="$1" mnt="${MNT[$1]}" t0 t1
  rm -f "$mnt/fio.dat"
  if [ "$fs" != slayerfs ]; then watch_start object "${BUCKET[$fs]}" fio.dat "$SIZE_BYTES"; fi
  t0=$(now_ms)
  FIO_FILE="$mnt/fio.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
  t1=$(now_ms)
  watch_end "$fs" "seq write"
  record seq-write "$fs" "$(mibps "$SIZE_BYTES" $((t1 - t0)))"
}

bench_fs() {
  local fs="$1" mnt="${MNT[$1]}" t0 t1
  log "$fs: sequential write $SIZE (durable)"
  seq_write_durable "$fs"
  remount_cold "$fs"
  log "$fs: sequential read (cold, then warm)"
  run_fio seq-read "$fs" "$mnt" seq-read bw
  run_fio seq-read "$fs" "$mnt" seq-read-warm bw
  log "$fs: random read 4K warm (${FIO_RUNTIME}s)"
  run_fio rand-read "$fs" "$mnt" rand-read-warm iops
  remount_cold "$fs"
  log "$fs: random read 4K cold (${FIO_RUNTIME}s)"
  run_fio rand-read "$fs" "$mnt" rand-read iops
  rm -f "$mnt/fio.dat"

  log "$fs: $SMALL_FILES small files"
  local wait_args=()
  [ "$fs" = rclone ] && wait_args=("${BUCKET[$fs]}" small/)
  helper smallfiles "$mnt/small" "$SMALL_FILES" "${wait_args[@]}" |
    while IFS=$'\t' read -r metric ms; do record "$metric" "$fs" "$ms"; done

  log "$fs: tar -x and find over $TREE_FILES files"
  mkdir -p "$mnt/tree"
  sync
  if [ "$fs" = rclone ]; then watch_start count "${BUCKET[$fs]}" tree/ "$TREE_FILES"; fi
  t0=$(now_ms)
  tar -xf "$WORK/tree.tar" -C "$mnt/tree"
  sync
  t1=$(now_ms)
  watch_end "$fs" "tar -x"
  record tar-x "$fs" $((t1 - t0))
  if [ "$fs" = rclone ]; then
    # Untimed workaround for an s3rver bug (see `markers` in peers_s3.ts): without directory
    # objects, rclone would not see tree/ and its subdirectories after the remount.
    { echo tree/; tar -tf "$WORK/tree.tar" | sed -n 's|^\./\(.*/\)$|tree/\1|p'; } |
      helper markers "${BUCKET[$fs]}"
  fi
  remount_cold "$fs"
  t0=$(now_ms)
  find "$mnt/tree" >/dev/null
  record find "$fs" $(($(now_ms) - t0))
  note "$fs" "daemon peak RSS (VmHWM) over the cold find: $(awk '/^VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/${PID[$fs]}/status")"
}

bench_bindfs() {
  log "bindfs: warm reads (reference)"
  mkdir -p "$BINDFS_SRC" "$BINDFS_MNT"
  bindfs "$BINDFS_SRC" "$BINDFS_MNT"
  wait_for_mount "$BINDFS_MNT" bindfs
  FIO_FILE="$BINDFS_MNT/fio.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
  FIO_FILE="$BINDFS_MNT/fio.dat" fio --output-format=json "$HERE/fio/seq-read.fio" >/dev/null
  run_fio seq-read bindfs "$BINDFS_MNT" seq-read-warm bw
  run_fio rand-read bindfs "$BINDFS_MNT" rand-read-warm iops
  rm -f "$BINDFS_MNT/fio.dat"
  fusermount3 -u "$BINDFS_MNT"
}

# The plain client, PUT then GET of SIZE in 4 MiB objects; run at the start and at the end.
bench_client() {
  local tag="$1"
  log "plain S3 client ($tag): PUT/GET $SIZE, 4 MiB objects, concurrency $CLIENT_CONC"
  (cd "$REPO" && "$DENO" run -A "$HERE/s3_client_bench.ts" plain "$SIZE" 4M "$CLIENT_CONC") |
    while IFS=$'\t' read -r metric v; do
      printf '%s\t%s\n' "$metric" "$v" >>"$WORK/client.tsv"
      note "S3 client ($tag)" "$metric $v MiB/s"
    done
}

log "work dir $WORK"
for tool in fio jq s3fs rclone node; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install -y fio jq s3fs rclone nodejs)"; exit 1; }
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
helper mkbucket plain slayerfs s3fs rclone

printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/s3fs.passwd"
chmod 600 "$WORK/s3fs.passwd"
cat >"$WORK/rclone.conf" <<EOF
[s3rv]
type = s3
provider = Other
endpoint = $S3_ENDPOINT
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
region = $AWS_REGION
force_path_style = true
EOF
chmod 600 "$WORK/rclone.conf"

"$DENO" run -A "$HERE/peers.ts" maketree "$WORK/tree-src" "$TREE_FILES"
tar -cf "$WORK/tree.tar" -C "$WORK/tree-src" .
rm -rf "$WORK/tree-src"

bench_client start
[ "$BINDFS" = 1 ] && bench_bindfs

for fs in slayerfs s3fs rclone; do
  [[ " $ONLY " == *" $fs "* ]] || continue
  if [ "$fs" = slayerfs ]; then
    mkdir -p "$WORK/slayer"
    (cd "$REPO" && SLAYERFS_HOME="$WORK/slayer-home" "$DENO" run -A cli.ts format \
      --storage "s3://${BUCKET[slayerfs]}/vol?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true$SLAYER_S3_PARAMS" \
      "sqlite3://$WORK/slayer/meta.db" peers) >/dev/null
  fi
  mount_fs "$fs"
  bench_fs "$fs"
  if [ "$fs" = slayerfs ]; then
    log "slayerfs: streaming $RSS_MB MiB in and out on a fresh mount for peak RSS"
    remount_cold slayerfs
    stream_mb=$(((RSS_MB + 63) / 64 * 64))
    dd if=/dev/urandom of="$WORK/rand64" bs=1M count=64 status=none
    t0=$(now_ms)
    # 64 MiB of random data repeated: incompressible blocks, without /dev/urandom's cost per byte.
    for _ in $(seq 1 $((stream_mb / 64))); do cat "$WORK/rand64"; done |
      dd of="${MNT[slayerfs]}/stream" bs=1M iflag=fullblock conv=fsync status=none
    t1=$(now_ms)
    rm -f "$WORK/rand64"
    drop_caches
    dd if="${MNT[slayerfs]}/stream" of=/dev/null bs=1M status=none
    t2=$(now_ms)
    hwm="$(awk '/^VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/${PID[slayerfs]}/status")"
    note slayerfs "daemon peak RSS (VmHWM) streaming $stream_mb MiB in ($(mibps $((stream_mb * 1048576)) $((t1 - t0))) MiB/s) and out ($(mibps $((stream_mb * 1048576)) $((t2 - t1))) MiB/s) on a fresh mount: $hwm"
    rm -f "${MNT[slayerfs]}/stream"
  fi
  umount_fs "$fs"
done

bench_client end
# The server's throughput on this run: the mean of the start and end client runs.
awk -F'\t' '{ s[$1] += $2; n[$1]++ } END { for (k in s) printf "%s\tclient\t%.1f\n", k, s[k] / n[k] }' \
  "$WORK/client.tsv" >>"$RESULTS"

echo
echo "SlayerFS vs S3 peers on one s3rver — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), size $SIZE, $SMALL_FILES small files, $TREE_FILES-file tree"
helper table "$RESULTS"
