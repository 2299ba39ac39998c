#!/usr/bin/env bash
# Measures cctoken's embedded footprint against its goals and prints it as the README's table:
#  - the stripped size of the fetch_token binary (src/bin/fetch_token.rs) built in the `min`
#    profile (Cargo.toml), with the default features and without webpki-roots: as an ordinary build
#    (glibc, linked dynamically) and statically linked with musl; next to examples/bare_fetch (the
#    same fetch written straight against ureq, rustls/ring, miniserde and base64: the yardstick);
#  - the normal-dependency crate count of each feature set;
#  - the peak RSS (GNU time's "Maximum resident set size") of one HTTPS fetch against a loopback
#    token server with a test CA (examples/token_server), the largest of $RUNS runs;
#  - the bytes on the wire (TCP payload, both directions, counted by examples/token_server for each
#    connection) of one token fetch with a full TLS 1.3 handshake, of a second fetch by the same
#    Client on a new connection, which resumes the TLS session (examples/two_fetches), and of
#    `fetch_token --cache` answering from its state file (built with every feature, state-file and
#    jwt, in profile min; its size is printed too). The server sends a chain shaped like a public
#    CA's, made here with openssl: an RSA-2048 leaf for localhost with a public leaf's extensions
#    (two filler SCTs included) and an RSA-2048 intermediate signed by an RSA-4096 root, which is
#    not sent (as Let's Encrypt's R10 and ISRG Root X1); the table names their sizes.
#
#   bash scripts/footprint.sh                # measure and print
#   bash scripts/footprint.sh --check        # also exit 1 if a goal is missed
#   bash scripts/footprint.sh --bytes-only   # the bytes on the wire alone (one build, no musl)
#
# Loopback only. The ordinary builds use the cargo on PATH and honour CARGO_TARGET_DIR. The musl
# builds build std from source with Debian's rustc-web (as scripts/cross-test.sh does, in the same
# target directory), link with musl-gcc (musl-tools) and take Rust's unwinder from LLVM
# (libunwind-14-dev); missing Debian packages, these, GNU time and openssl, are installed (needs root
# or sudo). Sizes depend on the toolchain (both rustc versions are printed) and the host target;
# bytes on the wire depend on rustls' and ureq's versions and the chain, not on the build.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "footprint.sh: $*" >&2; }
die() { log "$*"; exit 1; }

check=false bytes_only=false
for arg; do
    case $arg in
    --check) check=true ;;
    --bytes-only) bytes_only=true ;;
    *) die "usage: bash scripts/footprint.sh [--check] [--bytes-only]" ;;
    esac
done
RUNS=${RUNS:-5}
export CARGO_TERM_COLOR=never

source scripts/debian-rust.sh
if $bytes_only; then
    ensure_packages openssl
else
    ensure_packages time musl-tools libunwind-14-dev openssl "${DEBIAN_RUST_PACKAGES[@]}"
fi

target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')}
work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The core's goal counts libc, which the clock that counts suspend needs on Linux and Android.
# The goals for a small device: binary size, crate count, peak RSS, and bytes on the wire: a
# refresh that resumes the TLS session costs at most 60 % of a fetch with a full handshake, and a
# cache hit costs nothing (--check fails if one is missed).
GOAL_SIZE_DEFAULT=$((1600 * 1024)) GOAL_SIZE_NO_ROOTS=$((1500 * 1024))
GOAL_CRATES_DEFAULT=30 GOAL_CRATES_NO_ROOTS=29 GOAL_CRATES_CORE=11 GOAL_RSS_KIB=3000
GOAL_RESUMED_PERCENT=60 GOAL_HIT_BYTES=0
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

start_server() { # dir-with-token_server [chain-pem key-pem]
    mkfifo "$work/server.in"
    "$1/token_server" "$work" "${@:2}" <"$work/server.in" >"$work/server.out" &
    server_pid=$!
    exec 3>"$work/server.in" # holds the server's stdin open; closing it stops the server
    for _ in $(seq 100); do
        [[ $(wc -l <"$work/server.out") -ge 2 ]] && break
        sleep 0.1
    done
    url=$(sed -n 1p "$work/server.out")
    ca=$(sed -n 2p "$work/server.out")
    [[ -n $url && ($ca == - || -f $ca) ]] || { echo "footprint.sh: token_server did not start" >&2; exit 1; }
}

stop_server() {
    exec 3>&-
    wait "$server_pid" || true
    server_pid=
    rm -f "$work/server.in"
}

# A certificate chain shaped like a public CA's, in $1: root.pem (RSA 4096, trusted by the client,
# not sent), chain.pem (what the server sends: an RSA-2048 leaf for localhost and 127.0.0.1, then
# the RSA-2048 intermediate that signed it) and leaf.key. The extensions are those of a public CA's
# intermediate and leaf (as Let's Encrypt's R10 and a leaf it issues), names and URLs made up;
# every public leaf carries signed certificate timestamps, here two of a real one's size with
# random contents (no TLS client here reads them).
make_chain() { # dir
    local dir=$1 sct_list
    mkdir -p "$dir"
    hex() { openssl rand -hex "$1" | tr -d '\n'; }
    sct() { # one SerializedSCT: v1, log id, timestamp, no extensions, ECDSA-SHA256 signature (71 B)
        printf '0076%s%s%016x0000%s%s%s%s%s' 00 "$(hex 32)" "$(date +%s%3N)" 0403 0047 30450220 "$(hex 32)" "022100$(hex 32)"
    }
    sct_list="0481f200f0$(sct)$(sct)" # the extension's value: an OCTET STRING of the 242-byte list
    cat >"$dir/ext.cnf" <<EOF
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
extendedKeyUsage = clientAuth, serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = caIssuers;URI:http://x1.i.ca.example/
certificatePolicies = 2.23.140.1.2.1
crlDistributionPoints = URI:http://x1.c.ca.example/
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = caIssuers;URI:http://r10.i.ca.example/
subjectAltName = DNS:localhost, IP:127.0.0.1
certificatePolicies = 2.23.140.1.2.1
crlDistributionPoints = URI:http://r10.c.ca.example/42.crl
1.3.6.1.4.1.11129.2.4.2 = DER:$sct_list
EOF
    issue() { # name subject days bits issuer("-": self-signed)
        local name=$1 subject=$2 days=$3 bits=$4 issuer=$5 signer
        openssl genpkey -quiet -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -out "$dir/$name.key"
        openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr"
        if [[ $issuer == - ]]; then signer=(-signkey "$dir/$name.key"); else signer=(-CA "$dir/$issuer.pem" -CAkey "$dir/$issuer.key"); fi
        # (openssl x509 reports its success on stderr: shown only if it fails.) The serial is 18
        # random bytes, the first below 0x80 so that its DER length, and the table, never vary.
        openssl x509 -req -in "$dir/$name.csr" "${signer[@]}" -set_serial "0x4$(hex 18 | cut -c2-)" -days "$days" -sha256 \
            -extfile "$dir/ext.cnf" -extensions "$name" -out "$dir/$name.pem" 2>"$dir/x509.err" ||
            die "openssl could not issue the $name certificate: $(cat "$dir/x509.err")"
    }
    issue root "/C=US/O=cctoken footprint test PKI/CN=cctoken Root X1" 3650 4096 -
    issue intermediate "/C=US/O=cctoken footprint test PKI/CN=R10" 1095 2048 root
    issue leaf "/CN=localhost" 90 2048 intermediate
    openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/intermediate.pem" "$dir/leaf.pem" >/dev/null ||
        die "the generated chain does not verify"
    cat "$dir/leaf.pem" "$dir/intermediate.pem" >"$dir/chain.pem"
}

credentials() { CLIENT_ID=footprint CLIENT_SECRET=footprint-secret "$@"; }
der_size() { openssl x509 -in "$1" -outform DER | wc -c; }

# The token server's report of connection n: "version=… resumed=… from_client=B to_client=B".
connection() { sed -n "s/^connection $1: //p" "$work/server.out"; }
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; } # report name
connections() { grep -c '^connection ' "$work/server.out" || true; }
wait_connections() { # n: until the server has reported n connections
    for _ in $(seq 100); do
        (($(connections) >= $1)) && return
        sleep 0.1
    done
    die "the token server reported $(connections) connections, not $1"
}

# fetch_token and the two examples, profile min, with the state file (for --cache).
build_bytes() {
    log "building fetch_token, token_server and two_fetches (profile min --features state-file,jwt)"
    cargo build --quiet --profile min --features state-file,jwt --bin fetch_token --example token_server \
        --example two_fetches
    mkdir -p "$work/bytes"
    cp "$target_dir/min/fetch_token" "$target_dir/min/examples/token_server" "$target_dir/min/examples/two_fetches" \
        "$work/bytes/"
}

# Sets first, second (connection reports), hit_from, hit_to (bytes of the cache hit's connections)
# and chain_sizes.
measure_bytes() {
    local bin=$work/bytes chain=$work/chain cache=$work/cache out n run i
    log "measuring the bytes on the wire"
    make_chain "$chain"
    chain_sizes="leaf $(group <<<"$(der_size "$chain/leaf.pem")") B + intermediate $(group <<<"$(der_size "$chain/intermediate.pem")") B"
    start_server "$bin" "$chain/chain.pem" "$chain/leaf.key"
    ca=$chain/root.pem
    credentials "$bin/two_fetches" "$url" "$ca" || die "two_fetches failed"
    wait_connections 2
    first=$(connection 1) second=$(connection 2)
    [[ $(field "$first" version) == TLSv1_3 && $(field "$first" resumed) == false ]] ||
        die "the first fetch was not a full TLS 1.3 handshake: $first"

    # fetch_token --cache twice with one state file: the first run fetches (connection 3), the
    # second answers from the file. A third fetch without --cache follows: as the server serves
    # one connection at a time, any connection of the second run is reported before its own.
    install -d -m 0700 "$cache"
    for run in fetch hit; do
        out=$(credentials "$bin/fetch_token" --url "$url" --auth basic --ca-file "$ca" --cache "$cache/token") ||
            die "fetch_token --cache ($run) failed"
        [[ $out == footprint-token ]] || die "fetch_token --cache ($run) printed no token"
        if [[ $run == fetch ]]; then wait_connections 3; fi
    done
    out=$(credentials "$bin/fetch_token" --url "$url" --auth basic --ca-file "$ca") && [[ $out == footprint-token ]] ||
        die "fetch_token without --cache failed"
    # The fourth report is the last run's, unless the cache hit made a connection: then the last
    # run's follows within milliseconds (it was served after); a second is ample.
    wait_connections 4
    sleep 1
    n=$(connections)
    hit_from=0 hit_to=0
    for ((i = 4; i < n; i++)); do # all but the last, which is the fetch without --cache
        hit_from=$((hit_from + $(field "$(connection "$i")" from_client)))
        hit_to=$((hit_to + $(field "$(connection "$i")" to_client)))
    done
    stop_server
}

print_bytes() {
    local from1 to1 from2 to2 total1 total2 percent resumed_cell hit_cell
    from1=$(field "$first" from_client) to1=$(field "$first" to_client)
    from2=$(field "$second" from_client) to2=$(field "$second" to_client)
    total1=$((from1 + to1)) total2=$((from2 + to2))
    percent=$(awk -v a="$total2" -v b="$total1" 'BEGIN { printf "%.1f", 100 * a / b }')
    goal $((total2 * 100)) $((total1 * GOAL_RESUMED_PERCENT))
    resumed_cell="$(group <<<"$total2") B ($percent % of the first; ≤ $GOAL_RESUMED_PERCENT %: $verdict)"
    if [[ $(field "$second" resumed) != true ]]; then
        resumed_cell="$(group <<<"$total2") B (NOT RESUMED: MISSED)"
        missed=1
    fi
    goal $((hit_from + hit_to)) "$GOAL_HIT_BYTES"
    hit_cell="$(group <<<$((hit_from + hit_to))) B (goal $GOAL_HIT_BYTES: $verdict)"
    echo
    echo "| bytes on the wire (TCP payload, both directions) | to server | to client | total |"
    echo "| --- | --- | --- | --- |"
    echo "| one fetch, full TLS 1.3 handshake | $(group <<<"$from1") B | $(group <<<"$to1") B | $(group <<<"$total1") B |"
    echo "| second fetch by the same Client, new connection, resumed | $(group <<<"$from2") B | $(group <<<"$to2") B | $resumed_cell |"
    echo "| fetch_token --cache, a hit | $(group <<<"$hit_from") B | $(group <<<"$hit_to") B | $hit_cell |"
    echo
    echo "Chain sent: $chain_sizes, RSA 2048, signed by an RSA-4096 root that is not sent" \
        "(shaped like Let's Encrypt's R10 and a leaf it issues, two SCTs included)."
    echo "client_secret_basic to a loopback token server, which closes each connection after its answer;" \
        "its token is 15 bytes: a real one (a JWT, say) adds its length to both fetches."
}

finish() {
    if $check && ((missed)); then
        echo "footprint.sh: a goal was missed" >&2
        exit 1
    fi
}

if $bytes_only; then
    build_bytes
    measure_bytes
    print_bytes
    finish
    exit 0
fi

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
build_bytes

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
measure_bytes

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
size_all=$(size "$work/bytes/fetch_token")
crates_all=$(crates --features state-file,jwt)

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
echo "fetch_token with every feature (--features state-file,jwt, as built for the bytes below):" \
    "$(group <<<"$size_all") B = $(kib "$size_all") KiB, $crates_all crates;" \
    "$(group <<<$((size_all - size_default))) B more than with the default features"
echo "fetch_token minus bare_fetch: $(group <<<$((size_default - size_bare_default))) B with the default features," \
    "$(group <<<$((size_no_roots - size_bare_no_roots))) B without webpki-roots"

echo "Resident memory of the dynamically linked fetch_token, KiB, one more fetch each:"
echo "  default features: $(group <<<"$breakdown_default")"
echo "  without webpki-roots: $(group <<<"$breakdown_no_roots")"

print_bytes
finish
