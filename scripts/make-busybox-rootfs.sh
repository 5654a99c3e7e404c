#!/bin/sh
# make-busybox-rootfs.sh DEST
#
# Builds a minimal root filesystem at DEST from Debian's busybox-static:
#   bin/busybox and one symlink per applet (`busybox --install -s`),
#   sbin, usr/bin, usr/sbin as symlinks to bin,
#   etc/passwd and etc/group with root (0), berth (1000) and nobody (65534),
#   empty proc, sys, dev, tmp (1777), root and home/berth.
# Idempotent: running it again over an existing DEST leaves the same tree.
# Prints nothing on success; errors go to stderr with a non-zero exit.
set -eu

die() {
    echo "make-busybox-rootfs: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 DEST"
dest=$1
busybox=/bin/busybox

# Debian's busybox-static puts a static binary at /bin/busybox; the dynamic
# `busybox` package would not run inside a rootfs that has no libc.
if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    [ "$(id -u)" -eq 0 ] || die "busybox-static is not installed and we are not root"
    # Another job may hold the dpkg lock: wait for it instead of failing.
    apt-get -qq -o DPkg::Lock::Timeout=600 install -y busybox-static >/dev/null 2>&1 ||
        { apt-get -qq update >/dev/null 2>&1 &&
            apt-get -qq -o DPkg::Lock::Timeout=600 install -y busybox-static >/dev/null 2>&1; } ||
        die "could not install busybox-static with apt-get"
fi
[ -x "$busybox" ] || die "$busybox is missing after installing busybox-static"

mkdir -p "$dest"
cd "$dest"
mkdir -p bin etc proc sys dev root home/berth tmp usr
chmod 0755 bin etc proc sys dev usr
chmod 0700 root
chmod 1777 tmp

# ln -sfn on an existing directory would create a link inside it; only make
# the symlink when the path is not already a real directory.
for link in sbin usr/bin usr/sbin; do
    target=bin
    [ "$link" = sbin ] || target=../bin
    if [ ! -d "$link" ] || [ -L "$link" ]; then
        ln -sfn "$target" "$link"
    fi
done

if ! cmp -s "$busybox" bin/busybox; then
    cp "$busybox" bin/busybox.new
    chmod 0755 bin/busybox.new
    mv -f bin/busybox.new bin/busybox
fi

# `--install -s DIR` would point each link at the host path of the binary, so
# run it through chroot where the binary is /bin/busybox. Without root, make
# the same links by hand.
if [ "$(id -u)" -eq 0 ]; then
    chroot . /bin/busybox --install -s /bin
else
    for applet in $(bin/busybox --list); do
        [ -e "bin/$applet" ] || ln -s /bin/busybox "bin/$applet"
    done
fi

cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
berth:x:1000:1000:berth:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >etc/group <<'EOF'
root:x:0:
berth:x:1000:
nogroup:x:65534:
EOF
chmod 0644 etc/passwd etc/group
chown 1000:1000 home/berth 2>/dev/null || true
