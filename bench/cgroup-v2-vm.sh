#!/bin/sh
# The sandbox on a pure cgroup v2 host (issue: sandbox). This host may be a
# hybrid one (v1 controllers, an empty cgroup2); a reader's Debian 12 server
# is not. Boots a KVM guest that is one: Debian's own 6.1 kernel, systemd
# with its default unified hierarchy, the cached `debian-stock` base as its
# root (lxc, lxcfs, apparmor's userland) plus kmod and bubblewrap. In it:
#   1. `recipes doctor`;
#   2. bench/fixture-cost.sh in `noop` mode (recipes against bwrap, pairwise);
#   3. recipes with limits and LXC in a small book: a `pids=` fork that must
#      fail naming the limit, a `memory=` hog likewise, a step that must sit
#      at the root of its cgroup namespace, an LXC container booted on
#      debian-sysv, an unprivileged one (`lxc.idmap`) started by root, the
#      booted `debian-stock` host, an LXC busybox container started inside
#      that host, and alice's unprivileged one there;
# then powers off. The same fixture-cost run on this host comes first, for
# comparison. Exits 1 when something in the guest failed, 2 when the guest
# could not be made or booted.
# Usage (as root): bench/cgroup-v2-vm.sh [RUNS]   (default 11)
# The kernel and packages are kept in $RECIPES_VM_CACHE
# (/var/tmp/recipes-cgroup-v2-vm); RECIPES_BIN=PATH skips cargo build.
set -eu
runs=${1:-11}
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${RECIPES_VM_CACHE:-/var/tmp/recipes-cgroup-v2-vm}
die() { echo "cgroup-v2-vm: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run me as root"
[ -w /dev/kvm ] || die "no usable /dev/kvm"
for tool in qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs busybox:busybox-static \
    bwrap:bubblewrap apt-get:apt dpkg:dpkg; do
    command -v "${tool%%:*}" > /dev/null || die "${tool%%:*} is missing: apt-get install ${tool#*:}"
done
start=$(date +%s)

if [ -n "${RECIPES_BIN:-}" ]; then
    bin=$RECIPES_BIN
else
    cargo build --release --quiet --manifest-path "$top/Cargo.toml"
    bin="${CARGO_TARGET_DIR:-$top/target}/release/recipes"
fi

work=$(mktemp -d /var/tmp/recipes-vm.XXXXXX)
qemu_pid=
cleanup() {
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== this host: $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup)"
RECIPES_BIN=$bin sh "$top/bench/fixture-cost.sh" "$runs" noop | tee "$work/host-cost"

# ---------------------------------------------------------------- the bases

base_of() { (cd "$top" && "$bin" fixture build "$1" | sed 's/^[^:]*: //' | xargs dirname); }
sysv=$(base_of debian-sysv)
stock=$(base_of debian-stock)

# ---------------------------------------------------------------- the kernel and packages, cached

mkdir -p "$cache"
kernel_pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[ -n "$kernel_pkg" ] || die "apt-cache knows no linux-image-amd64 (apt-get update?)"
kver=${kernel_pkg#linux-image-}
# What a Debian server has and the stock base lacks, as apt would install
# it there: modprobe (the kernel has modules), bwrap, ssh-keygen.
packages="$kernel_pkg $(apt-get -s -o Dir::State::status="$stock/rootfs/var/lib/dpkg/status" \
    install --no-install-recommends kmod bubblewrap openssh-client | sed -n 's/^Inst \([^ ]*\) .*/\1/p' | tr '\n' ' ')"
layer=$cache/layer-$kver
[ "$(cat "$layer/.packages" 2>/dev/null)" = "$packages" ] || rm -rf "$layer"
# Unpacks a package into the layer the guest's root gets, its /bin, /sbin
# and /lib moved under /usr (the base's are symbolic links to them).
unpack() {
    rm -rf "$work/deb"
    dpkg -x "$1" "$work/deb"
    for d in bin sbin lib lib64; do
        if [ -d "$work/deb/$d" ] && [ ! -L "$work/deb/$d" ]; then
            mkdir -p "$work/deb/usr/$d"
            cp -a "$work/deb/$d/." "$work/deb/usr/$d/"
            rm -rf "${work:?}/deb/$d"
        fi
    done
    cp -a "$work/deb/." "$layer.new/"
}
if [ ! -d "$layer" ]; then
    echo "== fetching $packages into $cache"
    rm -rf "$layer.new" "$cache/debs"
    mkdir -p "$layer.new" "$cache/debs"
    # apt-get download writes in the current folder, as _apt where it can.
    chown _apt "$cache/debs" 2>/dev/null || true
    # shellcheck disable=SC2086 # a list of names
    (cd "$cache/debs" && apt-get download -q $packages)
    for deb in "$cache"/debs/*.deb; do unpack "$deb"; done
    # The modules' index, made with the package's own depmod (kmod acts
    # on the name it is called by).
    ln -sf "$layer.new/usr/bin/kmod" "$work/depmod"
    "$work/depmod" -b "$layer.new/usr" "$kver"
    [ -s "$layer.new/usr/lib/modules/$kver/modules.dep" ] || die "depmod made no modules.dep"
    rm -rf "$cache/debs" "$work/deb"
    echo "$packages" > "$layer.new/.packages"
    mv "$layer.new" "$layer"
fi
# Other kernels' layers are stale.
for old in "$cache"/layer-*; do
    [ "$old" = "$layer" ] || rm -rf "$old"
done
vmlinuz=$layer/boot/vmlinuz-$kver
modules=$layer/usr/lib/modules/$kver

# ---------------------------------------------------------------- the initramfs

# Busybox, the modules that reach an ext4 root on a virtio disk (in the
# order modules.dep gives), and an /init that loads them and switches root
# to systemd.
initrd=$work/initrd
mkdir -p "$initrd/bin" "$initrd/dev" "$initrd/proc" "$initrd/sys" "$initrd/new" "$initrd/lib/modules"
cp "$(command -v busybox)" "$initrd/bin/busybox"
deps() {
    awk -v m="$1" -F': *' '$1 ~ "/" m "\\.ko(\\.[a-z]+)?$" { n = split($2, d, " "); for (i = n; i >= 1; i--) print d[i]; print $1 }' \
        "$modules/modules.dep"
}
: > "$initrd/modules"
for m in virtio_pci virtio_blk crc32c_generic crc32c-intel ext4; do
    for path in $(deps "$m"); do
        name=$(basename "$path")
        grep -qx "$name" "$initrd/modules" && continue
        case $name in
        *.ko) cp "$modules/$path" "$initrd/lib/modules/" ;;
        *.ko.xz) xz -dc "$modules/$path" > "$initrd/lib/modules/${name%.xz}" ;;
        *.ko.zst) zstd -qdc "$modules/$path" > "$initrd/lib/modules/${name%.zst}" ;;
        *) die "unknown module file $path" ;;
        esac
        echo "$name" >> "$initrd/modules"
    done
done
cat > "$initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
while read -r m; do
    /bin/busybox insmod "/lib/modules/${m%.*}.ko" 2>/dev/null || /bin/busybox insmod "/lib/modules/$m"
done < /modules
i=0
until [ -b /dev/vda ] || [ "$i" -ge 100 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /new || { echo "initrd: cannot mount /dev/vda"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /dev
exec /bin/busybox switch_root /new /lib/systemd/systemd
EOF
chmod 755 "$initrd/init"
(cd "$initrd" && find . | busybox cpio -o -H newc 2> /dev/null | gzip -1 > "$work/initrd.gz")

# ---------------------------------------------------------------- the guest's root

# What the guest adds to the stock base: the binary, this script's tests,
# their book, a unit that runs them at boot, and the bases in the cache.
extra=$work/extra
guest=$extra/root/guest
mkdir -p "$guest/bench" "$extra/usr/local/bin" "$extra/etc/systemd/system/multi-user.target.wants" \
    "$extra/root/.cache/recipes/bases/$(basename "$sysv")" "$extra/root/.cache/recipes/bases/$(basename "$stock")"
cp "$bin" "$extra/usr/local/bin/recipes"
cp "$top/bench/fixture-cost.sh" "$guest/bench/"
cp -a "$top/recipes" "$guest/recipes"
book=$guest/book
for lang in fr en; do
    mkdir -p "$book/book/$lang/src"
    printf '[book]\ntitle = "cgroup v2"\n' > "$book/book/$lang/book.toml"
    printf '# Summary\n\n- [Limits](limits.md)\n' > "$book/book/$lang/src/SUMMARY.md"
    cat > "$book/book/$lang/src/limits.md" <<'EOF'
# Limits

```sh recipe=limit-pids pids=64
for i in $(seq 100); do sleep 987730 & done
```

```sh recipe=limit-memory memory=64M
head -c 200M /dev/zero > /tmp/big
```

```sh recipe=in-cgroups
test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs
grep -qx "$$" /sys/fs/cgroup/cgroup.procs
test -z "$(grep -v ':/$' /proc/self/cgroup)"
```

```sh recipe=lxc-boot fixture=debian-sysv at=/var/lib/lxc/web1/rootfs requires=lxc timeout=120s
cat > /var/lib/lxc/web1/config <<'EOF2'
lxc.uts.name = web1
lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs
lxc.include = /usr/share/lxc/config/common.conf
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.ipv4.address = 10.0.3.10/24
lxc.tty.max = 2
EOF2
echo web1 > /var/lib/lxc/web1/rootfs/etc/hostname
ip link add br0 type bridge
ip addr add 10.0.3.1/24 dev br0
ip link set br0 up
lxc-start -n web1 -l DEBUG -o /tmp/web1.log || { grep -v ' DEBUG ' /tmp/web1.log | tail -n 40; exit 1; }
lxc-wait -n web1 -s RUNNING -t 10
for i in $(seq 50); do
  lxc-attach -n web1 -- runlevel 2>/dev/null | grep -q ' 2$' && break
  sleep 0.2
done
```

```console recipe=lxc-boot
$ lxc-attach -n web1 -- runlevel
N 2
$ lxc-attach -n web1 -- ping -c 1 -W 2 10.0.3.1 | grep -c '1 received'
1
$ lxc-ls --running
web1[..]
```

```sh recipe=lxc-unpriv requires=lxc timeout=120s
cat > /tmp/u1.conf <<'EOF2'
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.net.0.type = empty
EOF2
lxc-create -n u1 -t busybox -f /tmp/u1.conf > /dev/null
lxc-start -n u1 -l DEBUG -o /tmp/u1.log || { grep -v ' DEBUG ' /tmp/u1.log | tail -n 40; exit 1; }
lxc-wait -n u1 -s RUNNING -t 10
```

```console recipe=lxc-unpriv
$ lxc-attach -n u1 -- cat /proc/1/comm
init
$ lxc-attach -n u1 -- stat -fc %T /sys
sysfs
$ ps -o uid= -p "$(lxc-info -n u1 -p -H)"
100000
```

```sh recipe=booted host=debian-stock timeout=120s
true
```

```console recipe=booted
$ stat -fc %T /sys/fs/cgroup
cgroup2fs
$ systemctl is-active lxc-net lxcfs
active
active
```

```sh recipe=busybox-on-stock host=debian-stock timeout=120s
lxc-create -n b1 -t busybox > /dev/null
lxc-start -n b1 -l DEBUG -o /tmp/b1.log || { grep -v ' DEBUG ' /tmp/b1.log | tail -n 40; exit 1; }
lxc-wait -n b1 -s RUNNING -t 10
```

```console recipe=busybox-on-stock
$ lxc-attach -n b1 -- cat /proc/1/comm
init
$ lxc-ls --running
b1[..]
```

```sh recipe=alice-on-stock host=debian-stock timeout=120s
runuser -l alice -c 'lxc-create -n a1 -t busybox' > /dev/null
runuser -l alice -c 'lxc-unpriv-start -n a1 -l DEBUG -o /tmp/a1.log' || { grep -v ' DEBUG ' /tmp/a1.log | tail -n 40; exit 1; }
for i in $(seq 300); do runuser -l alice -c 'lxc-info -n a1 -s -H' | grep -qx RUNNING && break; sleep 0.1; done
```

```console recipe=alice-on-stock
$ runuser -l alice -c 'lxc-info -n a1 -s -H'
RUNNING
$ ps -o user= -p "$(runuser -l alice -c 'lxc-info -n a1 -p -H')"
100000
```
EOF
done
ln -s ../recipes "$book/recipes"
cat > "$guest/run.sh" <<EOF
#!/bin/sh
# Runs in the guest at boot (recipes-guest.service); writes to the second
# serial port, which the host reads; powers off.
runs=$runs
EOF
cat >> "$guest/run.sh" <<'EOF'
exec > /dev/ttyS1 2>&1
failed=0
check() { # NAME COMMAND...: runs it, says pass or fail
    name=$1; shift
    if "$@"; then echo "pass  $name"; else echo "FAIL  $name"; failed=$((failed + 1)); fi
}
echo "== guest: $(uname -r), /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup), systemd $(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p'), state $(systemctl is-system-running)"
echo "controllers offered: $(cat /sys/fs/cgroup/cgroup.controllers)"
systemctl --failed --no-legend --plain | sed 's/^/failed unit: /'
check "the hierarchy is unified (cgroup2fs)" test "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs
echo "== recipes doctor"
recipes doctor
check "recipes doctor" test $? -eq 0
echo "== bench/fixture-cost.sh $runs noop"
RECIPES_BIN=/usr/local/bin/recipes sh /root/guest/bench/fixture-cost.sh "$runs" noop
check "bench/fixture-cost.sh" test $? -eq 0
echo "== recipes with limits and LXC"
cd /root/guest/book
# NAME EXPECTED-EXIT TEXT: runs the recipe, checks its exit and that its
# report holds TEXT.
recipe() {
    recipes run "$1" -v > "/tmp/$1.out" 2>&1
    code=$?
    if [ "$code" -eq "$2" ] && grep -qF -- "$3" "/tmp/$1.out"; then
        echo "pass  $1 (exit $code: $3)"
    else
        echo "FAIL  $1 (exit $code, wanted $2 and \"$3\"):"
        sed 's/^/      /' "/tmp/$1.out"
        failed=$((failed + 1))
    fi
}
recipe limit-pids 1 'the sandbox reached its process limit (64, key `pids=`)'
recipe limit-memory 1 'the sandbox reached its memory limit (64M, key `memory=`)'
recipe in-cgroups 0 'PASS in-cgroups'
recipe lxc-boot 0 'PASS lxc-boot'
recipe lxc-unpriv 0 'PASS lxc-unpriv'
recipe booted 0 'PASS booted'
recipe busybox-on-stock 0 'PASS busybox-on-stock'
recipe alice-on-stock 0 'PASS alice-on-stock'
leftover=$(find /sys/fs/cgroup/recipes.sandboxes -mindepth 1 -type d 2>/dev/null | head -n 3)
check "no sandbox cgroup left" test -z "$leftover"
pgrep -f 'sleep 987730' > /dev/null && check "no process of limit-pids left" false
echo "== guest done: $failed failed"
sync
systemctl poweroff --no-block
EOF
chmod 755 "$guest/run.sh"
cat > "$extra/etc/systemd/system/recipes-guest.service" <<'EOF'
[Unit]
Description=recipes: the cgroup v2 checks (bench/cgroup-v2-vm.sh)
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/root/guest/run.sh
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
TimeoutStartSec=infinity
StandardOutput=tty
TTYPath=/dev/ttyS1
EOF
ln -s ../recipes-guest.service "$extra/etc/systemd/system/multi-user.target.wants/recipes-guest.service"
printf 'cgroup2\n' > "$extra/etc/hostname"

# The root: the stock base under the layers, as one read-only overlay with
# the cached bases bound in, written into an ext4 image; in a mount
# namespace of its own, so nothing stays mounted.
size_mb=$(du -smc "$stock" "$sysv" "$layer" "$extra" | tail -n 1 | cut -f1)
size_mb=$((size_mb + 12288))
echo "== the guest's disk: ${size_mb} MiB (sparse)"
unshare -m --propagation private sh -eu -c '
    mkdir "$1/root"
    mount -t overlay overlay -o "lowerdir=$2:$3:$4/rootfs" "$1/root"
    for base in "$5" "$4"; do
        mount --bind "$base" "$1/root/root/.cache/recipes/bases/$(basename "$base")"
    done
    mkfs.ext4 -q -F -L root -d "$1/root" "$1/disk.img" "$6M"
' sh "$work" "$extra" "$layer" "$stock" "$sysv" "$size_mb"

# ---------------------------------------------------------------- the boot

# KVM where it runs this kernel: a host whose /dev/kvm is not hardware
# virtualization (e.g. PVM, which runs only kernels built as its guests)
# emulates a stock kernel instruction by instruction and never gets it
# booted. The kernel alone panics (no root) within a second or two under
# KVM; if it does not within 30 s, the guest runs under QEMU's emulator
# (TCG): the checks hold the same, the times are not a machine's times.
accel=${RECIPES_VM_ACCEL:-}
if [ -z "$accel" ]; then
    timeout 30 qemu-system-x86_64 -accel kvm -cpu host -smp 1 -m 256 -nodefaults -display none \
        -monitor none -no-reboot -kernel "$vmlinuz" -append "console=ttyS0 panic=-1" \
        -serial "file:$work/probe" > /dev/null 2>&1 || true
    if grep -q 'Kernel panic' "$work/probe"; then
        accel=kvm
    else
        accel=tcg
        echo "== KVM here does not boot this kernel (no kernel message in 30 s; $(ls /sys/module | grep -x 'kvm_[a-z]*' | tr '\n' ' ')loaded): the guest is emulated (TCG), its times are not comparable"
    fi
fi
case $accel in
kvm) cpu="-accel kvm -cpu host" ;;
tcg) cpu="-accel tcg,thread=multi -cpu max" ;;
*) die "RECIPES_VM_ACCEL is kvm or tcg" ;;
esac

echo "== booting the guest (kernel $kver, $accel, 2 CPUs, 4 GiB)"
: > "$work/results"
# shellcheck disable=SC2086 # $cpu is a list of arguments
timeout 3600 qemu-system-x86_64 $cpu -smp 2 -m 4096 \
    -nodefaults -display none -monitor none -no-reboot \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 systemd.show_status=error" \
    -drive "file=$work/disk.img,if=virtio,format=raw,cache=unsafe" \
    -serial "file:$work/console" -serial "file:$work/results" &
qemu_pid=$!
tail -n +1 -f --pid="$qemu_pid" "$work/results" &
tail_pid=$!
status=0
wait "$qemu_pid" || status=$?
qemu_pid=
wait "$tail_pid" 2>/dev/null || true
[ "$status" -eq 0 ] || { echo "qemu ended with $status; the guest's console:"; tail -n 40 "$work/console"; exit 2; }
if ! grep -q '^== guest done' "$work/results"; then
    echo "the guest never finished; its console:"
    tail -n 40 "$work/console"
    exit 2
fi
echo "== summary ($(( $(date +%s) - start )) s)"
echo "this host ($(uname -r)):"
grep -E 'median|ratio' "$work/host-cost" | sed 's/^/  /'
echo "the guest ($kver, $accel):"
grep -E 'median|ratio|^pass|^FAIL' "$work/results" | sed 's/^/  /'
grep -q '^== guest done: 0 failed' "$work/results"
