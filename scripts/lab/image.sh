#!/usr/bin/env bash
# Builds the lab's base rootfs once: Debian 12 with systemd, OpenSSH sshd and sudo.
# Cached under $LAB_CACHE (default /var/cache/wutong-test), keyed by suite and
# recipe version; rebuilt only when missing. Prints the rootfs path.
set -euo pipefail

LAB_CACHE=${LAB_CACHE:-/var/cache/wutong-test}
SUITE=${LAB_SUITE:-bookworm}
MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe below changes, so that caches rebuild.
RECIPE=3
ROOT="$LAB_CACHE/lab-rootfs-$SUITE-r$RECIPE"

if [[ -f "$ROOT/.wutong-lab-ready" ]]; then
	echo "$ROOT"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "lab image: debootstrap is missing; run: apt-get install debootstrap" >&2; exit 1; }

mkdir -p "$LAB_CACHE"
tmp="$ROOT.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
echo "lab image: debootstrap $SUITE into $ROOT (once; a few minutes)" >&2
debootstrap --variant=minbase \
	--include=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,kmod,util-linux,ca-certificates \
	"$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; rm -f "$tmp.log"; exit 1; }
rm -f "$tmp.log"

# Host keys and the machine-id are per host: the lab writes them at `up`.
rm -f "$tmp"/etc/ssh/ssh_host_* "$tmp/etc/machine-id" "$tmp/var/lib/dbus/machine-id"
: >"$tmp/etc/machine-id"
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*

cat >"$tmp/etc/ssh/sshd_config.d/wutong-lab.conf" <<'CONF'
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UseDNS no
CONF
# A container has no consoles to spawn gettys on, and no hardware clock.
for u in getty@tty1 console-getty systemd-timesyncd apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
	ln -sf /dev/null "$tmp/etc/systemd/system/$u.service" 2>/dev/null || true
done
ln -sf /dev/null "$tmp/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$tmp/etc/systemd/system/apt-daily-upgrade.timer"
ln -sf /lib/systemd/system/ssh.service "$tmp/etc/systemd/system/multi-user.target.wants/ssh.service"

touch "$tmp/.wutong-lab-ready"
mv "$tmp" "$ROOT"
trap - EXIT
echo "$ROOT"
