#!/bin/sh
# fake-host.sh STATE -- COMMAND...
#
# Runs COMMAND as root in a private mount namespace whose root is a copy of
# the host's, with the folders a sandbox cares about in the state STATE, and
# says afterwards whether COMMAND changed them. Nothing of the real host is
# changed: the copy's /var is an overlay of the host's (its changes in a
# tmpfs), and its other top folders are bound from the host, but /root,
# which is left out when STATE asks for it.
#
# STATE is a comma-separated list of:
#   no-lxc no-cache-lxc no-lxcfs no-log no-root   that folder absent
#   lxc-link        /var/lib/lxc a link to a folder on "another disk"
#   host-web1       /var/lib/lxc holding the host's own container `web1`
#   as-is           the host's folders as they are
# Call it through `unshare --mount --propagation private`.
set -eu
state=$1
shift
[ "$1" = -- ] && shift

here=$(pwd)
fake=$(mktemp -d /tmp/fake-host.XXXXXX)
mount -t tmpfs fake-host "$fake"
has() { case ",$state," in *",$1,"*) return 0 ;; esac; return 1; }

for entry in /*; do
    name=${entry#/}
    if [ -L "$entry" ]; then
        ln -s "$(readlink "$entry")" "$fake/$name"
    elif [ -d "$entry" ]; then
        [ "$name" = root ] && has no-root && continue
        mkdir "$fake/$name"
        [ "$name" = var ] && continue
        mount --rbind "$entry" "$fake/$name"
    fi
done
mkdir -p "$fake/.layers/upper" "$fake/.layers/work" "$fake/.disk2"
mount -t overlay fake-var -o "lowerdir=/var,upperdir=$fake/.layers/upper,workdir=$fake/.layers/work" "$fake/var"

var=$fake/var
has no-lxc && rm -rf "$var/lib/lxc"
has no-cache-lxc && rm -rf "$var/cache/lxc"
has no-lxcfs && rm -rf "$var/lib/lxcfs"
has no-log && rm -rf "$var/log"
if has lxc-link; then
    rm -rf "$var/lib/lxc"
    mkdir -p "$fake/.disk2/lxc"
    ln -s /.disk2/lxc "$var/lib/lxc"
fi
if has host-web1; then
    # (the link points into the copy: resolved from its root.)
    lxc=$var/lib/lxc
    [ -L "$lxc" ] && lxc=$fake$(readlink "$lxc")
    mkdir -p "$lxc/web1/rootfs/etc" "$lxc/host-only"
    echo 'lxc.uts.name = web1 # the host'"'"'s own' > "$lxc/web1/config"
    echo host > "$lxc/web1/rootfs/etc/hostname"
fi

cd "$fake"
mkdir .old
pivot_root . .old
umount -l /.old
rmdir /.old
# The copy of /tmp shows the fake root's own mount point: gone with it.
umount -l "$fake" && rmdir "$fake"

# What the sandbox must neither create nor change: the folders, their
# kind (a link stays a link), and everything under LXC's folders.
look() {
    for dir in /var/lib/lxc /var/cache/lxc /var/lib/lxcfs /var/log /var/tmp /root /.disk2; do
        if [ -L "$dir" ]; then
            echo "$dir -> $(readlink "$dir")"
        elif [ -e "$dir" ]; then
            echo "$dir exists"
        else
            echo "$dir absent"
        fi
    done
    find /var/lib/lxc/ /var/cache/lxc/ /var/lib/lxcfs/ /.disk2/ -printf '%p %y %s %T@\n' 2>/dev/null | sort
}
look > /tmp/.fake-host-before.$$
cd "$here"
status=0
"$@" || status=$?
look > /tmp/.fake-host-after.$$
if cmp -s /tmp/.fake-host-before.$$ /tmp/.fake-host-after.$$; then
    echo "fake host unchanged"
else
    echo "fake host changed:"
    diff /tmp/.fake-host-before.$$ /tmp/.fake-host-after.$$ || true
    status=3
fi
rm -f /tmp/.fake-host-before.$$ /tmp/.fake-host-after.$$
exit "$status"
