#!/usr/bin/env bash
# A real suspend-to-RAM test of cctoken's clock, in a throwaway VM:
#
#   bash scripts/suspend-test.sh
#   SUSPEND_SLEEP_S=30 bash scripts/suspend-test.sh     # a shorter sleep (more than 20 s)
#
# examples/suspend_probe.rs caches a 20-second token from a token server in its own process, suspends
# the machine to RAM for longer than that (RTC wake alarm, then `mem` to /sys/power/state), and on
# waking asks the cache again. It is built twice: as cctoken ships (CLOCK_BOOTTIME, which counts
# suspend) and with `--cfg cctoken_instant_clock` (std's Instant, CLOCK_MONOTONIC, which stops
# during suspend). Both run in one VM, one after the other. The test passes only if the first
# fetches a new token after waking and the control serves the expired one: the failure the clock
# fixes.
#
# The VM is qemu-system-x86_64 under TCG (no KVM needed) with S3 turned on, Debian's kernel, and an
# initramfs holding static busybox, an /init script and the two static probes. Missing Debian
# packages are installed (needs root or sudo). Nothing here uses the network except apt (and cargo,
# if the crates are not fetched yet); the token server is inside the VM, on its loopback. The
# probes are built under $CARGO_TARGET_DIR (default target); everything else lives in a temporary
# directory that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "suspend-test: $*" >&2; }
die() { log "$*"; exit 1; }
start=$SECONDS
source scripts/debian-rust.sh # ensure_packages

# The probe's tokens live 20 s; the VM must sleep longer than that.
SLEEP_S=${SUSPEND_SLEEP_S:-60}
[[ $SLEEP_S =~ ^[0-9]+$ ]] && ((SLEEP_S > 20)) || die "SUSPEND_SLEEP_S must be whole seconds, more than 20"
# Boot and two suspend/resume cycles under TCG add about 20 s to the two sleeps: this bound only
# keeps a VM that never wakes from hanging the script.
QEMU_TIMEOUT_S=${SUSPEND_QEMU_TIMEOUT_S:-$((2 * SLEEP_S + 180))}
PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static cpio)
TARGET=x86_64-unknown-linux-gnu

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Debian packages: the emulator, a kernel with rtc_cmos built in, a static busybox, cpio.
ensure_packages "${PACKAGES[@]}"

# 2. The kernel: the newest installed. /boot may be readable by root only.
kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -1)
[[ -n $kernel ]] || die "no kernel under /boot (package linux-image-amd64)"
if [[ ! -r $kernel ]]; then
    sudo cat "$kernel" >"$work/vmlinuz"
    kernel=$work/vmlinuz
fi
log "kernel $kernel"

# 3. The two probes, static so that the initramfs needs no libraries. `--target` keeps RUSTFLAGS
# off build scripts and proc-macros. Each flag set has its own artifacts in the target dir, but
# both builds write the same examples/suspend_probe, so each is copied right after its build.
mkdir -p "$work/root/bin" "$work/root/sbin" "$work/root/usr/bin" "$work/root/usr/sbin" \
    "$work/root/proc" "$work/root/sys" "$work/root/dev"
for clock in boottime instant; do
    flags="-C target-feature=+crt-static"
    [[ $clock == instant ]] && flags+=" --cfg cctoken_instant_clock"
    log "building the probe, clock=$clock"
    RUSTFLAGS=$flags cargo build --quiet --release --target "$TARGET" --example suspend_probe
    cp "${CARGO_TARGET_DIR:-target}/$TARGET/release/examples/suspend_probe" "$work/root/probe-$clock"
done

# 4. The initramfs. /init brings up loopback (the token server listens there), runs both probes,
# prints the kernel's suspend messages as evidence, and powers off, which ends qemu. The kernel runs
# quiet so that its messages do not cut into the probes' lines; dmesg keeps them all.
cp /bin/busybox "$work/root/bin/busybox"
cat >"$work/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The initramfs has no /dev/console node: take the console from devtmpfs.
mount -t devtmpfs devtmpfs /dev && exec </dev/console >/dev/console 2>&1
ip link set lo up
echo "init: kernel \$(uname -r), rtc \$(cat /sys/class/rtc/rtc0/name), mem_sleep: \$(cat /sys/power/mem_sleep)"
for clock in boottime instant; do
    /probe-\$clock $SLEEP_S || echo "init: probe-\$clock failed with \$?"
done
dmesg | grep 'PM: suspend' | sed 's/^/init: dmesg: /'
poweroff -f
EOF
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio --quiet -o -H newc | gzip -1) >"$work/initramfs.gz"

# 5. Boot. S3 is off in qemu's PIIX4 by default; the RTC runs on the host's clock, so its alarm
# wakes the guest after real seconds. No default devices: no network card (nor its boot ROM), no
# display; the serial console is this script's output. A failed or timed-out qemu (124) fails the
# test, after the results below.
log "booting; the VM sleeps twice for $SLEEP_S s"
qemu_status=0
timeout "$QEMU_TIMEOUT_S" qemu-system-x86_64 -machine pc -accel tcg -m 256 -nodefaults -display none \
    -serial stdio -monitor none -no-reboot -global PIIX4_PM.disable_s3=0 -rtc base=utc,clock=host \
    -kernel "$kernel" -initrd "$work/initramfs.gz" -append "console=ttyS0 panic=-1 quiet" \
    </dev/null | tee "$work/console.log" || qemu_status=$?
sed -i 's/\r$//' "$work/console.log"

# 6. The verdicts: each probe's last line, with more than the token's 20 s spent asleep, and the
# kernel's word that it really suspended (S3, "deep") and resumed, once per probe.
final() { grep -a "^suspend-probe: clock=$1 .*verdict=" "$work/console.log" | tail -1 || true; }
boottime=$(final boottime)
instant=$(final instant)
entries=$(grep -ac 'init: dmesg: .*PM: suspend entry (deep)' "$work/console.log" || true)
exits=$(grep -ac 'init: dmesg: .*PM: suspend exit' "$work/console.log" || true)
echo
echo "suspend-test: results"
grep -a 'init: dmesg: ' "$work/console.log" || true
echo "${boottime:-suspend-probe: clock=boottime: no final line}"
echo "${instant:-suspend-probe: clock=instant: no final line}"
echo "suspend-test: took $((SECONDS - start)) s"
failed=0
((qemu_status == 0)) || { log "FAIL: qemu exited with $qemu_status (124: timed out after $QEMU_TIMEOUT_S s)"; failed=1; }
[[ $boottime == *" verdict=fetched-after-wake" ]] || { log "FAIL: the boottime build did not fetch after waking"; failed=1; }
[[ $instant == *" verdict=served-expired-token" ]] || { log "FAIL: the control did not serve the expired token"; failed=1; }
for line in "$boottime" "$instant"; do
    slept=$(sed -n 's/.* slept_s=\([0-9]*\) .*/\1/p' <<<"$line")
    ((${slept:-0} > 20)) || { log "FAIL: asleep ${slept:-?} s, not more than the token's 20 s: ${line:-no line}"; failed=1; }
done
((entries == 2 && exits == 2)) || { log "FAIL: expected 2 suspend entries (deep) and exits, saw $entries and $exits"; failed=1; }
((failed == 0)) || exit 1
log "PASS: cctoken's clock counts suspend; std's Instant does not"
