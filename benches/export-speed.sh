#!/usr/bin/env bash
# Export speed and server memory: a calltrail server on a filled data folder, one export at a
# time through the API, the server's resident memory before and its peak during each export.
#
#   cargo build --release
#   ./target/release/calltrail demo --data /tmp/m1 --calls 1000000 --no-live   # once, then Ctrl-C
#   benches/export-speed.sh /tmp/m1
set -euo pipefail
data=${1:?usage: export-speed.sh DATA_FOLDER}
bin=${CALLTRAIL_BIN:-./target/release/calltrail}
port=${PORT:-8097}
token=$(grep -o 'ct_[A-Za-z0-9_-]*' "$data/demo-logins.txt" | head -1)
"$bin" serve --data "$data" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid' EXIT
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
# Warm the page cache and the planner once, unmeasured.
curl -sf -H "Authorization: Bearer $token" -o /dev/null "http://127.0.0.1:$port/api/v1/calls/export?format=csv"
kb() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
echo "| export | rows | seconds | MB | server RSS before → peak (MB) |"
echo "|---|---|---|---|---|"
run() {
  local label=$1 query=$2
  echo 5 > "/proc/$pid/clear_refs"   # resets the peak (VmHWM) to the current size
  local before; before=$(kb VmRSS)
  local out; out=$(curl -sf -H "Authorization: Bearer $token" -o /tmp/export-speed.out -w '%{time_total} %{size_download}' \
    "http://127.0.0.1:$port/api/v1/calls/export?$query")
  local peak; peak=$(kb VmHWM)
  # The same search without the export's own parameters gives the row count.
  local search; search=$(echo "$query" | tr '&' '\n' | grep -Ev '^(format|lang|columns|delimiter)=' | paste -sd'&')
  local rows; rows=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/calls?limit=1&$search" | grep -o '"total":[0-9]*' | cut -d: -f2)
  set -- $out
  printf '| %s | %s | %.2f | %.1f | %d → %d (+%d) |\n' "$label" "$rows" "$1" "$(echo "$2/1048576" | bc -l)" \
    $((before / 1024)) $((peak / 1024)) $(((peak - before) / 1024))
}
run "CSV, all 18 columns, every call" "format=csv&lang=ru&tz=Europe/Moscow"
run "CSV, 6 columns, every call" "format=csv&lang=ru&columns=time,type,from,to,talk_duration,result&tz=Europe/Moscow"
run "XLSX, all 18 columns, every call" "format=xlsx&lang=ru&tz=Europe/Moscow"
run "CSV, 30 days, answered" "format=csv&lang=en&preset=last_30_days&result=answered&tz=Europe/Moscow"
