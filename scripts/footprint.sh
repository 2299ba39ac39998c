#!/usr/bin/env bash
# Measures cctoken's embedded footprint against its goals and prints it as the README's table:
#  - the stripped size of the fetch_token binary (src/bin/fetch_token.rs) built in the `min`
#    profile (Cargo.toml), with the default features and without webpki-roots: as an ordinary build
#    (glibc, linked dynamically) and statically linked with musl; next to examples/bare_fetch (the
#    same fetch written straight against ureq, rustls/ring, miniserde and base64: the yardstick);
#  - the normal-dependency crate count of each feature set;
#  - the peak RSS (GNU time's "Maximum resident set size") of one HTTPS fetch against a loopback
#    token server with a test CA (examples/token_server), the largest of $RUNS runs.
#
#   bash scripts/footprint.sh           # measure and print
#   bash scripts/footprint.sh --check   # also exit 1 if a goal is missed
#
# Loopback only. The ordinary builds use the cargo on PATH and honour CARGO_TARGET_DIR. The musl
# builds build std from source with Debian's rustc-web (as scripts/cross-test.sh does, in the same
# target directory), link with musl-gcc (musl-tools) and take Rust's unwinder from LLVM
# (libunwind-14-dev); missing Debian packages, these and GNU time, are installed (needs root or
# sudo). Sizes depend on the toolchain (both rustc versions are printed) and the host target.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ ${1:-} == --check ]] && check=true
RUNS=${RUNS:-5}
export CARGO_TERM_COLOR=never

log() { echo "footprint.sh: $*" >&2; }
die() { log "$*"; exit 1; }
source scripts/debian-rust.sh
ensure_packages time musl-tools libunwind-14-dev "${DEBIAN_RUST_PACKAGES[@]}"

target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')}
work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The core's goal counts libc, which the clock that counts suspend needs on Linux and Android.
# The goals for a small device: binary size, crate count and peak RSS (--check fails if one is
# missed).
GOAL_SIZE_DEFAULT=$((1600 * 1024)) GOAL_SIZE_NO_ROOTS=$((1500 * 1024))
GOAL_CRATES_DEFAULT=30 GOAL_CRATES_NO_ROOTS=29 GOAL_CRATES_CORE=11 GOAL_RSS_KIB=3000
missed=0

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }' | group; }
group() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; } # 1234567.8 -> 1,234,567.8
goal() { # value goal: sets $verdict
    if (($1 <= $2)); then verdict=ok; else verdict=MISSED; missed=1; fi
}

crates() { cargo tree "$@" -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l; }

# Build: (label, cargo feature flags). Each build's binaries are copied away, since the next
# build overwrites them in target/min and target/min/examples.
build() { # name flags...
    local name=$1
    shift
    log "building fetch_token and bare_fetch (profile min $*)"
    cargo build --quiet --profile min "$@" --bin fetch_token --example bare_fetch --example token_server
    mkdir -p "$work/$name"
    cp "$target_dir/min/fetch_token" "$target_dir/min/examples/bare_fetch" \
        "$target_dir/min/examples/token_server" "$work/$name/"
}

# The same fetch_token, statically linked with musl: no C library or loader to map at run time.
# musl-gcc's specs cannot link a static PIE (the result would still ask for /lib/ld-musl-*.so.1),
# so it is a classic static executable (relocation-model=static). Rust's std for musl links LLVM's
# libunwind, which rustup's musl targets carry and Debian's libunwind-14-dev provides here (gcc's
# libgcc_eh needs glibc's _dl_find_object).
musl_target=$(uname -m)-unknown-linux-musl
build_musl() { # name flags...
    local name=$1
    shift
    log "building fetch_token for $musl_target (profile min $*)"
    mkdir -p "$work/unwind" "$work/$name"
    ln -sf /usr/lib/llvm-14/lib/libunwind.a "$work/unwind/"
    (
        use_debian_rust
        target_var=$(tr 'a-z-' 'A-Z_' <<<"$musl_target")
        export "CC_${musl_target//-/_}=musl-gcc" "CARGO_TARGET_${target_var}_LINKER=musl-gcc"
        export "CARGO_TARGET_${target_var}_RUSTFLAGS=-C link-self-contained=no -C relocation-model=static -L $work/unwind"
        "$cargo" build --locked --quiet -Zbuild-std=std,panic_abort --target "$musl_target" --profile min \
            "$@" --bin fetch_token
        cp "$CARGO_TARGET_DIR/$musl_target/min/fetch_token" "$work/$name/"
    )
}

# Peak RSS in KiB of `program args...` fetching one token; the largest of $RUNS runs.
peak_rss() {
    local peak=0 rss out
    for _ in $(seq "$RUNS"); do
        out=$(CLIENT_ID=footprint CLIENT_SECRET=footprint-secret \
            /usr/bin/time -v -o "$work/time.txt" "$@")
        [[ $out == footprint-token ]] || { echo "footprint.sh: fetch failed: $*" >&2; cat "$work/time.txt" >&2; exit 1; }
        rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
        ((rss > peak)) && peak=$rss
    done
    echo "$peak"
}

start_server() { # dir-with-token_server
    mkfifo "$work/server.in"
    "$1/token_server" "$work" <"$work/server.in" >"$work/server.out" &
    server_pid=$!
    exec 3>"$work/server.in" # holds the server's stdin open; closing it stops the server
    for _ in $(seq 100); do
        [[ $(wc -l <"$work/server.out") -ge 2 ]] && break
        sleep 0.1
    done
    url=$(sed -n 1p "$work/server.out")
    ca=$(sed -n 2p "$work/server.out")
    [[ -n $url && -f $ca ]] || { echo "footprint.sh: token_server did not start" >&2; exit 1; }
}

stop_server() {
    exec 3>&-
    wait "$server_pid" || true
    server_pid=
    rm -f "$work/server.in"
}

# Where a fetch's resident memory is: /proc/self/smaps as the process exits (its peak, as nothing is
# unmapped before), copied out by a tiny preloaded library built with cc (ring's build needs one).
cat >"$work/rss_at_exit.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
static void copy(const char *from, FILE *out) {
    char buf[4096];
    size_t n;
    FILE *in = fopen(from, "r");
    if (!in) return;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
}
__attribute__((destructor)) static void rss_at_exit(void) {
    const char *path = getenv("RSS_AT_EXIT");
    FILE *out = path ? fopen(path, "w") : NULL;
    if (!out) return;
    copy("/proc/self/smaps", out);
    copy("/proc/self/status", out);
    fclose(out);
}
EOF
cc -shared -fPIC -O2 -o "$work/rss_at_exit.so" "$work/rss_at_exit.c"

# "peak P KiB at exit: the binary B, shared libraries L, heap H, stack S, other anonymous A".
rss_breakdown() { # program args...
    CLIENT_ID=footprint CLIENT_SECRET=footprint-secret RSS_AT_EXIT="$work/smaps.txt" \
        LD_PRELOAD="$work/rss_at_exit.so" "$@" >/dev/null
    awk -v binary="$1" '
        /^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : ""; next }
        /^Rss:/ {
            if (name == binary) kind = "binary"
            else if (name ~ /rss_at_exit/) kind = "ignored"
            else if (name ~ /\.so/) kind = "libs"
            else if (name == "[heap]") kind = "heap"
            else if (name == "[stack]") kind = "stack"
            else kind = "other"
            kib[kind] += $2
        }
        /^VmHWM:/ { peak = $2 }
        END {
            printf "peak %d KiB at exit: the binary %d, shared libraries %d (file pages other processes share), heap %d, stack %d, other anonymous %d",
                peak, kib["binary"], kib["libs"], kib["heap"], kib["stack"], kib["other"]
        }' "$work/smaps.txt"
}

build default
build no-roots --no-default-features --features ureq
build_musl musl-default
build_musl musl-no-roots --no-default-features --features ureq

start_server "$work/default"
rss_default=$(peak_rss "$work/default/fetch_token" --url "$url" --auth basic --ca-file "$ca")
rss_no_roots=$(peak_rss "$work/no-roots/fetch_token" --url "$url" --auth basic --ca-file "$ca")
rss_bare_default=$(peak_rss "$work/default/bare_fetch" "$url" "$ca")
rss_bare_no_roots=$(peak_rss "$work/no-roots/bare_fetch" "$url" "$ca")
rss_musl_default=$(peak_rss "$work/musl-default/fetch_token" --url "$url" --auth basic --ca-file "$ca")
rss_musl_no_roots=$(peak_rss "$work/musl-no-roots/fetch_token" --url "$url" --auth basic --ca-file "$ca")
breakdown_default=$(rss_breakdown "$work/default/fetch_token" --url "$url" --auth basic --ca-file "$ca")
breakdown_no_roots=$(rss_breakdown "$work/no-roots/fetch_token" --url "$url" --auth basic --ca-file "$ca")
stop_server

size() { stat -c %s "$1"; }
size_default=$(size "$work/default/fetch_token")
size_no_roots=$(size "$work/no-roots/fetch_token")
size_bare_default=$(size "$work/default/bare_fetch")
size_bare_no_roots=$(size "$work/no-roots/bare_fetch")
size_musl_default=$(size "$work/musl-default/fetch_token")
size_musl_no_roots=$(size "$work/musl-no-roots/fetch_token")
crates_default=$(crates)
crates_no_roots=$(crates --no-default-features --features ureq)
crates_core=$(crates --no-default-features)

row() { # label size size-goal crates crates-goal rss rss-goal ("-": no goal)
    local size_cell crates_cell rss_cell
    size_cell="$(group <<<"$2") B = $(kib "$2") KiB"
    if [[ $3 != - ]]; then goal "$2" "$3" && size_cell+=" (≤ $(group <<<$(($3 / 1024))) KiB: $verdict)"; fi
    crates_cell=$4
    if [[ $5 != - ]]; then goal "$4" "$5" && crates_cell+=" (≤ $5: $verdict)"; fi
    rss_cell="$(group <<<"$6") KiB"
    if [[ $7 != - ]]; then goal "$6" "$7" && rss_cell+=" (≤ $(group <<<"$7") KiB: $verdict)"; fi
    echo "| $1 | $size_cell | $crates_cell | $rss_cell |"
}

echo
echo "$(rustc --version), $(rustc -vV | sed -n 's/^host: //p'), profile min, stripped; peak RSS: largest of $RUNS runs"
echo "musl: $(/usr/bin/rustc --version) (Debian), $musl_target, std built in the same profile"
echo
echo "| program | size | crates (normal deps) | peak RSS of one HTTPS fetch |"
echo "| --- | --- | --- | --- |"
row "fetch_token, default features" "$size_default" "$GOAL_SIZE_DEFAULT" "$crates_default" "$GOAL_CRATES_DEFAULT" "$rss_default" "$GOAL_RSS_KIB"
row "fetch_token, without webpki-roots" "$size_no_roots" "$GOAL_SIZE_NO_ROOTS" "$crates_no_roots" "$GOAL_CRATES_NO_ROOTS" "$rss_no_roots" "$GOAL_RSS_KIB"
row "fetch_token, default features, static musl" "$size_musl_default" "$GOAL_SIZE_DEFAULT" "$crates_default" "$GOAL_CRATES_DEFAULT" "$rss_musl_default" "$GOAL_RSS_KIB"
row "fetch_token, without webpki-roots, static musl" "$size_musl_no_roots" "$GOAL_SIZE_NO_ROOTS" "$crates_no_roots" "$GOAL_CRATES_NO_ROOTS" "$rss_musl_no_roots" "$GOAL_RSS_KIB"
row "bare_fetch, default features" "$size_bare_default" - "$crates_default" - "$rss_bare_default" -
row "bare_fetch, without webpki-roots" "$size_bare_no_roots" - "$crates_no_roots" - "$rss_bare_no_roots" -
goal "$crates_core" "$GOAL_CRATES_CORE"
echo
echo "The core alone (\`--no-default-features\`: no ureq, rustls or ring): $crates_core crates (≤ $GOAL_CRATES_CORE: $verdict)"
echo "fetch_token minus bare_fetch: $(group <<<$((size_default - size_bare_default))) B with the default features," \
    "$(group <<<$((size_no_roots - size_bare_no_roots))) B without webpki-roots"

echo "Resident memory of the dynamically linked fetch_token, KiB, one more fetch each:"
echo "  default features: $(group <<<"$breakdown_default")"
echo "  without webpki-roots: $(group <<<"$breakdown_no_roots")"

if $check && ((missed)); then
    echo "footprint.sh: a goal was missed" >&2
    exit 1
fi
