#!/usr/bin/env bash
# Installs what the VM tier (scripts/vm) needs from Debian's archive, only when something is missing:
# qemu-system-x86_64, qemu-img, mkfs.ext4 (with -d), debootstrap, ssh-keygen, ip and openssl.
set -euo pipefail

# command → the Debian package that ships it
declare -A pkg=(
	[qemu-system-x86_64]=qemu-system-x86
	[qemu-img]=qemu-utils
	[mkfs.ext4]=e2fsprogs
	[debootstrap]=debootstrap
	[ssh-keygen]=openssh-client
	[ssh]=openssh-client
	[ip]=iproute2
	[openssl]=openssl
)
missing=()
for c in "${!pkg[@]}"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("${pkg[$c]}")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0
[[ $(id -u) -eq 0 ]] || { echo "vm deps: missing ${missing[*]}; run as root to install them" >&2; exit 1; }
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "vm deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
