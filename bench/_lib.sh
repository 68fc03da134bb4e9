# Helpers shared by bench/peers.sh and bench/peers_s3.sh (sourced; they set HERE and RESULTS).
# shellcheck shell=bash

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || log "cannot drop caches; reads may be warm"
}

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
note() { printf 'note\t%s\t%s\n' "$1" "$2" >>"$RESULTS"; }

now_ms() { date +%s%3N; }

# fio JOB FS TARGET METRIC FIELD: runs bench/fio/JOB.fio on TARGET/fio.dat, records FIELD.
run_fio() {
  local job="$1" fs="$2" target="$3" metric="$4" field="$5" out
  out="$(FIO_FILE="$target/fio.dat" fio --output-format=json "$HERE/fio/$job.fio")"
  if [ "$field" = "bw" ]; then
    record "$metric" "$fs" "$(jq '[.jobs[] | (.read.bw_bytes + .write.bw_bytes)] | add / 1048576' <<<"$out")"
  else
    record "$metric" "$fs" "$(jq '[.jobs[] | (.read.iops + .write.iops)] | add' <<<"$out")"
  fi
}

# Unmounts MNT and waits for the daemon PID (may be empty) to exit; lazy unmount + SIGKILL last.
stop_daemon() {
  local mnt="$1" pid="$2"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if is_mounted "$mnt"; then
    umount "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
  if is_mounted "$mnt"; then fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; fi
}

# wait_for_mount MNT WHAT [PID [LOG]]: waits until MNT is mounted and answers; fails if the
# daemon PID exits first (printing the end of LOG) or after 60 s.
wait_for_mount() {
  local mnt="$1" what="$2" pid="${3:-}" logf="${4:-}"
  for _ in $(seq 1 600); do
    if is_mounted "$mnt" && stat "$mnt" >/dev/null 2>&1; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "$what exited before mounting:"; [ -n "$logf" ] && tail -20 "$logf" >&2; return 1
    fi
    sleep 0.1
  done
  log "$what did not mount $mnt"; return 1
}

# finish_s3_run STATUS: the end of an S3 bench run's cleanup: stops the test S3 server
# ($SERVER_PID) and removes its data ($S3_DATA_DIR, once $ENV_FILE was written), keeps the run's
# logs in $WORK.logs when STATUS is not 0, and removes $WORK.
finish_s3_run() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  [ -f "$ENV_FILE" ] && [ -n "${S3_DATA_DIR:-}" ] && rm -rf "$S3_DATA_DIR"
  if [ "$1" != 0 ] && [ -n "$(ls "$WORK"/*.log 2>/dev/null)" ]; then
    mkdir -p "$WORK.logs" && cp "$WORK"/*.log "$WORK.logs/" && log "failed; logs kept in $WORK.logs"
  fi
  rm -rf "$WORK"
}

# Starts the peers' s3rver (peers_s3.ts server) in the background, writing its address and
# credentials to $ENV_FILE and its log to $WORK/server.log, and sources $ENV_FILE once it exists.
# Sets SERVER_PID. Needs REPO, DENO, HERE, ENV_FILE and WORK.
start_s3_server() {
  (cd "$REPO" && exec "$DENO" run -A "$HERE/peers_s3.ts" server "$ENV_FILE" $$ >"$WORK/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do [ -f "$ENV_FILE" ] && break; sleep 0.1; done
  # shellcheck disable=SC1090
  source "$ENV_FILE"
}
