#!/usr/bin/env bash
# Sluice's performance suite (issue 8). A benchmark, not a test: nothing here runs under `cargo test`.
#
# Measures, one after the other on this machine:
#   1. loopback TCP bandwidth: iperf3, one stream, server on 127.0.0.1 started and stopped here;
#   2. the disk's durable write bandwidth: fio --rw=write --bs=1M --size=1G --ioengine=psync
#      --fdatasync=1, in a temp dir on the same file system as the broker's data dir;
#   3. Sluice, with a release `sluiced` on an ephemeral port and a temp data dir, driven by
#      `sluice bench`:
#      a. produce 1000-byte records, 1000 per batch, 2 producers on 2 partitions, acks=1: first on
#         a cold broker (shown, no bar), then again on the same topic, now at its retention (the
#         steady state a running broker is in: each new segment replaces a deleted one): the bar;
#         a fresh VM pays a host fault for every page of memory it touches first, about 1 GB/s
#         here, which the cold run measures more than it measures Sluice;
#      b. consume the same data (2 consumers);
#      c. produce with acks=all (the default flush policy makes an acks=all append wait for the
#         group-commit fdatasync covering it, i.e. the topic fsyncs before acknowledging);
#      d. batch latency p99 at half of the maximum produce rate measured in (a), on the same
#         topic (still at its retention);
#      e. the client library alone (issue 4): one Producer task, acks=1, then one Consumer;
#   while sampling the broker's resident memory (VmRSS, and VmHWM at the end) from /proc.
# Before each run the script runs `sync`, so every run starts with no dirty pages: otherwise a run
# inherits the previous one's writeback, and the kernel throttles the broker's writes to the disk's
# speed (a 10 s run at 400 MB/s leaves 4 GB dirty, past vm.dirty_ratio on a 24 GB machine) or, for
# the consume row, the flusher threads take CPU and disk from the reads.
# Then prints each Sluice figure with its ratio to its limit, and optionally writes a JSON and/or a
# markdown summary.
#
# Usage: tests/perf/run.sh [--duration SECS] [--warmup SECS] [--json FILE] [--markdown FILE]
#                          [--dir DIR] [--no-build] [--skip-baselines] [--repeat N]
#   --duration   measured seconds per Sluice run (default 10)
#   --warmup     warm-up seconds before each produce run (default 2)
#   --repeat     run each Sluice figure N times and keep the best (highest records/s; lowest p99
#                for the latency row): on a machine shared with other work (default 1)
#   --dir        where temp dirs go (default $TMPDIR or /tmp); fio and the broker share it
#   --no-build   use the release binaries already built
#   --skip-baselines  skip iperf3 and fio (ratios are then left out)
# Binaries come from ${CARGO_TARGET_DIR:-<repo>/target}/release.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release
DURATION=10
WARMUP=2
JSON_OUT=
MD_OUT=
BASE_DIR=${TMPDIR:-/tmp}
BUILD=1
BASELINES=1
REPEAT=1

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --json) JSON_OUT=$2; shift 2 ;;
    --markdown) MD_OUT=$2; shift 2 ;;
    --dir) BASE_DIR=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --skip-baselines) BASELINES=0; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "run.sh: $1 is missing (install: $2)" >&2; exit 1; }
}
need python3 "apt-get install -y python3"
if [ "$BASELINES" = 1 ]; then
  need iperf3 "apt-get install -y iperf3"
  need fio "apt-get install -y fio"
fi

WORK=$(mktemp -d "$BASE_DIR/sluice-perf.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "== $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "$BUILD" = 1 ]; then
  log "building release sluiced and sluice"
  (cd "$ROOT" && cargo build --release --bin sluiced --bin sluice >&2)
fi
[ -x "$BIN/sluiced" ] && [ -x "$BIN/sluice" ] || { echo "run.sh: no release binaries in $BIN" >&2; exit 1; }

# A topic at its retention holds up to 2 x (2 GiB retained + a 1 GiB active segment + a 1 GiB
# spare) = 8 GiB, plus fio's 1 GiB: a fuller disk fails the produce rows with KAFKA_STORAGE_ERROR
# (no space left), which reads like a broker fault.
NEED_GIB=12
FREE_GIB=$(df -P -k "$WORK" | awk 'NR==2 {print int($4 / 1048576)}')
if [ "${FREE_GIB:-0}" -lt "$NEED_GIB" ]; then
  echo "run.sh: $WORK has ${FREE_GIB} GiB free; the suite needs $NEED_GIB GiB (use --dir DIR)" >&2
  exit 1
fi

echo '{}' > "$WORK/iperf.json"
echo '{}' > "$WORK/fio.json"
if [ "$BASELINES" = 1 ]; then
  # 1. Loopback TCP: one stream for the same length as a Sluice run.
  log "iperf3: loopback TCP, one stream, ${DURATION}s"
  port=$(free_port)
  timeout $((DURATION + 60)) iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  iperf_pid=$!
  PIDS+=("$iperf_pid")
  for _ in $(seq 50); do
    ss -ltn 2>/dev/null | grep -q "127.0.0.1:$port " && break
    sleep 0.1 # waiting for the iperf3 server to listen, at most 5 s
  done
  timeout $((DURATION + 20)) iperf3 -c 127.0.0.1 -p "$port" -t "$DURATION" -J > "$WORK/iperf.json" 2> "$WORK/iperf.err" \
    || { echo "run.sh: iperf3 failed:" >&2; tail -n 3 "$WORK/iperf.json" "$WORK/iperf.err" >&2; }
  wait "$iperf_pid" 2>/dev/null || true

  # 2. Durable write bandwidth of the disk under the data dir.
  log "fio: 1 GiB sequential 1 MiB writes, fdatasync after each"
  sync
  mkdir -p "$WORK/fio"
  fio --name=w --rw=write --bs=1M --size=1G --ioengine=psync --fdatasync=1 \
    --directory="$WORK/fio" --output-format=json > "$WORK/fio.json"
  rm -rf "$WORK/fio"
fi

# 3. The broker.
log "starting sluiced"
mkdir -p "$WORK/data"
"$BIN/sluiced" --listen 127.0.0.1:0 --data-dir "$WORK/data" > "$WORK/sluiced.out" 2> "$WORK/sluiced.err" &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
ADDR=
for _ in $(seq 300); do
  ADDR=$(sed -n 's/^sluiced listening on \(.*\)$/\1/p' "$WORK/sluiced.out" | head -n1)
  [ -n "$ADDR" ] && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/sluiced.err" >&2; echo "run.sh: sluiced exited" >&2; exit 1; }
  sleep 0.1 # waiting for the "listening" line, at most 30 s
done
[ -n "$ADDR" ] || { echo "run.sh: sluiced did not report its address within 30 s" >&2; exit 1; }
log "sluiced (pid $BROKER_PID) on $ADDR"

# Resident memory, sampled every 200 ms while the runs go.
(
  peak=0
  while kill -0 "$BROKER_PID" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$BROKER_PID/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" > "$WORK/rss_peak_kb"
    sleep 0.2
  done
) &
PIDS+=("$!")

settle() { # write back dirty pages: a produce run is not throttled by the previous run's writeback, a consume run does not share the disk and cores with it
  local t0=$SECONDS
  sync
  log "sync took $((SECONDS - t0)) s"
}

bench() { # name, then sluice bench arguments; keeps the JSON even when the run reports failures
  local name=$1; shift
  local i
  for i in $(seq "$REPEAT"); do
    settle
    log "sluice bench $* (run $i of $REPEAT)"
    if ! "$BIN/sluice" --brokers "$ADDR" bench "$@" --json > "$WORK/$name.$i.json" 2> "$WORK/$name.err"; then
      echo "run.sh: $name reported failures or could not run:" >&2
      tail -n 5 "$WORK/$name.err" >&2
      python3 - "$WORK/$name.$i.json" >&2 <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for side in ("produce", "consume"):
    for e in (d.get(side) or {}).get("errors", []):
        print(f"  {side}: {e['error']} ({e['records']} record(s))")
PY
    fi
  done
  # Keep the best run: the latency row by its p99, the others by records/s.
  python3 - "$WORK" "$name" "$REPEAT" <<'PY'
import json, os, shutil, sys
work, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def score(d):
    side = d.get("produce") or d.get("consume") or {}
    if name == "latency":
        p99 = (side.get("latency") or {}).get("p99_ms")
        return -p99 if p99 is not None else float("-inf")
    return side.get("records_per_sec", 0)
runs = []
for i in range(1, n + 1):
    try:
        with open(os.path.join(work, f"{name}.{i}.json")) as f:
            runs.append((score(json.load(f)), i))
    except (OSError, ValueError):
        pass
if runs:
    shutil.copy(os.path.join(work, f"{name}.{max(runs)[1]}.json"), os.path.join(work, f"{name}.json"))
else:
    open(os.path.join(work, f"{name}.json"), "w").write("{}")
PY
}

drop_topic() { # frees the disk a finished row used (a 10 s run writes about 10 GB)
  "$BIN/sluice" --brokers "$ADDR" topic delete "$1" >/dev/null 2>&1 \
    || echo "run.sh: could not delete topic $1" >&2
}

# Every perf topic keeps at most RETENTION per partition (plus the active 1 GiB segment), so
# repeated runs cannot fill the disk; the acks=1 topic still holds several GB for the consume row.
RETENTION=(--topic-config retention.bytes=2147483648)
COMMON=(--message-size 1000 --batch-size 1000 --partitions 2 "${RETENTION[@]}")
REPEAT=1 bench cold produce --topic perf-acks1 "${COMMON[@]}" --producers 2 --acks 1 \
  --duration "$DURATION" --warmup "$WARMUP"
bench produce produce --topic perf-acks1 "${COMMON[@]}" --producers 2 --acks 1 \
  --duration "$DURATION" --warmup "$WARMUP"
bench consume consume --topic perf-acks1 --consumers 2
# The latency row on the same topic, still at its retention (the steady state the max rate was
# measured in); a fresh topic would again be filling fresh memory at about the cold rate.
MAX_RATE=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["produce"]["records_per_sec"]))' "$WORK/produce.json" 2>/dev/null || echo 0)
HALF=$((MAX_RATE / 2))
if [ "$HALF" -gt 0 ]; then
  bench latency produce --topic perf-acks1 "${COMMON[@]}" --producers 2 --acks 1 \
    --rate "$HALF" --duration "$DURATION" --warmup "$WARMUP"
else
  echo '{}' > "$WORK/latency.json"
fi
drop_topic perf-acks1
bench durable produce --topic perf-durable "${COMMON[@]}" --producers 2 --acks all \
  --duration "$DURATION" --warmup "$WARMUP"
drop_topic perf-durable
# The library producer with its defaults: idempotence on, as Kafka's producer.
bench libproduce produce --api library --topic perf-library --message-size 1000 --batch-size 1000 \
  "${RETENTION[@]}" --partitions 1 --producers 1 --acks 1 --duration "$DURATION" --warmup "$WARMUP"
bench libconsume consume --api library --topic perf-library --consumers 1
drop_topic perf-library

HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$BROKER_PID/status" 2>/dev/null || echo 0)
RSS_PEAK_KB=$(cat "$WORK/rss_peak_kb" 2>/dev/null || echo 0)

SLUICE_PERF_REPEAT=$REPEAT python3 - "$WORK" "$HWM_KB" "$RSS_PEAK_KB" "$HALF" "$JSON_OUT" "$MD_OUT" "$DURATION" "$WARMUP" <<'PY'
import json, os, sys
work, hwm_kb, rss_kb, half, json_out, md_out, duration, warmup = sys.argv[1:9]

def load(name):
    try:
        with open(os.path.join(work, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}

iperf, fio = load("iperf"), load("fio")
loop_bps = (iperf.get("end", {}).get("sum_received", {}).get("bits_per_second") or 0) / 8
fio_bps = 0
for job in fio.get("jobs", []):
    fio_bps += job.get("write", {}).get("bw_bytes", 0)
GB, MB = 1e9, 1e6

rows = []  # (figure, value text, limit text, ratio or None, bar text, ok or None)
def side(name, key):
    return (load(name).get(key) or {})

def failures(name):
    d = load(name)
    if not d:
        return "did not run"
    n = d.get("failed_records", 0) + d.get("failed_requests", 0)
    return f"{n} failed" if n else ""

def throughput(label, name, key, limit, limit_text, bar):
    s = side(name, key)
    bps = s.get("mb_per_sec", 0) * MB
    ratio = bps / limit if limit else None
    ok = None if ratio is None else ratio >= bar
    rows.append((label, f"{bps / MB:,.0f} MB/s ({s.get('records_per_sec', 0):,.0f} rec/s)",
                 limit_text, ratio, f">= {bar:.0%}", ok, failures(name)))

loop_text = f"loopback {loop_bps / MB:,.0f} MB/s" if loop_bps else "loopback not measured"
fio_text = f"fio {fio_bps / MB:,.0f} MB/s" if fio_bps else "fio not measured"
cold = side("cold", "produce")
rows.append(("produce acks=1, 2x2, cold broker", f"{cold.get('mb_per_sec', 0):,.0f} MB/s ({cold.get('records_per_sec', 0):,.0f} rec/s)",
             loop_text, (cold.get("mb_per_sec", 0) * MB / loop_bps) if loop_bps else None, "(no bar)", None, failures("cold")))
throughput("produce acks=1, 2x2, 1 KB x 1000", "produce", "produce", loop_bps, loop_text, 0.60)
throughput("consume the same data, 2 consumers", "consume", "consume", loop_bps, loop_text, 0.85)
throughput("produce acks=all (fsync before ack)", "durable", "produce", fio_bps, fio_text, 0.80)
lat = side("latency", "produce").get("latency") or {}
p99 = lat.get("p99_ms")
rows.append((f"batch p99 at half max rate ({int(half):,} rec/s)",
             "-" if p99 is None else f"{p99:.2f} ms", "5 ms",
             None if p99 is None else p99 / 5.0, "< 5 ms",
             None if p99 is None else p99 < 5.0, failures("latency")))
hwm = int(hwm_kb or 0) * 1024
rows.append(("broker resident memory (VmHWM)", f"{hwm / 2**20:,.0f} MiB", "1 GiB",
             hwm / 2**30, "< 1 GiB", hwm < 2**30, f"VmRSS peak sampled {int(rss_kb or 0) / 1024:,.0f} MiB"))
throughput("library Producer, 1 task, acks=1", "libproduce", "produce", GB, "1 GB/s (issue 4)", 1.0)
throughput("library Consumer, 1 task", "libconsume", "consume", 1.5 * GB, "1.5 GB/s (issue 4)", 1.0)

print()
repeat = int(os.environ.get("SLUICE_PERF_REPEAT", "1"))
best = f", best of {repeat}" if repeat > 1 else ""
print(f"Sluice performance suite: {os.cpu_count()} cores, {duration}s per run after {warmup}s warm-up{best}")
print(f"  limits: {loop_text} (iperf3, 1 stream); {fio_text} (1 MiB writes, fdatasync each)")
w = max(len(r[0]) for r in rows)
print(f"  {'figure':<{w}}  {'measured':<32} {'limit':<26} {'ratio':>7}  {'bar':<9} verdict")
for label, value, limit, ratio, bar, ok, note in rows:
    r = "-" if ratio is None else f"{ratio:.0%}"
    verdict = "-" if ok is None else ("pass" if ok else "FAIL")
    print(f"  {label:<{w}}  {value:<32} {limit:<26} {r:>7}  {bar:<9} {verdict} {note}")

p99_of = lambda name: ((side(name, "produce").get("latency") or {}).get("p99_ms"))
summary = {
    "cores": os.cpu_count(),
    "duration_secs": float(duration),
    "warmup_secs": float(warmup),
    "repeat": repeat,
    "loopback_bytes_per_sec": loop_bps,
    "fio_durable_bytes_per_sec": fio_bps,
    "broker_vmhwm_bytes": hwm,
    "broker_vmrss_peak_sampled_bytes": int(rss_kb or 0) * 1024,
    "half_rate_records_per_sec": int(half),
    "rows": [dict(figure=r[0], measured=r[1], limit=r[2], ratio=r[3], bar=r[4], ok=r[5], note=r[6]) for r in rows],
    "runs": {n: load(n) for n in ["cold", "produce", "consume", "durable", "latency", "libproduce", "libconsume"]},
}
if json_out:
    with open(json_out, "w") as f:
        json.dump(summary, f, indent=2)
if md_out:
    with open(md_out, "w") as f:
        f.write(f"Machine: {os.cpu_count()} cores; {loop_text} (iperf3, one stream); {fio_text} (fio, 1 MiB writes with fdatasync). "
                f"Each Sluice run: {duration} s measured after {warmup} s warm-up{best}.\n\n")
        f.write("| figure | measured | limit | ratio | bar | verdict |\n|---|---|---|---|---|---|\n")
        for label, value, limit, ratio, bar, ok, note in rows:
            r = "-" if ratio is None else f"{ratio:.0%}"
            verdict = "-" if ok is None else ("pass" if ok else "**fail**")
            f.write(f"| {label} | {value} | {limit} | {r} | {bar} | {verdict} {note} |\n")
PY
