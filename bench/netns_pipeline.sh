#!/usr/bin/env bash
# bench/netns_pipeline.sh — a pipelined ZO job end to end over a constrained link.
#
# One network namespace per stage, consecutive stages joined by a veth pair
# shaped with tc (tbf, both directions) to a given rate; one `sparq worker`
# per stage inside its namespace, UCX forced onto TCP so that the activations
# really cross the veth (on one host UCX would otherwise use shared memory,
# which namespaces do not separate). Compares dense fp16, the job's codec and
# the codec with the planner's boundaries, per link rate, and prints a
# Markdown table (and CSV) of bytes per step and step time from the stages'
# metrics.jsonl. Needs root (ip netns, veth, tc); exits 77 without them.
# Run with --help for the options.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
    cat <<EOF
usage: bench/netns_pipeline.sh [options]

Runs one pipelined ZO job per (link rate, case), each stage a \`sparq worker\`
in its own network namespace; stage k-1 and stage k share a veth pair
(10.201.k.1/30 <-> 10.201.k.2/30) shaped with tc tbf in both directions.
Stage k listens on 10.201.k.2:PORT (pipeline.addresses). UCX is limited to
TCP on the veths (UCX_TLS=tcp, UCX_NET_DEVICES, UCX_CM_USE_ALL_DEVICES=n),
and after each run the veth byte counters are checked against the bytes the
stages encoded.
Everything created (namespaces, and the veths in them) is deleted on exit,
also on failure or Ctrl-C. Needs root; exits 77 ("skipped") when it cannot
create namespaces, veths or a tbf qdisc.

options:
  --config FILE        job (default: examples/pipeline-opt-mini.yaml)
  --sparq BIN          sparq binary (default: \$SPARQ, else build/sparq)
  --stages S           pipeline stages, one namespace each (default: 2)
  --rates LIST         comma-separated tc rates, e.g. "100mbit,1gbit"; "none" =
                       unshaped veth (default: 100mbit,1gbit)
  --steps N            optimizer steps per run (default: 30)
  --warmup N           first steps left out of the figures (default: 3)
  --cases LIST         comma-separated, run in this order (default: fp16,codec,planned):
                         fp16     dense fp16 (codec.encoding=lossless, lossless_dtype=f16),
                                  balance-only boundaries
                         codec    the job's codec, balance-only boundaries
                         planned  the job's codec with the planner's boundaries and bits
                         fp32     lossless fp32, balance-only boundaries
  --repeat R           run every (rate, case) R times, interleaved; the table gives
                       medians over the runs and the step-time range (default: 1)
  --plan FILE          plan for "planned", all rates (default: per rate,
                         sparq plan --config JOB --stages S --link-gbps G -o FILE
                       with G the rate in Gbit/s, when \`sparq plan --help\` works;
                       else "planned" is skipped)
  --balance-plan FILE  plan for the other cases (default:
                         sparq plan --config JOB --stages S --balance-only -o FILE
                       when available, else the job's even split by layers);
                       "even": the even split by layers
  --plan-args "ARGS"   more options for sparq plan, e.g. "--reps 3 --fidelity-steps 0"
  --unshaped-gbps G    --link-gbps given to the planner for rate "none" (default: 10)
  --set KEY=VALUE      extra job override for every run (repeatable)
  --port P             listen port inside the namespaces (default: 29600)
  --timeout S          limit for one run, seconds (default: 600)
  --no-probe           skip the TCP goodput probe of each shaped link
  --csv FILE           also write the rows as CSV
  --workdir DIR        keep plans, run folders and logs here (default: a temp
                       folder, deleted at exit)
  -h, --help           this text

Each run: the plan (--set pipeline.plan=FILE), the --set options, the case's
codec keys (after the plan: a plan's per-boundary codec lists win over
codec.bits/encoding, so fp16/fp32 also set codec.boundary_encodings), then
pipeline.addresses, output, train.steps=N, task.eval= (no evaluation) and
train.snapshot_every=0. The --set options also go to sparq plan.
Figures, from the stages' metrics.jsonl over the steps after --warmup: step
time = the slowest stage's step_s, median; step period = mean interval of the
last stage's clock; per stage the median compute_s and wait_s (stage 0 waits
for g from downstream, the others for activations); per boundary the mean
bytes_encoded per step, bytes*8/rate, and the veth's byte count over the
bytes encoded (whole run; TCP/IP and UCX headers make it > 1).
EOF
}

die() { echo "netns_pipeline: $*" >&2; exit 2; }
skip() { echo "skipped: needs root and ip netns ($*)"; exit 77; }

# ---- options ----
CONFIG="$REPO/examples/pipeline-opt-mini.yaml"
SPARQ_BIN="${SPARQ:-$REPO/build/sparq}"
STAGES=2 RATES="100mbit,1gbit" STEPS=30 WARMUP=3 CASES="fp16,codec,planned"
PLAN="" BALANCE_PLAN="" UNSHAPED_GBPS=10 REPEAT=1 PLAN_ARGS="" PORT=29600 RUN_TIMEOUT=600 PROBE=1
CSV="" WORK="" USER_SETS=()
while (($#)); do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --config) CONFIG=${2:?--config needs a file}; shift ;;
    --sparq) SPARQ_BIN=${2:?--sparq needs a path}; shift ;;
    --stages) STAGES=${2:?}; shift ;;
    --rates) RATES=${2:?}; shift ;;
    --steps) STEPS=${2:?}; shift ;;
    --warmup) WARMUP=${2:?}; shift ;;
    --cases) CASES=${2:?}; shift ;;
    --repeat) REPEAT=${2:?}; shift ;;
    --plan) PLAN=${2:?}; shift ;;
    --balance-plan) BALANCE_PLAN=${2:?}; shift ;;
    --unshaped-gbps) UNSHAPED_GBPS=${2:?}; shift ;;
    --plan-args) PLAN_ARGS=${2?}; shift ;;
    --set) USER_SETS+=(--set "${2:?}"); shift ;;
    --port) PORT=${2:?}; shift ;;
    --timeout) RUN_TIMEOUT=${2:?}; shift ;;
    --no-probe) PROBE=0 ;;
    --csv) CSV=${2:?}; shift ;;
    --workdir) WORK=${2:?}; shift ;;
    *) die "unknown option \"$1\" (see --help)" ;;
    esac
    shift
done

isint() { [[ $1 =~ ^[0-9]+$ ]]; }
isint "$STAGES" && ((STAGES >= 2 && STAGES <= 16)) || die "--stages: 2..16, got \"$STAGES\""
isint "$STEPS" && ((STEPS >= 1)) || die "--steps: a positive integer, got \"$STEPS\""
isint "$WARMUP" && ((WARMUP < STEPS)) || die "--warmup: 0..steps-1, got \"$WARMUP\""
isint "$REPEAT" && ((REPEAT >= 1)) || die "--repeat: a positive integer"
[[ $UNSHAPED_GBPS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--unshaped-gbps: a number, got \"$UNSHAPED_GBPS\""
isint "$PORT" && ((PORT > 0 && PORT < 65536)) || die "--port: 1..65535"
isint "$RUN_TIMEOUT" && ((RUN_TIMEOUT > 0)) || die "--timeout: seconds"
[[ -f $CONFIG ]] || die "--config: no file \"$CONFIG\""
CONFIG=$(realpath "$CONFIG")
[[ -x $SPARQ_BIN ]] || die "no sparq binary at \"$SPARQ_BIN\" (build it, or --sparq BIN)"
SPARQ_BIN=$(realpath "$SPARQ_BIN")
for f in "$PLAN" "$BALANCE_PLAN"; do
    [[ -z $f || $f == even || -f $f ]] || die "no plan file \"$f\""
done
[[ -n $PLAN ]] && PLAN=$(realpath "$PLAN")
[[ -n $BALANCE_PLAN && $BALANCE_PLAN != even ]] && BALANCE_PLAN=$(realpath "$BALANCE_PLAN")

# rate -> bits per second ("none" -> 0)
rate_bps() {
    local r=${1,,}
    [[ $r == none ]] && { echo 0; return; }
    [[ $r =~ ^([0-9]+(\.[0-9]+)?)(bit|kbit|mbit|gbit|tbit)$ ]] ||
        die "rate \"$1\": expected e.g. 100mbit, 1gbit, 2.5gbit or none"
    local m=1
    case ${BASH_REMATCH[3]} in kbit) m=1e3 ;; mbit) m=1e6 ;; gbit) m=1e9 ;; tbit) m=1e12 ;; esac
    awk -v v="${BASH_REMATCH[1]}" -v m="$m" 'BEGIN { printf "%.0f\n", v * m }'
}
IFS=, read -r -a RATE_LIST <<<"$RATES"
IFS=, read -r -a CASE_LIST <<<"$CASES"
((${#RATE_LIST[@]})) || die "--rates: empty"
((${#CASE_LIST[@]})) || die "--cases: empty"
for r in "${RATE_LIST[@]}"; do rate_bps "$r" >/dev/null; done
for i in "${!CASE_LIST[@]}"; do
    case ${CASE_LIST[$i]} in
    1 | fp16) CASE_LIST[$i]=fp16 ;; 2 | codec) CASE_LIST[$i]=codec ;;
    3 | planned) CASE_LIST[$i]=planned ;; 4 | fp32) CASE_LIST[$i]=fp32 ;;
    *) die "--cases: unknown case \"${CASE_LIST[$i]}\" (fp16, codec, planned, fp32)" ;;
    esac
done

# ---- what the machine must have ----
((EUID == 0)) || skip "not root"
command -v ip >/dev/null || skip "no ip command (iproute2)"
command -v tc >/dev/null || skip "no tc command (iproute2)"
command -v timeout >/dev/null || die "needs timeout (coreutils)"
command -v python3 >/dev/null || die "needs python3 to read the metrics"

# ---- cleanup: everything this run created ----
PFX="sqbench-$$"
NETNS=()     # namespaces created
WPIDS=()     # workers running now
PROBE_PIDS=()
WORK_OWNED=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    kill_workers
    local p
    for p in "${PROBE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    local ns
    for ns in "${NETNS[@]}"; do
        ip netns del "$ns" 2>/dev/null || echo "netns_pipeline: could not delete namespace $ns" >&2
    done
    [[ -n $WORK_OWNED && -d $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
kill_workers() {
    local p
    for p in "${WPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    WPIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z $WORK ]]; then
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sqbench.XXXXXX")
    WORK_OWNED=1
else
    mkdir -p "$WORK"
    WORK=$(realpath "$WORK")
fi
mkdir -p "$WORK/plans" "$WORK/runs"

# stale namespaces of killed runs (their pid is gone): say so, touch nothing
stale=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sqbench-[0-9]+-[0-9]+$' || true)
for ns in $stale; do
    pid=${ns#sqbench-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null ||
        echo "note: namespace $ns is left from a killed run (ip netns del $ns)" >&2
done

# ---- the network: S namespaces, S-1 shaped veth pairs ----
ns_of() { echo "$PFX-$1"; }
for ((k = 0; k < STAGES; k++)); do
    ip netns add "$(ns_of $k)" 2>"$WORK/ip.err" || skip "ip netns add failed: $(cat "$WORK/ip.err")"
    NETNS+=("$(ns_of $k)")
    ip -n "$(ns_of $k)" link set lo up
done
# link k joins stage k-1 (dev sqnext, 10.201.k.1) and stage k (dev sqprev, 10.201.k.2);
# the veths are created inside the namespaces and never exist in the host's.
for ((k = 1; k < STAGES; k++)); do
    a=$(ns_of $((k - 1))) b=$(ns_of $k)
    ip link add sqnext netns "$a" type veth peer name sqprev netns "$b" 2>"$WORK/ip.err" ||
        skip "cannot create a veth pair: $(cat "$WORK/ip.err")"
    ip -n "$a" addr add "10.201.$k.1/30" dev sqnext
    ip -n "$b" addr add "10.201.$k.2/30" dev sqprev
    ip -n "$a" link set sqnext up
    ip -n "$b" link set sqprev up
done
# UCX takes only devices whose operstate is up, which the kernel's link watch
# reports a moment after "link set up"
for ((t = 0; ; t++)); do
    down=""
    for ((k = 1; k < STAGES; k++)); do
        for end in "$(ns_of $((k - 1))) sqnext" "$(ns_of $k) sqprev"; do
            set -- $end
            [[ $(ip netns exec "$1" cat "/sys/class/net/$2/operstate") == up ]] || down+=" $1/$2"
        done
    done
    [[ -z $down ]] && break
    ((t < 100)) || die "veths still not up after 10 s:$down"
    sleep 0.1
done
ADDRS=""
for ((k = 1; k < STAGES; k++)); do ADDRS+="${ADDRS:+,}10.201.$k.2:$PORT"; done

# both ends of every link: egress tbf at the rate (burst ~100 us of the rate,
# at least 4 KB; queue up to 100 ms), or no qdisc for "none"
shape_links() {
    local bps=$1 burst k
    burst=$(awk -v b="$bps" 'BEGIN { x = b / 8 * 1e-4; if (x < 4096) x = 4096; printf "%.0f\n", x }')
    for ((k = 1; k < STAGES; k++)); do
        local end
        for end in "$(ns_of $((k - 1))) sqnext" "$(ns_of $k) sqprev"; do
            set -- $end
            if ((bps == 0)); then
                tc -n "$1" qdisc del dev "$2" root 2>/dev/null || true
            else
                tc -n "$1" qdisc replace dev "$2" root tbf rate "${bps}bit" burst "$burst" \
                    latency 100ms 2>"$WORK/tc.err" || skip "tc tbf failed: $(cat "$WORK/tc.err")"
            fi
        done
    done
}
link_tx() { # bytes sent so far by stage k-1 into link k
    ip netns exec "$(ns_of $(($1 - 1)))" cat /sys/class/net/sqnext/statistics/tx_bytes
}

# ---- python: TCP probe, run summary, table ----
cat >"$WORK/tput.py" <<'EOF'
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); s.settimeout(30)
    c, _ = s.accept()
    while c.recv(1 << 20): pass
    c.sendall(b"k"); c.close()
else:
    n = int(sys.argv[4]); buf = b"\0" * (1 << 16)
    for i in range(100):
        try: c = socket.create_connection((host, port), timeout=30); break
        except OSError: time.sleep(0.05)
    t = time.monotonic(); left = n
    while left > 0:
        c.sendall(buf[:min(left, len(buf))]); left -= len(buf)
    c.shutdown(socket.SHUT_WR); c.recv(1)
    print("%.1f" % (n * 8 / (time.monotonic() - t) / 1e6))
EOF
cat >"$WORK/report.py" <<'EOF'
import csv, json, os, re, statistics, sys

def dump_keys(path):
    """The few keys we need from `sparq train --dump-config` output."""
    keys, section = {}, ""
    for line in open(path):
        if not line.strip() or line.lstrip().startswith("#"): continue
        m = re.match(r"^(\s*)([A-Za-z_]+):\s*(.*)$", line.rstrip("\n"))
        if not m: continue
        ind, k, v = m.groups()
        if not ind:
            section = k if not v else ""
            full = k
        else:
            full = section + "." + k
        if v.startswith("["):
            keys[full] = [x.strip().strip('"') for x in v.strip("[]").split(",") if x.strip()]
        else:
            keys[full] = v.strip('"')
    return keys

def even_cuts(cfg, S):
    try:
        with open(os.path.join(cfg["model"], "config.json")) as f:
            L = json.load(f)["num_hidden_layers"]
        return [str(1 + 3 * (L * j // S)) for j in range(1, S)]
    except Exception:
        return None

def cut_name(b):
    """The split candidate before unit b (units: 0 embed, 1+3l attn, 2+3l mlp_in, 3+3l mlp_out)."""
    u = int(b) - 1
    if u == 0: return "embed"
    return "L%d.%s" % ((u - 1) // 3, ("attn", "mlp_act", "out")[(u - 1) % 3])

def describe(cfg, S):
    b = cfg.get("pipeline.boundaries") or []
    even = ""
    if not b:
        b, even = even_cuts(cfg, S) or [], " even"
    bound = ("[" + ", ".join(b) + "] (" + ", ".join(map(cut_name, b)) + ")" + even) if b else "even split"
    parts = []
    for j in range(S - 1):
        enc = (cfg.get("codec.boundary_encodings") or [])
        enc = enc[j] if j < len(enc) else cfg.get("codec.encoding", "?")
        if enc == "lossless":
            parts.append("lossless " + cfg.get("codec.lossless_dtype", "f32"))
        else:
            bits = cfg.get("codec.boundary_bits") or []
            bits = bits[j] if j < len(bits) else cfg.get("codec.bits", "?")
            parts.append("%s %s-bit" % (enc, bits))
    uniq = sorted(set(parts), key=parts.index)
    return bound, (uniq[0] if len(uniq) == 1 else " / ".join(parts))

def med(x): return statistics.median(x) if x else float("nan")

def summarize(a):
    """One run -> one JSON line of raw figures."""
    rate, case, S, warm, bps, dump, out, tx0, tx1 = a[:9]
    S, warm, bps = int(S), int(warm), float(bps)
    tx0 = [int(x) for x in tx0.split(",")]; tx1 = [int(x) for x in tx1.split(",")]
    cfg = dump_keys(dump)
    rows = []
    for k in range(S):
        rs = [json.loads(l) for l in open(os.path.join(out, "stage-%d" % k, "metrics.jsonl")) if l.strip()]
        rows.append({r["step"]: r for r in rs if "step_s" in r})
    steps = sorted(set.intersection(*[set(r) for r in rows]))
    meas = [t for t in steps if t >= warm]
    if not meas: sys.exit("no steps after the warm-up in %s" % out)
    last = rows[S - 1]
    r = {"rate": rate, "case": case, "bps": bps, "steps": len(meas),
         "step_ms": med([max(rows[k][t]["step_s"] for k in range(S)) for t in meas]) * 1e3,
         "period_ms": ((last[meas[-1]]["time"] - last[meas[0]]["time"]) / (len(meas) - 1) * 1e3
                       if len(meas) > 1 else float("nan")),
         "compute_ms": [med([rows[k][t]["compute_s"] for t in meas]) * 1e3 for k in range(S)],
         "wait_ms": [med([rows[k][t]["wait_s"] for t in meas]) * 1e3 for k in range(S)],
         "kb": [], "veth_ratio": []}
    for j in range(S - 1):
        total_enc = sum(rows[j][t]["bytes_encoded"] for t in steps)
        sent = tx1[j] - tx0[j]
        # the activations must have crossed the veth (not UCX shared memory)
        if sent < 0.9 * total_enc:
            sys.exit("link %d carried %d bytes but stage %d encoded %d: the traffic did not go "
                     "over the veth (UCX shared memory?)" % (j + 1, sent, j, total_enc))
        r["kb"].append(statistics.mean(rows[j][t]["bytes_encoded"] for t in meas) / 1e3)
        r["veth_ratio"].append(sent / total_enc if total_enc else float("nan"))
    r["boundaries"], r["codec"] = describe(cfg, S)
    print(json.dumps(r))

HEAD = ["rate", "case", "boundaries", "codec", "KB/step encoded (per boundary)",
        "veth bytes / encoded", "bytes×8/rate ms", "step ms (median)", "step period ms (mean)",
        "compute ms (per stage)", "wait ms (per stage)", "runs × steps"]
COLS = ["rate", "case", "boundaries", "codec", "kb_step", "veth_over_encoded", "link_ms",
        "step_ms", "period_ms", "compute_ms", "wait_ms", "runs_x_steps"]

def table(a):
    runs = [json.loads(l) for l in open(a[0]) if l.strip()]
    groups = {}
    for r in runs: groups.setdefault((r["rate"], r["case"]), []).append(r)
    f = lambda xs, p=1: " / ".join(("%." + str(p) + "f") % x for x in xs)
    col = lambda rs, key: [med([r[key][i] for r in rs]) for i in range(len(rs[0][key]))]
    out = []
    for (rate, case), rs in groups.items():
        step = [r["step_ms"] for r in rs]
        step_s = "%.1f" % med(step) + (" (%.0f–%.0f)" % (min(step), max(step)) if len(rs) > 1 else "")
        kb = col(rs, "kb")
        link = f([x * 1e6 * 8 / rs[0]["bps"] for x in kb]) if rs[0]["bps"] > 0 else "-"
        out.append([rate, case, rs[0]["boundaries"], rs[0]["codec"], f(kb), f(col(rs, "veth_ratio"), 2),
                    link, step_s, "%.1f" % med([r["period_ms"] for r in rs]),
                    f(col(rs, "compute_ms")), f(col(rs, "wait_ms")),
                    "%d × %d" % (len(rs), rs[0]["steps"])])
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "---|" * len(HEAD))
    for r in out: print("| " + " | ".join(r) + " |")
    if len(a) > 1 and a[1]:
        with open(a[1], "w", newline="") as fh:
            w = csv.writer(fh); w.writerow(COLS); w.writerows(out)

{"summarize": summarize, "table": table}[sys.argv[1]](sys.argv[2:])
EOF

# ---- plans ----
HAVE_PLANNER=0
if "$SPARQ_BIN" plan --help >/dev/null 2>&1; then HAVE_PLANNER=1; fi
NOTES=()
if [[ -z $BALANCE_PLAN ]]; then
    if ((HAVE_PLANNER)); then
        BALANCE_PLAN="$WORK/plans/balance.yaml"
        # shellcheck disable=SC2086
        "$SPARQ_BIN" plan --config "$CONFIG" "${USER_SETS[@]}" --stages "$STAGES" --balance-only \
            $PLAN_ARGS -o "$BALANCE_PLAN" >"$WORK/plans/balance.log" 2>&1 || {
            cat "$WORK/plans/balance.log" >&2
            die "sparq plan --balance-only failed"
        }
        NOTES+=("balance-only plan: sparq plan --config $CONFIG ${USER_SETS[*]} --stages $STAGES --balance-only $PLAN_ARGS"
            "  $(grep -m1 '^# predicted' "$BALANCE_PLAN" || true)")
    else
        BALANCE_PLAN=even
        NOTES+=("balance-only boundaries: the even split by layers (this sparq has no plan command)")
    fi
else
    NOTES+=("balance-only plan: $BALANCE_PLAN")
fi
[[ -n $PLAN ]] && NOTES+=("planner's plan: $PLAN")
# the plan of case "planned" for each rate (none: the case is skipped)
declare -A PLANNED=()
want_planned=0
for c in "${CASE_LIST[@]}"; do [[ $c == planned ]] && want_planned=1; done
if ((want_planned)); then
    for rate in "${RATE_LIST[@]}"; do
        if [[ -n $PLAN ]]; then
            PLANNED[$rate]=$PLAN
        elif ((HAVE_PLANNER)); then
            bps=$(rate_bps "$rate")
            gbps=$(awk -v b="$bps" -v u="$UNSHAPED_GBPS" 'BEGIN { printf "%g\n", (b > 0 ? b / 1e9 : u) }')
            f="$WORK/plans/planned-$rate.yaml"
            # shellcheck disable=SC2086
            "$SPARQ_BIN" plan --config "$CONFIG" "${USER_SETS[@]}" --stages "$STAGES" \
                --link-gbps "$gbps" $PLAN_ARGS -o "$f" >"$WORK/plans/planned-$rate.log" 2>&1 || {
                cat "$WORK/plans/planned-$rate.log" >&2
                die "sparq plan --config $CONFIG --stages $STAGES --link-gbps $gbps failed"
            }
            PLANNED[$rate]=$f
            NOTES+=("planner's plan at $rate: sparq plan --config $CONFIG ${USER_SETS[*]} --stages $STAGES --link-gbps $gbps $PLAN_ARGS"
                "  $(grep -m1 '^# predicted' "$f" || true)")
        fi
    done
    ((HAVE_PLANNER)) || [[ -n $PLAN ]] ||
        NOTES+=("case planned skipped: this sparq has no plan command and no --plan FILE was given")
fi

# ---- one run: every stage in its namespace ----
run_case() { # rate bps case plan repeat
    local rate=$1 bps=$2 case=$3 plan=$4 name="$1-$3-$5" k
    local out="$WORK/runs/$name" logs="$WORK/runs/$name.logs"
    rm -rf "$out" "$logs"
    mkdir -p "$logs"
    local -a sets=(--set "pipeline.stages=$STAGES")
    if [[ $plan == even ]]; then
        sets+=(--set pipeline.boundaries= --set codec.boundary_bits= --set codec.boundary_encodings=)
    else
        sets+=(--set "pipeline.plan=$plan")
    fi
    sets+=("${USER_SETS[@]}")
    local lossless_list="" dtype=""
    case $case in fp16) dtype=f16 ;; fp32) dtype=f32 ;; esac
    if [[ -n $dtype ]]; then
        for ((k = 1; k < STAGES; k++)); do lossless_list+="${lossless_list:+,}lossless"; done
        sets+=(--set codec.encoding=lossless --set "codec.lossless_dtype=$dtype"
            --set "codec.boundary_encodings=$lossless_list")
    fi
    sets+=(--set "pipeline.addresses=$ADDRS" --set "output=$out" --set "train.steps=$STEPS"
        --set task.eval= --set train.snapshot_every=0)
    # the resolved job (and an early, readable error when a key is wrong)
    "$SPARQ_BIN" train --config "$CONFIG" "${sets[@]}" --dump-config >"$logs/config.yaml" \
        2>"$logs/config.err" || { cat "$logs/config.err" >&2; die "$name: the job does not load"; }
    local got
    got=$(awk '/^pipeline:/ { p = 1; next } /^[^ ]/ { p = 0 } p && $1 == "stages:" { print $2 }' \
        "$logs/config.yaml")
    [[ $got == "$STAGES" ]] || die "$name: the plan ($plan) has $got stages, --stages is $STAGES"

    local tx0="" tx1=""
    for ((k = 1; k < STAGES; k++)); do tx0+="${tx0:+,}$(link_tx $k)"; done
    local token
    token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    declare -A stage_of=()
    WPIDS=()
    for ((k = STAGES - 1; k >= 0; k--)); do # listeners first
        local devs=""
        ((k > 0)) && devs=sqprev
        ((k < STAGES - 1)) && devs+="${devs:+,}sqnext"
        # UCX: TCP only (no shared memory), on this stage's veths, and each
        # endpoint only on the device its connection came in on (a middle
        # stage would otherwise offer its neighbours lanes to its other
        # veth's address, which they cannot reach). sparq asks for shared
        # memory error handling, which UCX warns about without shared memory:
        # set it here, where the warning about unused variables is off.
        SPARQ_JOB_TOKEN=$token UCX_TLS=tcp UCX_NET_DEVICES=$devs UCX_CM_USE_ALL_DEVICES=n \
            UCX_POSIX_ERROR_HANDLING=y UCX_SYSV_ERROR_HANDLING=y UCX_WARN_UNUSED_ENV_VARS=n \
            ip netns exec "$(ns_of $k)" timeout --kill-after=10 "$RUN_TIMEOUT" \
            "$SPARQ_BIN" worker --config "$CONFIG" --stage "$k" "${sets[@]}" \
            >"$logs/stage-$k.log" 2>&1 &
        WPIDS+=($!)
        stage_of[$!]=$k
    done
    local pid rc failed=""
    while ((${#stage_of[@]} > 0)); do
        rc=0
        pid=""
        wait -n -p pid "${!stage_of[@]}" || rc=$?
        if [[ -z $pid || -z ${stage_of[$pid]:-} ]]; then
            ((rc == 127)) && { failed="lost track of the workers"; break; }
            continue
        fi
        if ((rc != 0)); then
            failed="stage ${stage_of[$pid]} exited with status $rc"
            ((rc == 124)) && failed+=" (ran past --timeout $RUN_TIMEOUT s)"
            break
        fi
        unset "stage_of[$pid]"
    done
    if [[ -n $failed ]]; then
        kill_workers
        echo "netns_pipeline: $name: $failed; the stages' logs:" >&2
        for ((k = 0; k < STAGES; k++)); do
            echo "---- stage $k ($(ns_of $k)) ----" >&2
            tail -n 40 "$logs/stage-$k.log" | sed "s/^/[stage $k] /" >&2
        done
        exit 1
    fi
    WPIDS=()
    for ((k = 1; k < STAGES; k++)); do tx1+="${tx1:+,}$(link_tx $k)"; done
    python3 "$WORK/report.py" summarize "$rate" "$case" "$STAGES" "$WARMUP" "$bps" \
        "$logs/config.yaml" "$out" "$tx0" "$tx1" >>"$WORK/runs.jsonl" ||
        die "$name: cannot summarize the metrics in $out"
}

# ---- header ----
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
ucx=$(ucx_info -v 2>/dev/null | awk '/Version/ { print $3; exit }' || true)
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores online; kernel $(uname -r); UCX ${ucx:-?}; $(date +%F)"
echo "job: $CONFIG, $STAGES stages, $STEPS steps per run, figures over steps $WARMUP..$((STEPS - 1)); sparq: $SPARQ_BIN"
echo "network: namespaces $PFX-0..$((STAGES - 1)), veth 10.201.k.1 <-> 10.201.k.2 (link k: stage k-1 -> k), tc tbf both directions; UCX_TLS=tcp UCX_CM_USE_ALL_DEVICES=n"
for n in "${NOTES[@]}"; do echo "$n"; done
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

: >"$WORK/runs.jsonl"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for rate in "${RATE_LIST[@]}"; do
        bps=$(rate_bps "$rate")
        shape_links "$bps"
        if ((PROBE && rep == 1)); then
            # TCP goodput over link 1, to see the shaping work
            bytes=$(awk -v b="$bps" 'BEGIN { x = (b > 0 ? b : 8e9) / 8 * 0.3; if (x < 2e6) x = 2e6;
                                             if (x > 64e6) x = 64e6; printf "%.0f\n", x }')
            ip netns exec "$(ns_of 1)" python3 "$WORK/tput.py" server 10.201.1.2 $((PORT + 1)) &
            PROBE_PIDS=($!)
            mbit=$(ip netns exec "$(ns_of 0)" python3 "$WORK/tput.py" client 10.201.1.2 \
                $((PORT + 1)) "$bytes") || mbit="?"
            wait "${PROBE_PIDS[0]}" || true
            PROBE_PIDS=()
            echo "link $rate: TCP goodput ${mbit} Mbit/s (python socket, $((bytes / 1000000)) MB, stage 0 -> 1)"
        fi
        for case in "${CASE_LIST[@]}"; do
            plan=$BALANCE_PLAN
            if [[ $case == planned ]]; then
                [[ -n ${PLANNED[$rate]:-} ]] || continue
                plan=${PLANNED[$rate]}
            fi
            echo "running $rate $case (repeat $rep/$REPEAT) ..." >&2
            run_case "$rate" "$bps" "$case" "$plan" "$rep"
        done
    done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$WORK/report.py" table "$WORK/runs.jsonl" "$CSV"
