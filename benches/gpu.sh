#!/usr/bin/env bash
# Every GPU measurement of sidrec in one call, from the release binaries that
# benches/gpu-pack.sh built and packed (nothing is built here), into ONE JSON file:
#
#   bash gpu-pack/gpu.sh [--small] PACK_DIR OUT.json      # (benches/gpu.sh is the same file)
#
#   1. `sidrec info`: the adapters and the device chosen;
#   2. the training step at SPEC sizes (batch 256, 20-item histories), TIGER and DiscRec
#      (the train_step bench);
#   3. constrained beam search, 20 beams, 20 returned, TIGER and DiscRec (the beam_search bench);
#   4. the quantize, item-attention and matmul kernels against their pure-Burn references (their
#      benches), with each kernel's largest difference from its reference;
#   5. a fixed number of Amazon Beauty training epochs (configs/beauty.toml) per model, with the
#      time per epoch from the run's metrics.jsonl; shortened (train.max_batches_per_epoch) when
#      the training step measured in 2. says the epochs would not fit in what is left of the
#      budget. The run is stopped once its epochs are logged (the final beam-search evaluation
#      over every user is not part of this script unless BEAUTY_EVAL_S gives it time).
#
# Each step runs under its own time cap and under the overall budget (BUDGET_S from the start),
# so one hang cannot eat the rest; a step that fails or times out is recorded (exit status,
# wall time, its output's tail) and the next one runs. The JSON is rewritten after every step, so
# a run killed from outside still leaves what it measured; OUT.log beside it holds every step's
# output. Needs bash, coreutils, awk and dpkg (to unpack the pack), nothing else.
#
# --small: sizes for a software adapter (lavapipe, --device wgpu-cpu) to check the script
# without a GPU. Every size and cap below can be set from the environment, e.g.
# `TS_STEPS=50 BEAUTY_EPOCHS=3 bash gpu.sh PACK out.json`; SKIP="quantize matmul" leaves steps
# out (train_step beam_search quantize item_attention matmul beauty). With --device auto (the
# GPU default) the script stops after `info` when no GPU is found (REQUIRE_GPU=0 goes on).
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
SMALL=0
pos=()
for a in "$@"; do
    case $a in
        --small) SMALL=1 ;;
        -h|--help) usage 0 ;;
        -*) echo "gpu.sh: unknown option $a" >&2; usage 2 ;;
        *) pos+=("$a") ;;
    esac
done
[ ${#pos[@]} -eq 2 ] || usage 2
PACK=$(cd "${pos[0]}" 2>/dev/null && pwd) || { echo "gpu.sh: no pack folder ${pos[0]}" >&2; exit 2; }
[ -f "$PACK/sidrec-gpu.deb" ] || { echo "gpu.sh: $PACK/sidrec-gpu.deb not found (run benches/gpu-pack.sh)" >&2; exit 2; }
OUT=${pos[1]}
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
LOG=${OUT%.json}.log

# --- parameters (GPU defaults; --small: a software adapter on a few cores) ---
if [ $SMALL = 1 ]; then
    : "${DEVICE:=wgpu-cpu}" "${BUDGET_S:=900}" "${REQUIRE_GPU:=0}"
    : "${TS_BATCH:=16}" "${TS_STEPS:=1}" "${BS_BATCH:=4}" "${BS_BATCHES:=1}"
    : "${QUANT_ROWS:=2000}" "${MATMUL_REPS:=2}"
    : "${BEAUTY_MODELS:=tiger}" "${BEAUTY_EPOCHS:=1}" "${BEAUTY_MAX_BATCHES:=2}"
    # A 62k-parameter model: validating every user with the SPEC model takes half an hour on lavapipe.
    : "${BEAUTY_SETS:=model.d_model=32 model.d_kv=16 model.num_heads=2 model.d_ff=64 model.num_layers=1 model.num_decoder_layers=1}"
    : "${CAP_STEP:=240}" "${CAP_KERNEL:=240}" "${CAP_BEAUTY:=420}"
else
    : "${DEVICE:=auto}" "${BUDGET_S:=450}" "${REQUIRE_GPU:=1}"
    : "${TS_BATCH:=256}" "${TS_STEPS:=20}" "${BS_BATCH:=256}" "${BS_BATCHES:=4}"
    : "${QUANT_ROWS:=12101,100000}" "${MATMUL_REPS:=20}"
    : "${BEAUTY_MODELS:=tiger discrec}" "${BEAUTY_EPOCHS:=2}" "${BEAUTY_MAX_BATCHES:=0}"
    : "${BEAUTY_SETS:=}"
    : "${CAP_STEP:=120}" "${CAP_KERNEL:=120}" "${CAP_BEAUTY:=400}"
fi
: "${BEAM:=20}" "${CAP_INFO:=60}" "${BEAUTY_EVAL_S:=0}" "${SKIP:=}"
# SKIP: steps left out, e.g. SKIP="quantize matmul" (train_step beam_search quantize item_attention matmul beauty).
skip() { [[ " $SKIP " == *" $1 "* ]]; }
# Beauty (LETTER index): 131,413 training examples, 22,363 validation users, 101 encoder tokens
# (5-token IDs for the disambiguated items) against the train_step bench's 81.
BEAUTY_TRAIN=131413 BEAUTY_VALID=22363 BEAUTY_BATCH=256

T0=$(date +%s%N)
now_ms() { echo $(( ($(date +%s%N) - T0) / 1000000 )); }
DEADLINE_MS=$(( BUDGET_S * 1000 ))
fmt_s() { awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'; }
# Drops invalid UTF-8 (a tail cut inside a character) where iconv exists.
if command -v iconv > /dev/null; then UTF8='iconv -c -f UTF-8 -t UTF-8'; else UTF8=cat; fi
# A JSON string literal of $1 (control characters other than newlines and tabs dropped).
jstr() {
    printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037' | $UTF8 | awk '
        BEGIN { ORS = ""; print "\"" }
        { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r"); if (NR > 1) print "\\n"; print }
        END { print "\"" }'
}
# JSON objects printed by a bench (one a line), joined by commas; NaN/inf made strings.
jlines() { grep -h '^{' "$@" 2>/dev/null | sed -E 's/: (-?(NaN|nan|inf|-inf))([,}])/: "\1"\3/g' | paste -sd, -; }

WORK=${GPU_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/sidrec-gpu.XXXXXX")}
mkdir -p "$WORK/logs"
[ "${KEEP_WORK:-0}" = 1 ] || [ -n "${GPU_WORK:-}" ] || trap 'rm -rf "$WORK"' EXIT
: > "$LOG"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}
mkdir -p "$XDG_RUNTIME_DIR" 2>/dev/null; chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null
# The NVIDIA driver's Vulkan ICD where the machine mounts it outside the loader's search path.
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f $nv_icd ] &&
    ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nv_icd
fi

STEPS=()
HOST=$(printf '{"uname": %s, "nproc": %s, "mem_total_kb": %s, "gpu": %s, "vulkan_loader": %s, "vk_driver_files": %s}' \
    "$(jstr "$(uname -srm)")" "$(nproc)" "$(awk '/MemTotal/ { print $2 }' /proc/meminfo)" \
    "$(jstr "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -3)")" \
    "$(jstr "$(ldconfig -p 2>/dev/null | grep -m1 'libvulkan.so.1' | sed 's/.*=> //')")" "$(jstr "${VK_DRIVER_FILES:-}")")
PARAMS=$(printf '{"budget_s": %s, "ts_batch": %s, "ts_steps": %s, "bs_batch": %s, "bs_batches": %s, "beam": %s, "quant_rows": %s, "matmul_reps": %s, "beauty_models": %s, "beauty_epochs": %s, "beauty_max_batches": %s, "beauty_sets": %s, "beauty_eval_s": %s, "skip": %s, "cap_step_s": %s, "cap_kernel_s": %s, "cap_beauty_s": %s}' \
    "$BUDGET_S" "$TS_BATCH" "$TS_STEPS" "$BS_BATCH" "$BS_BATCHES" "$BEAM" "$(jstr "$QUANT_ROWS")" "$MATMUL_REPS" \
    "$(jstr "$BEAUTY_MODELS")" "$BEAUTY_EPOCHS" "$BEAUTY_MAX_BATCHES" "$(jstr "$BEAUTY_SETS")" "$BEAUTY_EVAL_S" "$(jstr "$SKIP")" \
    "$CAP_STEP" "$CAP_KERNEL" "$CAP_BEAUTY")
PACKINFO='{}'
FINISHED=false

write_json() {
    local steps
    steps=$(IFS=,; printf '%s' "${STEPS[*]:-}")
    {
        printf '{"script": "benches/gpu.sh", "mode": "%s", "device": %s, "started_utc": "%s",\n' \
            "$([ $SMALL = 1 ] && echo small || echo gpu)" "$(jstr "$DEVICE")" "$STARTED"
        printf ' "host": %s,\n "pack": %s,\n "params": %s,\n' "$HOST" "$PACKINFO" "$PARAMS"
        printf ' "steps": [\n%s\n ],\n' "$(printf '%s' "$steps" | sed 's/},{"name"/},\n{"name"/g')"
        printf ' "total_wall_s": %s, "finished": %s}\n' "$(fmt_s "$(now_ms)")" "$FINISHED"
    } > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
}
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# run_step NAME CAP CMD...: runs CMD under min(CAP, what is left of the budget); stdout to
# $WORK/logs/NAME.out, stderr to NAME.err, both appended to $LOG. Sets RC, WALL_MS, CAP_USED
# (RC is "skipped" when less than 5 s of the budget is left).
run_step() {
    local name=$1 cap=$2; shift 2
    local left=$(( (DEADLINE_MS - $(now_ms)) / 1000 ))
    CAP_USED=$(( cap < left ? cap : left ))
    : > "$WORK/logs/$name.out"; : > "$WORK/logs/$name.err"
    if [ $CAP_USED -lt 5 ]; then
        RC=skipped WALL_MS=0
        echo "== $name: skipped, ${left}s of the budget left" | tee -a "$LOG"
        return
    fi
    echo "== $name (cap ${CAP_USED}s, at $(fmt_s "$(now_ms)")s): $*" | tee -a "$LOG"
    local t=$(now_ms)
    if declare -F "$1" > /dev/null; then
        "$@" > "$WORK/logs/$name.out" 2> "$WORK/logs/$name.err"   # a function of this script: it applies CAP_USED
    else
        timeout -k 10 "$CAP_USED" "$@" > "$WORK/logs/$name.out" 2> "$WORK/logs/$name.err"
    fi
    RC=$?
    WALL_MS=$(( $(now_ms) - t ))
    { cat "$WORK/logs/$name.out"; tr '\r' '\n' < "$WORK/logs/$name.err" | grep -v '^Benchmarking .*: \(Warming\|Collecting\|Analyzing\)'; } >> "$LOG"
    echo "== $name: exit $RC in $(fmt_s $WALL_MS)s" | tee -a "$LOG"
}

# add_step NAME EXTRA_JSON_FIELDS: records the last run_step (and, when it failed, its output's tail).
add_step() {
    local name=$1 extra=${2:-} rc tail=''
    if [ "$RC" = skipped ]; then rc='null, "skipped": "budget"'; else rc=$RC; fi
    if [ "$RC" != 0 ]; then
        tail=", \"tail\": $(jstr "$(tail -c 1500 "$WORK/logs/$name.out"; tr '\r' '\n' < "$WORK/logs/$name.err" | tail -c 1500)")"
    fi
    STEPS+=("{\"name\": \"$name\", \"exit\": $rc, \"wall_s\": $(fmt_s "$WALL_MS"), \"cap_s\": $CAP_USED${extra:+, $extra}$tail}")
    write_json
}

# Criterion's "ID / time: [low estimate high]" as JSON objects, in milliseconds.
criterion_json() {
    tr '\r' '\n' < "$1" | awk '
        function ms(v, u) { if (u == "s") return v * 1000; if (u == "ms") return v; if (u == "ns") return v / 1e6; return v / 1000 }
        /time:/ {
            if ($1 != "time:") id = $1
            line = $0; sub(/.*\[/, "", line); sub(/\].*/, "", line); n = split(line, a, " ")
            if (n >= 6) printf "%s{\"id\": \"%s\", \"low_ms\": %.6g, \"ms\": %.6g, \"high_ms\": %.6g}", (k++ ? "," : ""), id, ms(a[1], a[2]), ms(a[3], a[4]), ms(a[5], a[6])
            next
        }
        /^[^ {=]/ && !/^Benchmarking/ && !/^(Warning|Found|Gnuplot|  )/ { id = $1 }'
}

echo "gpu.sh: $([ $SMALL = 1 ] && echo small sizes || echo GPU sizes), device $DEVICE, budget ${BUDGET_S}s, work dir $WORK, log $LOG" | tee -a "$LOG"
write_json

# --- 0. unpack ---
t=$(now_ms)
if ! dpkg -x "$PACK/sidrec-gpu.deb" "$WORK/pack" >> "$LOG" 2>&1; then
    echo "gpu.sh: cannot unpack $PACK/sidrec-gpu.deb (see $LOG)" >&2
    PACKINFO=$(printf '{"error": "dpkg -x failed"}'); write_json; exit 1
fi
BIN=$WORK/pack/bin DATA=$WORK/pack/data/amazon-beauty-2014
PACKINFO=$(printf '{"commit": "%s", "uncommitted_changes": %s, "built": %s, "deb_bytes": %s, "unpacked_bytes": %s, "unpack_s": %s}' \
    "$(awk '$1 == "commit" { print $2 }' "$WORK/pack/MANIFEST")" "$(awk '$1 == "uncommitted_changes" { print $2 }' "$WORK/pack/MANIFEST")" \
    "$(jstr "$(sed -n 's/^built //p' "$WORK/pack/MANIFEST")")" "$(stat -c %s "$PACK/sidrec-gpu.deb")" \
    "$(du -sb "$WORK/pack" | cut -f1)" "$(fmt_s $(( $(now_ms) - t )))")
echo "== unpacked in $(fmt_s $(( $(now_ms) - t )))s" | tee -a "$LOG"
write_json

# --- 1. info ---
run_step info "$CAP_INFO" "$BIN/sidrec" info --device "$DEVICE"
chosen=$(grep -A1 '^chosen' "$WORK/logs/info.out" | sed 's/^ *//' | paste -sd' ' -)
add_step info "\"chosen\": $(jstr "$chosen"), \"output\": $(jstr "$(cat "$WORK/logs/info.out" "$WORK/logs/info.err")")"
if [ "$REQUIRE_GPU" = 1 ] && { [ "$RC" != 0 ] || grep -q 'Flex\|no graphics adapter' <<< "$chosen"; }; then
    echo "gpu.sh: --device $DEVICE found no GPU (see the info step); stopping (REQUIRE_GPU=0 runs anyway)" | tee -a "$LOG" >&2
    write_json; exit 1
fi

# --- 2. training step ---
declare -A STEP_S
for m in tiger discrec; do
    skip train_step && break
    run_step "train_step_$m" "$CAP_STEP" "$BIN/train_step" --device "$DEVICE" --model $m --batch "$TS_BATCH" --steps "$TS_STEPS" --history 20
    STEP_S[$m]=$(grep -o '"s_per_step": [0-9.e+-]*' "$WORK/logs/train_step_$m.out" | awk '{ print $2 }' | tail -1)
    add_step "train_step_$m" "\"warm_up\": $(jstr "$(grep -o 'warm-up.*' "$WORK/logs/train_step_$m.err" | tail -1)"), \"results\": [$(jlines "$WORK/logs/train_step_$m.out")]"
done

# --- 3. beam search ---
for m in tiger discrec; do
    skip beam_search && break
    run_step "beam_search_$m" "$CAP_STEP" "$BIN/beam_search" --device "$DEVICE" --model $m --batch "$BS_BATCH" --batches "$BS_BATCHES" --beam "$BEAM"
    add_step "beam_search_$m" "\"results\": [$(jlines "$WORK/logs/beam_search_$m.out")]"
done

# --- 4. kernels against their references ---
export CRITERION_HOME=$WORK/criterion
if ! skip quantize; then
    run_step quantize "$CAP_KERNEL" env SIDREC_BENCH_DEVICES="$DEVICE" SIDREC_QUANTIZE_ROWS="$QUANT_ROWS" \
        "$BIN/quantize" --bench --quick --noplot '^quantize/'
    add_step quantize "\"checks\": [$(jlines "$WORK/logs/quantize.out")], \"results\": [$(criterion_json "$WORK/logs/quantize.out")]"
fi

if ! skip item_attention; then
    run_step item_attention "$CAP_KERNEL" env SIDREC_BENCH_DEVICES="$DEVICE" "$BIN/item_attention" --bench --quick --noplot '^item_attention/'
    add_step item_attention "\"checks\": [$(jlines "$WORK/logs/item_attention.out")], \"results\": [$(criterion_json "$WORK/logs/item_attention.out")]"
fi

if ! skip matmul; then
    run_step matmul "$CAP_KERNEL" "$BIN/matmul" --device "$DEVICE" --reps "$MATMUL_REPS"
    mm=$(awk '
        function num(x) { return (x ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) ? x : "\"" x "\"" }
        / @ / && /\|diff\|/ {
            shape = substr($0, index($0, " ") + 1); shape = substr(shape, 1, index(shape, ":") - 1)
            bm = bg = tm = tg = d = "null"
            for (i = 1; i <= NF; i++) {
                g = $(i + 3); gsub(/\(/, "", g)
                if ($i == "burn") { bm = num($(i + 1)); bg = num(g) }
                if ($i == "tiled") { tm = num($(i + 1)); tg = num(g) }
                if ($i == "|diff|") d = num($(i + 1))
            }
            printf "%s{\"shape\": \"%s\", \"burn_ms\": %s, \"burn_gflops\": %s, \"tiled_ms\": %s, \"tiled_gflops\": %s, \"max_abs_diff\": %s}", (k++ ? "," : ""), shape, bm, bg, tm, tg, d
        }' "$WORK/logs/matmul.out")
    add_step matmul "\"results\": [$mm]"
fi

# --- 5. Amazon Beauty epochs ---
# beauty CMD...: runs a `sidrec train` command (under CAP_USED) in the background and stops it
# once $run_dir/metrics.jsonl has every epoch and BEAUTY_EVAL_S more seconds have passed: the
# run would go on to evaluate every user with beam search.
beauty() {
    timeout -k 10 "$CAP_USED" "$@" &
    local pid=$! waited=0 lines=0
    while kill -0 $pid 2>/dev/null; do
        lines=$(cat "$run_dir/metrics.jsonl" 2>/dev/null | wc -l)
        [ "$lines" -ge "$BEAUTY_EPOCHS" ] && break
        sleep 1
    done
    while kill -0 $pid 2>/dev/null && [ $waited -lt "$BEAUTY_EVAL_S" ]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 $pid 2>/dev/null; then
        echo "stopped by gpu.sh after epoch $lines" >&2
        kill -TERM $pid; wait $pid; return 0
    fi
    wait $pid
}

set -f; read -r -a models <<< "$BEAUTY_MODELS"; set +f
skip beauty && models=()
left_models=${#models[@]}
for m in "${models[@]}"; do
    name=beauty_$m nb=$BEAUTY_MAX_BATCHES planned=''
    # Full epochs asked for and the training step measured: shorten the epochs that would not fit
    # (a Beauty step estimated as the measured one scaled to batch 256 and 101 tokens).
    if [ "$nb" = 0 ] && [ -n "${STEP_S[$m]:-}" ]; then
        avail=$(( ((DEADLINE_MS - $(now_ms)) / 1000 - 10) / left_models ))
        [ $avail -gt "$CAP_BEAUTY" ] && avail=$CAP_BEAUTY
        read -r nb planned < <(awk -v s="${STEP_S[$m]}" -v tb="$TS_BATCH" -v avail="$avail" -v e="$BEAUTY_EPOCHS" -v n="$BEAUTY_TRAIN" \
            -v v="$BEAUTY_VALID" -v b="$BEAUTY_BATCH" 'BEGIN {
            step = s * b / tb * 101 / 81; full = int((n + b - 1) / b); valid = int((v + b - 1) / b) * step / 3
            epoch = full * step + valid; usable = avail - 30   # data preparation and shader compilation
            if (e * epoch <= usable) { printf "0 %.0f\n", e * epoch + 30; exit }
            nb = int((usable / e - valid) / step); if (nb < 1) nb = 1
            printf "%d %.0f\n", nb, e * (nb * step + valid) + 30 }')
        echo "== $name: estimated from the training step (${STEP_S[$m]} s at batch $TS_BATCH, 81 tokens): ${planned}s for $BEAUTY_EPOCHS epochs$([ "$nb" != 0 ] && echo " of $nb batches (shortened to fit ${avail}s)")$([ "$planned" -gt "$avail" ] && echo "; over the time left even so: the cap may stop it")" | tee -a "$LOG"
    fi
    sets=(--set "data.dataset=\"$DATA\"" --set "model.index=\"$DATA/Beauty.letter-index.json\"" --set "model.kind=\"$m\""
        --set "train.epochs=$BEAUTY_EPOCHS" --set "train.max_batches_per_epoch=$nb")
    set -f; for s in $BEAUTY_SETS; do sets+=(--set "$s"); done; set +f
    run_dir=$WORK/runs/$name
    left=$(( (DEADLINE_MS - $(now_ms)) / 1000 ))
    run_step "$name" "$(( CAP_BEAUTY < left / left_models ? CAP_BEAUTY : left / left_models ))" \
        beauty "$BIN/sidrec" train --config "$PACK/beauty.toml" --device "$DEVICE" --out "$run_dir" --restart "${sets[@]}"
    left_models=$(( left_models - 1 ))
    epochs=$(cat "$run_dir/metrics.jsonl" 2>/dev/null | paste -sd, -)
    summary='"epoch_s": []'
    [ -s "$run_dir/metrics.jsonl" ] && summary=$(awk -v b=$BEAUTY_BATCH '
        function f(k,   r) { if (match($0, "\"" k "\":[-0-9.eE+]+")) { r = substr($0, RSTART, RLENGTH); sub(/.*:/, "", r); return r + 0 } return 0 }
        { s = f("seconds"); st = f("step"); r = f("train_examples_per_s"); tr = r > 0 ? (st - prev) * b / r : 0; prev = st
          n++; all += s; if (n > 1) { later += s; lt += tr }
          ep = ep (n > 1 ? ", " : "") sprintf("%.3f", s); trs = trs (n > 1 ? ", " : "") sprintf("%.3f", tr); steps = st }
        END { if (!n) { print "\"epoch_s\": []"; exit }
              printf "\"epoch_s\": [%s], \"train_s_approx\": [%s], \"steps_per_epoch\": %d, \"mean_epoch_s\": %.3f", ep, trs, steps / n, all / n
              if (n > 1) printf ", \"mean_epoch_s_after_first\": %.3f, \"mean_train_s_after_first\": %.3f", later / (n - 1), lt / (n - 1) }' \
        "$run_dir/metrics.jsonl" 2>/dev/null)
    add_step "$name" "\"max_batches_per_epoch\": $nb, \"shortened\": $([ "$nb" = 0 ] && echo false || echo true), \"planned_s\": ${planned:-null}, \"stopped_after_epochs\": $(grep -q '^stopped by gpu.sh' "$WORK/logs/$name.err" && echo true || echo false), \"run\": $(jstr "$(grep -m1 'generator, .* parameters' "$WORK/logs/$name.err")"), $summary, \"epochs\": [$epochs]"
done

FINISHED=true
write_json
echo "gpu.sh: wrote $OUT in $(fmt_s "$(now_ms)")s" | tee -a "$LOG"
