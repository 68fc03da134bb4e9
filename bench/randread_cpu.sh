#!/usr/bin/env bash
# Daemon CPU per cold random 4 KiB read, A/B between code trees (a measure that survives load):
# one volume is written once (SIZE, fio 1 MiB writes), then for ROUNDS rounds each tree in TREES
# mounts it fresh (empty disk cache, dropped kernel caches) and fio reads READS random 4 KiB
# pages of the file (one job, psync, the same offsets every time). Printed per mount: IOPS, the
# daemon's CPU (utime+stime from /proc/PID/stat) per read in µs, with PERF=1 its context switches,
# page faults and futex calls per read (perf stat), and with STRACE=1 the system calls per read
# (strace -c -f on the daemon: slows it down, so IOPS are then meaningless).
#   MODE=local  file:// storage + SQLite (no disk cache, as `slayerfs mount` sets it up)
#   MODE=s3     s3:// on one s3rver + SQLite (a disk cache tier, the default for remote storage)
# Usage: TREES="/path/old /path/new" MODE=local bash bench/randread_cpu.sh
# A tree is a checkout (run with this one's deno); `TREE|ARG,ARG` adds mount arguments, e.g.
# "$PWD|-o,loop_spin_us=0". Needs root, fio and jq.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
MODE="${MODE:-local}"
SIZE="${SIZE:-1G}"
READS="${READS:-20000}"
ROUNDS="${ROUNDS:-3}"
TREES="${TREES:-$REPO}"
STRACE="${STRACE:-0}"
PERF="${PERF:-0}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-rrcpu.XXXXXX")"
ENV_FILE="$WORK/s3.env"
SERVER_PID=""
SLAYER_PID=""
MNT="$WORK/mnt"
mkdir -p "$MNT" "$WORK/slayer"
log() { echo "[rrcpu $(date +%T)] $*" >&2; }
RESULTS="$WORK/results.tsv"
# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

cleanup() {
  set +e
  stop_daemon "$MNT" "$SLAYER_PID"
  if [ "$MODE" = s3 ]; then finish_s3_run 0; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_tree() {
  local dir="${1%%|*}" extra=()
  [ "$dir" != "$1" ] && IFS=, read -r -a extra <<<"${1#*|}"
  rm -rf "$WORK/home/cache"
  (cd "$dir" && SLAYERFS_HOME="$WORK/home" exec "$DENO" run -A cli.ts mount --foreground \
    "${extra[@]}" "sqlite3://$WORK/slayer/meta.db" "$MNT" >>"$WORK/slayer.log" 2>&1) &
  SLAYER_PID=$!
  wait_for_mount "$MNT" slayerfs "$SLAYER_PID" "$WORK/slayer.log"
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

if [ "$MODE" = s3 ]; then
  start_s3_server
  (cd "$REPO" && "$DENO" run -A "$HERE/peers_s3.ts" mkbucket slayerfs)
  STORAGE="s3://slayerfs/vol?endpoint=$S3_ENDPOINT&region=$AWS_REGION&path_style=true"
else
  STORAGE="file://$WORK/slayer/blocks"
fi
(cd "$REPO" && SLAYERFS_HOME="$WORK/home" "$DENO" run -A cli.ts format --storage "$STORAGE" \
  "sqlite3://$WORK/slayer/meta.db" rrcpu) >/dev/null

first="${TREES%% *}"
log "write $SIZE with $first"
mount_tree "$first"
FIO_SIZE="$SIZE" FIO_FILE="$MNT/cold.dat" fio --output-format=json "$HERE/fio/seq-write.fio" >/dev/null
stop_daemon "$MNT" "$SLAYER_PID"

HZ="$(getconf CLK_TCK)"
printf 'round\ttree\tIOPS\tcpu_us_per_read\tsyscalls_per_read\tcs/faults/futex_per_read\tload1\n'
for round in $(seq 1 "$ROUNDS"); do
  for tree in $TREES; do
    drop_caches
    mount_tree "$tree"
    t0="$(ticks "$SLAYER_PID")"
    spid=""
    if [ "$STRACE" = 1 ]; then
      strace -c -f -p "$SLAYER_PID" -o "$WORK/strace.txt" 2>/dev/null &
      spid=$!
      sleep 1
    fi
    ppid=""
    if [ "$PERF" = 1 ]; then
      perf stat -x, -e context-switches,page-faults,syscalls:sys_enter_futex -p "$SLAYER_PID" \
        -o "$WORK/perf.txt" &
      ppid=$!
      sleep 0.5
    fi
    out="$(fio --output-format=json --name=rr --ioengine=psync --bs=4k --size="$SIZE" \
      --filename="$MNT/cold.dat" --rw=randread --randrepeat=1 --number_ios="$READS" \
      --io_size="$((READS * 4))k")"
    t1="$(ticks "$SLAYER_PID")"
    sc="-"
    if [ -n "$spid" ]; then
      kill -INT "$spid"
      wait "$spid" 2>/dev/null || true
      sc="$(awk '/^-+ -+/ { n++ } n == 2 && $0 ~ /total/ { print $4; exit }' "$WORK/strace.txt")"
      sc="$(awk -v s="$sc" -v r="$READS" 'BEGIN { printf "%.1f", s / r }')"
    fi
    pf="-"
    if [ -n "$ppid" ]; then
      kill -INT "$ppid"
      wait "$ppid" 2>/dev/null || true
      pf="$(awk -F, -v r="$READS" '$3 ~ /context-switches|page-faults|futex/ { v[$3] = $1 }
        END { printf "%.1f/%.1f/%.1f", v["context-switches"] / r, v["page-faults"] / r,
          v["syscalls:sys_enter_futex"] / r }' "$WORK/perf.txt")"
    fi
    iops="$(jq '[.jobs[] | .read.iops] | add | floor' <<<"$out")"
    cpu="$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v r="$READS" 'BEGIN { printf "%.0f", d / hz * 1e6 / r }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$(basename "${tree%%|*}")${tree#"${tree%%|*}"}" "$iops" "$cpu" "$sc" "$pf" \
      "$(cut -d' ' -f1 /proc/loadavg)"
    stop_daemon "$MNT" "$SLAYER_PID"
    SLAYER_PID=""
  done
done
echo "randread_cpu MODE=$MODE $(date -u +%Y-%m-%dT%H:%MZ) size $SIZE reads $READS"
