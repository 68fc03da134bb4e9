#!/usr/bin/env bash
# The daemon's peak resident memory per workload phase, on one default mount (SQLite metadata +
# file:// blocks on local disk, `--v8-flags=--max-old-space-size=1024` as `deno task mount` and
# the daemonized mount run it). Before each phase the peak (VmHWM) is reset (`echo 5 >
# /proc/PID/clear_refs`), so each row is that phase's own peak; a sampler reads /proc/PID/status
# and the metrics endpoint every 0.2 s and keeps, per phase, the largest RssAnon and RssFile and
# the largest V8 heap and external (ArrayBuffer) memory the daemon reported. Prints one table.
#
# Phases: stream-in (dd STREAM_MB MiB, conv=fsync), stream-out (dd it back, caches dropped),
# fio-seq-write and fio-seq-read (FIO_SIZE, 1 MiB), fio-rand-4k (random 4 KiB reads for
# FIO_RUNTIME s over a RAND_MB MiB file written on the same mount just before), small-files,
# tar-x (peers.ts trees). "all phases" is the largest of the phase peaks.
#
# Needs root (mount, drop_caches, clear_refs), fio, jq, curl. Environment: STREAM_MB=4096
# FIO_SIZE=1G FIO_RUNTIME=15 RAND_MB=512 SMALL_FILES=2000 TREE_FILES=2000 PHASES="..." (a subset
# of the phase names, in any order; run in the order above), REPO (the checkout to mount;
# default: this one), PORT=19567 (the daemon's metrics port).
# Usage: bash bench/rss_phases.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="${REPO:-$(cd "$HERE/.." && pwd)}"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
[ -x "$DENO" ] || { echo "${0##*/}: no deno: set DENO" >&2; exit 1; }
STREAM_MB="${STREAM_MB:-4096}"
export FIO_SIZE="${FIO_SIZE:-1G}"
export FIO_RUNTIME="${FIO_RUNTIME:-15}"
RAND_MB="${RAND_MB:-512}"
SMALL_FILES="${SMALL_FILES:-2000}"
TREE_FILES="${TREE_FILES:-2000}"
PORT="${PORT:-19567}"
PHASES="${PHASES:-stream-in stream-out fio-seq-write fio-seq-read fio-rand-4k small-files tar-x}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/slayerfs-rss.XXXXXX")"
DIR="$WORK/vol"
MNT="$WORK/mnt"
PHASE_FILE="$WORK/phase"
SAMPLES="$WORK/samples.tsv"
ROWS="$WORK/rows.tsv"
RESULTS="$WORK/fio.tsv" # run_fio records here
PID=""
SAMPLER=""
: >"$ROWS"

log() { echo "[rss] $*" >&2; }

# shellcheck source=bench/_lib.sh
. "$HERE/_lib.sh"

cleanup() {
  set +e
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
  stop_daemon "$MNT" "$PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$PID/status"; }

# One line per 0.2 s: phase, VmRSS, RssAnon, RssFile (KiB), V8 heap total, external (bytes).
sample() {
  local heap ext m
  while kill -0 "$PID" 2>/dev/null; do
    m="$(curl -s -m 1 "http://127.0.0.1:$PORT/metrics" 2>/dev/null || true)"
    heap="$(awk '/^slayerfs_process_heap_total_bytes/ { print $2 }' <<<"$m")"
    ext="$(awk '/^slayerfs_process_external_memory_bytes/ { print $2 }' <<<"$m")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(cat "$PHASE_FILE")" "$(kib VmRSS)" "$(kib RssAnon)" \
      "$(kib RssFile)" "${heap:--}" "${ext:--}" >>"$SAMPLES"
    sleep 0.2
  done
}

# phase NAME COMMAND...: resets the peak, runs COMMAND, records the phase's peak and the
# daemon's CPU seconds and the wall time it took.
phase() {
  local name="$1" t0 cpu0 t1 cpu1
  shift
  [[ " $PHASES " == *" $name "* ]] || return 0
  log "$name"
  echo 5 >"/proc/$PID/clear_refs"
  echo "$name" >"$PHASE_FILE"
  t0=$(now_ms)
  cpu0=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  "$@"
  t1=$(now_ms)
  cpu1=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  sleep 0.3 # a last sample
  printf '%s\t%s\t%s\t%s\n' "$name" "$(kib VmHWM)" $((t1 - t0)) $((cpu1 - cpu0)) >>"$ROWS"
  echo idle >"$PHASE_FILE"
}

stream_in() {
  dd if=/dev/zero of="$MNT/stream" bs=1M count="$STREAM_MB" conv=fsync status=none
}
stream_out() { dd if="$MNT/stream" of=/dev/null bs=1M status=none; }
rand_4k() {
  FIO_FILE="$MNT/rand.dat" FIO_SIZE="${RAND_MB}M" fio --output-format=json \
    "$HERE/fio/rand-read.fio" >"$WORK/rand.json"
}
small_files() { "$DENO" run -A "$HERE/peers.ts" smallfiles "$MNT/small" "$SMALL_FILES" >/dev/null; }
tar_x() {
  mkdir -p "$MNT/tree"
  tar -xf "$WORK/tree.tar" -C "$MNT/tree"
  sync
}

mkdir -p "$DIR" "$MNT"
"$DENO" run -A "$HERE/peers.ts" maketree "$WORK/tree-src" "$TREE_FILES"
tar -cf "$WORK/tree.tar" -C "$WORK/tree-src" .
rm -rf "$WORK/tree-src"
(cd "$REPO" && "$DENO" run -A cli.ts format --storage "file://$DIR/blocks" \
  "sqlite3://$DIR/meta.db" rss) >/dev/null
(cd "$REPO" && exec "$DENO" run -A --v8-flags=--max-old-space-size=1024 cli.ts mount \
  --foreground --metrics "127.0.0.1:$PORT" "sqlite3://$DIR/meta.db" "$MNT" \
  >"$WORK/daemon.log" 2>&1) &
PID=$!
wait_for_mount "$MNT" slayerfs "$PID" "$WORK/daemon.log"
echo idle >"$PHASE_FILE"
sample &
SAMPLER=$!

phase stream-in stream_in
drop_caches
phase stream-out stream_out
rm -f "$MNT/stream"
phase fio-seq-write run_fio seq-write slayerfs "$MNT" seq-write bw
drop_caches
phase fio-seq-read run_fio seq-read slayerfs "$MNT" seq-read bw
rm -f "$MNT/fio.dat"
if [[ " $PHASES " == *" fio-rand-4k "* ]]; then
  dd if=/dev/urandom of="$MNT/rand.dat" bs=1M count="$RAND_MB" conv=fsync status=none
  drop_caches
fi
phase fio-rand-4k rand_4k
rm -f "$MNT/rand.dat"
phase small-files small_files
phase tar-x tar_x
rm -rf "$MNT/tree" "$MNT/small"

load="$(cut -d' ' -f1-3 /proc/loadavg)"
kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""

echo
echo "SlayerFS daemon peak RSS per phase — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
  "load $load, repo $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
tp_rand="$(jq '[.jobs[].read.iops] | add | floor' "$WORK/rand.json" 2>/dev/null || echo -)"
awk -F'\t' -v stream="$STREAM_MB" -v iops="$tp_rand" '
  FNR == NR {
    # samples: the largest of each column per phase
    for (i = 2; i <= 6; i++) if ($i != "-" && $i + 0 > max[$1, i] + 0) max[$1, i] = $i
    next
  }
  FNR == 1 {
    printf "%-14s %9s %9s %9s %9s %9s %8s %8s %s\n", "phase", "peak MiB", "anon", "file",
      "v8 heap", "external", "wall s", "cpu s", "rate"
  }
  {
    rate = ""
    if ($1 == "stream-in" || $1 == "stream-out") rate = sprintf("%.0f MiB/s", stream * 1000 / $3)
    if ($1 == "fio-rand-4k") rate = iops " IOPS"
    printf "%-14s %9.0f %9.0f %9.0f %9.0f %9.0f %8.1f %8.1f %s\n", $1, $2 / 1024,
      max[$1, 3] / 1024, max[$1, 4] / 1024, max[$1, 5] / 1048576, max[$1, 6] / 1048576,
      $3 / 1000, $4 / 100, rate
    if ($2 + 0 > top) top = $2
  }
  END { printf "%-14s %9.0f   (largest phase peak; anon/file/heap/external: sampled maxima)\n", "all phases", top / 1024 }
' "$SAMPLES" "$ROWS"
