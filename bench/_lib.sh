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
