#!/usr/bin/env bash
# Container starts from an image imported into SlayerFS with S3 (test server, +LATENCY_MS per GET):
# cold first, cold with startup prefetch, warm, and local disk, for busybox and (DEBIAN=1, the
# default) a Debian minbase from debootstrap. Prints one table; see bench/containers.ts.
# Tunables: LATENCY_MS=20 RUNS=3 DEBIAN=1 DEBIAN_ROOTFS=/path/to/existing/minbase
# Usage: sudo bash bench/containers.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DENO="${DENO:-$(command -v deno || echo "$REPO/.tools/node_modules/.bin/deno")}"
[ -x "$DENO" ] || { echo "${0##*/}: no deno: run ./dev test once (it installs Deno) or set DENO" >&2; exit 1; }
cd "$REPO"
exec "$DENO" run -A bench/containers.ts
