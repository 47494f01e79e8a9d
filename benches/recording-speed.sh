#!/usr/bin/env bash
# Recordings through the real server: upload and download throughput of one large file, the
# latency of range requests (what a player's seek costs), and the server's memory meanwhile.
#
#   cargo build --release
#   benches/recording-speed.sh [MEGABYTES]        # default 1024
set -euo pipefail
mb=${1:-1024}
bin=${CALLTRAIL_BIN:-./target/release/calltrail}
port=${PORT:-8098}
data=$(mktemp -d)
file=$(mktemp)
trap 'kill $pid 2>/dev/null; rm -rf "$data" "$file" /tmp/recording-speed.out' EXIT
echo "correct horse battery" | "$bin" user add --login bench --role owner --data "$data" >/dev/null
token=$("$bin" token create --login bench --data "$data")
"$bin" serve --data "$data" --listen "127.0.0.1:$port" --recording-max-mb $((mb + 1)) >/dev/null 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
# A WAV header, then noise.
{ printf 'RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00'
  head -c $((mb * 1048576 - 44)) /dev/urandom; } > "$file"
kb() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
base="http://127.0.0.1:$port"
auth="Authorization: Bearer $token"
curl -sf -H "$auth" -H 'Content-Type: application/json' -d '[{"external_id":"b1","kind":"incoming","scenario_started_at":"2026-11-10T09:00:00Z"}]' "$base/api/v1/ingest/calls" >/dev/null
echo 5 > "/proc/$pid/clear_refs"
before=$(kb VmRSS)
up=$(curl -sf -H "$auth" -H 'Content-Type: audio/wav' -T "$file" -o /dev/null -w '%{time_total}' "$base/api/v1/ingest/calls/b1/recording")
peak_up=$(kb VmHWM)
id=$(curl -sf -H "$auth" "$base/api/v1/calls?limit=1" | grep -o '"id":"[0-9]*"' | head -1 | cut -d'"' -f4)
echo 5 > "/proc/$pid/clear_refs"
down=$(curl -sf -H "$auth" -o /tmp/recording-speed.out -w '%{time_total}' "$base/api/v1/calls/$id/recording")
peak_down=$(kb VmHWM)
cmp -s "$file" /tmp/recording-speed.out && same=identical || same=DIFFERENT
# 200 seeks: 64 KiB at random offsets, each a new connection as a player's would be.
size=$((mb * 1048576))
times=$(for i in $(seq 200); do
  off=$(( (RANDOM * 32768 + RANDOM) % (size - 65536) ))
  curl -sf -H "$auth" -H "Range: bytes=$off-$((off + 65535))" -o /dev/null -w '%{time_total}\n' "$base/api/v1/calls/$id/recording"
done | sort -n)
p50=$(echo "$times" | awk 'NR == 100')
p95=$(echo "$times" | awk 'NR == 190')
echo "| what | figure |"
echo "|---|---|"
printf '| upload of %d MB (PUT, streamed to disk, fsynced) | %.2f s, %.0f MB/s |\n' "$mb" "$up" "$(echo "$mb / $up" | bc -l)"
printf '| download of it (GET, whole file; %s) | %.2f s, %.0f MB/s |\n' "$same" "$down" "$(echo "$mb / $down" | bc -l)"
printf '| range request, 64 KiB at a random offset (200, new connection each, audited) | p50 %.1f ms, p95 %.1f ms |\n' "$(echo "$p50 * 1000" | bc -l)" "$(echo "$p95 * 1000" | bc -l)"
printf '| server RSS before → peak during upload / download | %d → %d / %d MB |\n' $((before / 1024)) $((peak_up / 1024)) $((peak_down / 1024))
