#!/usr/bin/env bash
# Builds the VM tier's base image once: Debian 12 with the cloud kernel, systemd, OpenSSH sshd, sudo and what a
# kubeadm node needs from the OS (iptables, nftables, conntrack, socat, ethtool, ebtables, ipset, util-linux...).
# Cached under $LAB_CACHE/vm-debian12-r$RECIPE (default /var/cache/wutong-test), rebuilt only when missing, built in
# a temporary directory and renamed into place so that a killed build leaves nothing behind. Prints the directory,
# which holds:
#   vmlinuz, initrd.img  the guest kernel and initramfs, booted directly by qemu (-kernel/-initrd)
#   disk.qcow2           the root file system (ext4 on the whole disk, /dev/vda), the backing file of every VM
#   info                 what was built, from what
# No loop mounts: the file system is made from the debootstrap tree with `mkfs.ext4 -d`.
#
# Per-VM settings come at boot from a seed disk (/dev/vdb, made by scripts/vm/vm), applied by wutong-seed.service
# before the network and sshd start: hostname, machine-id, static address, SSH host keys, authorized_keys and the
# root and wt passwords.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
LAB_CACHE=${LAB_CACHE:-/var/cache/wutong-test}
SUITE=bookworm
MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe below changes, so that caches rebuild.
RECIPE=1
OUT="$LAB_CACHE/vm-debian12-r$RECIPE"
DISK_SIZE=${VM_IMAGE_SIZE:-20G} # virtual size of the root file system; sparse, VMs can grow theirs (vm up --disk)

log() { echo "vm image: $*" >&2; }

if [[ -f "$OUT/disk.qcow2" ]]; then
	echo "$OUT"
	exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "needs root (debootstrap)"; exit 1; }
for c in debootstrap mkfs.ext4 qemu-img; do
	command -v "$c" >/dev/null || { "$HERE/deps.sh"; break; }
done

mkdir -p "$LAB_CACHE"
# One build at a time; a second caller waits and then finds the image.
exec 9>"$LAB_CACHE/.vm-image.lock"
flock 9
if [[ -f "$OUT/disk.qcow2" ]]; then
	echo "$OUT"
	exit 0
fi

# Unmounts whatever a killed debootstrap left mounted inside DIR (its /proc, /sys), then removes DIR.
clean() {
	[[ -e "$1" ]] || return 0
	awk -v r="$1/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
	rm -rf --one-file-system "$1"
}
# Builds killed with SIGKILL (no trap ran) are left as $OUT.tmp.PID: we hold the lock, so they are dead.
for d in "$OUT".tmp.*; do clean "$d"; done

tmp="$OUT.tmp.$$"
trap 'clean "$tmp"' EXIT
trap 'exit 1' INT TERM
r="$tmp/rootfs"
mkdir -p "$r"
start=$SECONDS
log "debootstrap $SUITE with linux-image-cloud-amd64 into $OUT (once; a few minutes)"
pkgs=(
	linux-image-cloud-amd64 initramfs-tools zstd
	systemd systemd-sysv udev dbus openssh-server sudo
	iproute2 iputils-ping iptables nftables ebtables ipset conntrack socat ethtool kmod
	util-linux mount procps e2fsprogs less openssl ca-certificates
)
debootstrap --variant=minbase --include="$(IFS=,; echo "${pkgs[*]}")" \
	"$SUITE" "$r" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || { tail -30 "$tmp/debootstrap.log" >&2; exit 1; }
log "debootstrap took $((SECONDS - start))s"

# Host keys, machine-id, hostname and addresses are per VM: the seed disk brings them at boot. An empty
# /etc/machine-id (not a missing one) is not a "first boot", so systemd does not apply presets; the VM's id comes
# from the kernel command line (systemd.machine_id=) and the seed writes it to /etc/machine-id.
rm -f "$r"/etc/ssh/ssh_host_* "$r/var/lib/dbus/machine-id"
: >"$r/etc/machine-id"
echo localhost >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n' >"$r/etc/hosts"
: >"$r/etc/resolv.conf" # debootstrap copied the build host's
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*

# The whole disk is the root file system: no partition table, no swap, no fsck at boot (pass 0).
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n' >"$r/etc/fstab"

cat >"$r/etc/ssh/sshd_config.d/wutong-lab.conf" <<'CONF'
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UseDNS no
CONF

# wt: a sudo user whose sudo asks for its password (Debian's %sudo rule); the seed sets the password and key.
chroot "$r" useradd -u 1000 -U -m -s /bin/bash -G sudo wt # uid 1000: the seed brings its files
install -d -m 0700 -o "$(stat -c %u "$r/home/wt")" -g "$(stat -c %g "$r/home/wt")" "$r/home/wt/.ssh"
install -d -m 0700 "$r/root/.ssh"

# The seed: /dev/vdb, an ext4 file system without a journal made by `vm up` (scripts/vm/vm make_seed):
#   hostname  the VM's name
#   tree/     files laid over / (etc/hostname, etc/hosts, etc/resolv.conf, etc/machine-id, the .network file,
#             the SSH host keys, authorized_keys for root and wt) with their modes and owners
#   passwords chpasswd -e input (crypt hashes made on the jump host)
#   resize    present when `vm up --disk` made the disk larger than the file system
# Each program the script runs costs ~0.1-0.5 s under TCG, so it runs few and uses shell builtins where it can.
cat >"$r/usr/local/sbin/wutong-seed" <<'SEED'
#!/bin/sh
set -eu
S=/run/wutong-seed
# The kernel makes /dev/vdb (devtmpfs) when virtio_blk, loaded by the initramfs for /dev/vda, probes it: no need to
# wait for udev's coldplug (dev-vdb.device), which takes tens of seconds under TCG.
i=0
while [ ! -b /dev/vdb ]; do
	i=$((i + 1))
	[ $i -le 600 ] || { echo "wutong-seed: no seed disk /dev/vdb" >&2; exit 1; }
	sleep 0.1
done
mounted=0
while read -r _ m _; do [ "$m" != "$S" ] || mounted=1; done </proc/mounts
[ $mounted -eq 1 ] || mount -t ext4 -o ro,nodev,nosuid,noexec /dev/vdb "$S"
read -r name <"$S/hostname"
echo "$name" >/proc/sys/kernel/hostname
# Existing directories (/etc, /root, /home/wt) keep their modes; files come with theirs.
tar -C "$S/tree" -cf - . | tar -C / -xpf - --no-overwrite-dir
chpasswd -e <"$S/passwords"
if [ -e "$S/resize" ]; then resize2fs /dev/vda >/dev/null 2>&1 || true; fi
umount "$S"
SEED
chmod 0755 "$r/usr/local/sbin/wutong-seed"
# No DefaultDependencies: it needs nothing but /run and the root file system (mounted rw by the kernel), so it
# runs at once rather than after udev, mounts and tmpfiles.
cat >"$r/etc/systemd/system/wutong-seed.service" <<'UNIT'
[Unit]
Description=Apply the wutong VM seed (hostname, machine-id, address, SSH keys, passwords)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target systemd-networkd.service ssh.service sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
RuntimeDirectory=wutong-seed
ExecStart=/usr/local/sbin/wutong-seed

[Install]
WantedBy=sysinit.target
UNIT
# The image's sshd_config is known good: skip ssh.service's `sshd -t` run at every boot.
mkdir -p "$r/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\n' >"$r/etc/systemd/system/ssh.service.d/wutong-vm.conf"

# Boot fast under TCG: nothing periodic, no getty but the serial one, no resume device to wait for, no modprobe of
# modules nothing here uses at boot (the kernel still loads them on demand).
chroot "$r" systemctl -q enable wutong-seed.service systemd-networkd.service ssh.service serial-getty@ttyS0.service
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	dpkg-db-backup.timer man-db.timer getty@tty1.service systemd-networkd-wait-online.service \
	modprobe@drm.service modprobe@efi_pstore.service modprobe@dm_mod.service modprobe@fuse.service \
	modprobe@loop.service; do
	ln -sf /dev/null "$r/etc/systemd/system/$u"
done
# The initramfs must find /dev/vda: MODULES=most (the default) carries every block and virtio driver.
cat >"$r/etc/initramfs-tools/conf.d/wutong-vm" <<'CONF'
MODULES=most
COMPRESS=zstd
RESUME=none
CONF
chroot "$r" update-initramfs -u -k all >"$tmp/initramfs.log" 2>&1 || { cat "$tmp/initramfs.log" >&2; exit 1; }
kver=$(basename "$(ls -d "$r"/lib/modules/*)")
chroot "$r" lsinitramfs "/boot/initrd.img-$kver" >"$tmp/initrd.list"
for m in virtio_blk virtio_net virtio_pci ext4; do
	# Built into the kernel, or a module in the initramfs.
	if ! grep -q "/$m.ko" "$r/lib/modules/$kver/modules.builtin" && ! grep -q "/$m.ko" "$tmp/initrd.list"; then
		log "the initramfs lacks $m: VMs would not find their disk"
		exit 1
	fi
done
cp "$r/boot/vmlinuz-$kver" "$tmp/vmlinuz"
cp "$r/boot/initrd.img-$kver" "$tmp/initrd.img"

# The root file system straight from the tree. Inode tables and the journal are written now (zeros, skipped by
# qemu-img) rather than lazily by the guest's ext4lazyinit, which would cost every VM CPU and disk at each boot.
log "mkfs.ext4 -d ($DISK_SIZE) and qemu-img convert"
mkfs.ext4 -q -F -L wtroot -E lazy_itable_init=0,lazy_journal_init=0 -d "$r" "$tmp/disk.raw" "$DISK_SIZE" >&2
qemu-img convert -O qcow2 "$tmp/disk.raw" "$tmp/disk.qcow2"
rm -f "$tmp/disk.raw"
cat >"$tmp/info" <<-INFO
	recipe=$RECIPE
	suite=$SUITE
	mirror=$MIRROR
	kernel=$kver
	size=$DISK_SIZE
	built=$(date -u +%FT%TZ)
	seconds=$((SECONDS - start))
INFO
clean "$r"
rm -f "$tmp"/*.log "$tmp/initrd.list"
mv "$tmp" "$OUT"
trap - EXIT
log "built in $((SECONDS - start))s: $(du -sh "$OUT" | cut -f1) on disk"
echo "$OUT"
