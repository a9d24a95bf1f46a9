#!/usr/bin/env bash
# State on disk (StateBackend=Disk) next to state in memory: a running count per int key, the pipeline of
# tests/Apps/DiskCounts (generator -> keyBy -> Window.Running() count), one process per figure, the two backends
# interleaved. Prints one tab-separated line per run: case, backend, records, seconds, peak RSS (KiB), bytes in the
# state directory afterwards, the app's check of its results. CASES=tumbling runs only the tumbling-window rows. See bench/RESULTS.md, "State on disk". ~15 minutes (the 100 M-key runs take most).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build tests/Apps/DiskCounts -c Release -nologo -v q >/dev/null
app=tests/Apps/DiskCounts/bin/Release/net10.0/DiskCounts.dll
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
parallelism=${PARALLELISM:-2}

run() { # case keys records backend cache-keys-per-partition [pipeline]
  rm -rf "$work/state"
  local out seconds
  out=$( { DISK_COUNTS_PIPELINE=${6:-counts} DISK_COUNTS_KEYS=$2 /usr/bin/time -f "maxrss_kb=%M" dotnet "$app" --set "Hits.Count=$3" --set "StateBackend=$4" --set "StateCacheKeys=$5" \
    --parallelism "$parallelism" --state-dir "$work/state"; } 2>&1 ) || { echo "$1 $4 failed: $out" >&2; return; }
  seconds=$(grep -oP 'completed in \K[0-9.]+ (s|ms)' <<<"$out" | awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }')
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$1" "$4" "$3" "$seconds" "$(grep -oP 'maxrss_kb=\K[0-9]+' <<<"$out")" "$(du -sb "$work/state" 2>/dev/null | cut -f1)" "$(grep -oP '^tally \K.*' <<<"$out")"
}

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) parallelism $parallelism"
printf "case\tbackend\trecords\tseconds\tpeak_rss_kib\tstate_bytes\ttally\n"
if [[ "${CASES:-all}" == tumbling ]]; then tumbling_only=1; else tumbling_only=0; fi
if (( !tumbling_only )); then
# The curve: every key hit once, a quarter of them twice; the disk backend keeps 1 M keys per partition in memory.
for repetition in 1 2 3; do
  for backend in Memory Disk; do run "keys=1M" 1000000 1250000 "$backend" 1048576; done
done
for repetition in 1 2; do
  for backend in Memory Disk; do run "keys=10M" 10000000 12500000 "$backend" 1048576; done
done
for backend in Memory Disk; do run "keys=100M" 100000000 125000000 "$backend" 1048576; done
# A hot key set that fits the cache: 200 k keys, 100 hits each.
for repetition in 1 2 3; do
  for backend in Memory Disk; do run "hot 200k keys" 200000 20000000 "$backend" 1048576; done
done
# A uniform key set 10x larger than the cache: 10 M keys, 500 k per partition in memory (1 M over two partitions).
for repetition in 1 2; do
  for backend in Memory Disk; do run "uniform 10x cache" 10000000 12500000 "$backend" 500000; done
done
fi
# A one-hour tumbling count on the wall clock (the whole key set fires at the end of input), same hits. On disk the
# cache holds 1 M pane entries per partition; at 10 M keys most of the window is on disk when it fires.
for repetition in 1 2; do
  for backend in Memory Disk; do run "tumbling keys=1M" 1000000 1250000 "$backend" 1048576 tumbling; done
done
for repetition in 1 2 3; do
  for backend in Memory Disk; do run "tumbling hot 200k keys" 200000 20000000 "$backend" 1048576 tumbling; done
done
for repetition in 1 2; do
  for backend in Memory Disk; do run "tumbling keys=10M" 10000000 12500000 "$backend" 1048576 tumbling; done
done
echo "# done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
