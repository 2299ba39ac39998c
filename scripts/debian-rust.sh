# Sourced by cross-test.sh and footprint.sh; defines functions only. The caller defines `log` and `die`.
#
# rustup cannot download targets on our machines, so std for another target is built from source
# (-Zbuild-std) with Debian's rustc-web, which ships std's sources (rust-web-src).

DEBIAN_RUST_PACKAGES=(rustc-web cargo-web rust-web-src)
# cctoken's MSRV, from its one home: Cargo.toml's rust-version.
MSRV=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)

# Installs those of the Debian packages given that are missing (needs root or sudo).
ensure_packages() { # package...
    local missing=() package sudo=()
    for package; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Switches this shell to Debian's toolchain. Builds go to $CROSS_TARGET_DIR (default target/cross) and
# crates are fetched into $CROSS_CARGO_HOME (default $CROSS_TARGET_DIR/cargo-home), so neither the
# rustup toolchain's target directory nor its package cache lock is shared. Sets $cargo.
use_debian_rust() {
    export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    export CARGO_TERM_COLOR=never
    export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$PWD/target/cross}
    export CARGO_HOME=${CROSS_CARGO_HOME:-$CARGO_TARGET_DIR/cargo-home}
    unset RUSTFLAGS RUSTDOCFLAGS CARGO_BUILD_TARGET
    cargo=/usr/bin/cargo
    local version
    version=$("$RUSTC" --version | sed -n 's/^[a-z]* \([0-9]*\.[0-9]*\).*/\1/p')
    [[ $(printf '%s\n%s\n' "$version" "$MSRV" | sort -V | head -1) == "$MSRV" ]] ||
        die "Debian's rustc is $version, older than cctoken's MSRV $MSRV"
    log "$("$RUSTC" --version), $("$cargo" --version); target dir $CARGO_TARGET_DIR"
    # Cargo.lock version 4 needs cargo 1.78; a dependency that needs a newer rustc than Debian's
    # stops the build with its rust-version.
    "$cargo" metadata --locked --format-version 1 >/dev/null ||
        die "Debian's cargo cannot use Cargo.lock as it is (lock file version?)"
    [[ -d $("$RUSTC" --print sysroot)/lib/rustlib/src/rust/library ]] ||
        die "no std sources under $("$RUSTC" --print sysroot)/lib/rustlib/src/rust (package rust-web-src)"
    mkdir -p "$CARGO_TARGET_DIR"
}
