#!/usr/bin/env bash
# addons.sh: build the cluster add-ons of the offline Kubernetes bundle from source, per arch.
#
#   scripts/k8s/addons.sh --arch amd64 [--arch loong64 ...] --out DIR [--steps flanneld,cni,local-path,iptables,traefik]
#
# Called by scripts/k8s/build.sh after Kubernetes itself is built. For each arch it writes into DIR/<arch>/:
#   bin/flanneld                  github.com/flannel-io/flannel (the TencentCloud VPC and cgo UDP backends left out)
#   bin/local-path-provisioner    github.com/rancher/local-path-provisioner
#   bin/local-path-helper         scripts/k8s/local-path-helper: the helper pods' /bin/sh (no busybox needed)
#   files/cni-plugins.tgz         containernetworking/plugins (bridge host-local loopback portmap bandwidth firewall
#                                 tuning) and the flannel CNI meta plugin, plain files at the tar root like upstream's
#   layers/iptables.tar           iptables/nftables/conntrack userland from Debian bookworm, an image layer for the
#                                 flannel (and kube-proxy) images; only for arches Debian bookworm has
#   bin/traefik                   github.com/traefik/traefik/v3, the ingress controller (see prepare_traefik for
#                                 what is patched: ACME DNS providers whose SDKs the proxy does not serve)
# and, arch-independent:
#   DIR/manifests/flannel.yaml     flannel without its ConfigMap and CNI config (the installer writes those)
#   DIR/manifests/local-path.yaml  local-path-provisioner, the default StorageClass "local-path"
#   DIR/manifests/traefik.yaml     Traefik, the default IngressClass "traefik" (a copy of scripts/k8s/manifests/traefik.yaml)
#   DIR/addons-images.yaml         bundle.yaml `images:` items for the images above (paste under `images:`)
#
# Sources come from the Go module proxy (copied to DIR/src, patched there where needed) and Debian's archive.
# Every output is written to a temporary name and renamed into place; a step whose marker (DIR/<arch>/.addons/)
# records the same inputs is skipped, so running again after a failure resumes where it stopped.
# Builds: CGO_ENABLED=0, -trimpath, -ldflags "-s -w", under nice -n 5.
set -euo pipefail

FLANNEL_VERSION=v0.28.10
CNI_PLUGINS_VERSION=v1.10.0
# The flannel CNI plugin left containernetworking/plugins after v0.9.1 for github.com/flannel-io/cni-plugin, which
# the module proxy does not serve; v0.9.1's plugins/meta/flannel is built instead. It speaks CNI spec 0.1.0-0.4.0:
# the node's conflist must say "cniVersion": "0.3.1" or "0.4.0", not "1.0.0".
CNI_FLANNEL_VERSION=v0.9.1
CNI_PLUGINS="bandwidth bridge firewall host-local loopback portmap tuning"
LPP_VERSION=v0.0.30
# Traefik (the ingress controller). Its version is also in scripts/k8s/manifests/traefik.yaml (the image's tag);
# installer/pipeline's TestTraefikManifest checks the two agree.
TRAEFIK_VERSION=v3.7.13
# Traefik's go.mod replaces github.com/abbot/go-http-auth with a containous fork at a commit the module proxy does
# not serve (403); this is the newest fork commit it serves (the one Traefik used from v2.2 to v3.6).
TRAEFIK_GO_HTTP_AUTH=v0.4.1-0.20200324110947-a37a7636d23e
# Modules the proxy does not serve (403), needed only by these ACME DNS-01 providers of go-acme/lego, which are
# dropped from lego's provider registry (an air-gapped cluster reaches no ACME server anyway; http-01/tls-alpn-01
# and the other DNS providers stay).
TRAEFIK_DROP_DNS="edgedns huaweicloud oraclecloud sakuracloud ucloud yandexcloud"
TRAEFIK_UNSERVED="github.com/akamai/AkamaiOPEN-edgegrid-golang/v13 github.com/huaweicloud/huaweicloud-sdk-go-v3
github.com/nrdcg/oci-go-sdk/common/v1065 github.com/nrdcg/oci-go-sdk/dns/v1065 github.com/sacloud/sacloud-sdk-go
github.com/ucloud/ucloud-sdk-go github.com/yandex-cloud/go-sdk/services/dns"
# Debian bookworm packages of the iptables layer: iptables (nft and legacy), nftables, conntrack and their closure
# (apt-cache depends --recurse --no-recommends of iptables nftables conntrack), checked below with readelf.
DEBIAN_SUITE=bookworm
IPTABLES_PACKAGES="iptables libxtables12 libip4tc2 libip6tc2 libnftnl11 libmnl0 libnetfilter-conntrack3 libnfnetlink0
nftables libnftables1 libjansson4 libgmp10 libedit2 libbsd0 libmd0 libtinfo6 conntrack netbase libc6 libgcc-s1
gcc-12-base"

FLANNEL_IMAGE=ghcr.io/flannel-io/flannel:$FLANNEL_VERSION
LPP_IMAGE=docker.io/rancher/local-path-provisioner:$LPP_VERSION
HELPER_IMAGE=docker.io/wutong/local-path-helper:$LPP_VERSION
TRAEFIK_IMAGE=docker.io/library/traefik:$TRAEFIK_VERSION
LOCAL_PATH_DIR=/var/lib/wutong/local-path

usage() {
	sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

ARCHES=()
OUT=
STEPS=flanneld,cni,local-path,iptables,traefik
while [ $# -gt 0 ]; do
	case $1 in
	--arch) [ $# -ge 2 ] || usage 2; ARCHES+=("$2"); shift 2 ;;
	--arch=*) ARCHES+=("${1#--arch=}"); shift ;;
	--out) [ $# -ge 2 ] || usage 2; OUT=$2; shift 2 ;;
	--out=*) OUT=${1#--out=}; shift ;;
	--steps) [ $# -ge 2 ] || usage 2; STEPS=$2; shift 2 ;;
	--steps=*) STEPS=${1#--steps=}; shift ;;
	-h | --help) usage 0 ;;
	*) echo "addons.sh: unknown argument $1" >&2; usage 2 ;;
	esac
done
[ ${#ARCHES[@]} -gt 0 ] && [ -n "$OUT" ] || usage 2
for a in "${ARCHES[@]}"; do
	case $a in amd64 | arm64 | loong64) ;; *) echo "addons.sh: unknown arch $a (use amd64, arm64, loong64)" >&2; exit 2 ;; esac
done

for s in ${STEPS//,/ }; do
	case $s in flanneld | cni | local-path | iptables | traefik) ;; *) echo "addons.sh: unknown step $s (use flanneld, cni, local-path, iptables, traefik)" >&2; exit 2 ;; esac
done
want_step() { case ",$STEPS," in *",$1,"*) return 0 ;; esac; return 1; }

REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SRC=$OUT/src
mkdir -p "$SRC"

# Go: the local toolchain only, no inherited -mod or workspace settings.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0 GOOS=linux
unset GOARCH

log() { printf 'addons.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# RECIPE is part of every step's marker: bump it when a step's recipe changes, to rebuild.
RECIPE=r1

# step_done DIR NAME KEY: is step NAME in DIR done with the same inputs KEY?
step_done() { [ -f "$1/.addons/$2.done" ] && [ "$(cat "$1/.addons/$2.done")" = "$3" ]; }
# mark_done DIR NAME KEY
mark_done() {
	mkdir -p "$1/.addons"
	printf '%s\n' "$3" >"$1/.addons/$2.done.tmp"
	mv -f "$1/.addons/$2.done.tmp" "$1/.addons/$2.done"
}

# gobuild ARCH OUTPUT EXTRA_LDFLAGS PACKAGE...: build into OUTPUT through a temporary name.
gobuild() {
	local arch=$1 out=$2 ldx=$3
	shift 3
	mkdir -p "$(dirname "$out")"
	rm -f "$out.tmp"
	GOARCH=$arch nice -n 5 go build -trimpath -ldflags "-s -w $ldx" -o "$out.tmp" "$@"
	mv -f "$out.tmp" "$out"
}

# module_src MODULE VERSION NAME: copy a module's source from the module cache to $SRC/NAME (writable), once.
module_src() {
	local mod=$1 ver=$2 dir=$SRC/$3
	if [ -f "$dir/.copied" ]; then
		return
	fi
	local cache
	cache=$(cd "$SRC" && go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$cache" ] && [ -d "$cache" ] || die "go mod download $mod@$ver gave no source directory"
	rm -rf "$dir.tmp" "$dir"
	cp -r "$cache" "$dir.tmp"
	chmod -R u+w "$dir.tmp"
	touch "$dir.tmp/.copied"
	mv "$dir.tmp" "$dir"
}

# --- sources (arch-independent) ---

prepare_sources() {
	# flannel: drop the TencentCloud VPC backend (its SDK module is not served by the proxy: 403) and the UDP
	# backend (cgo on amd64, a stub elsewhere; we build with CGO_ENABLED=0). vxlan, host-gw, ipip, wireguard,
	# ipsec, extension and alloc stay.
	local fl=flannel-$FLANNEL_VERSION
	if [ ! -f "$SRC/$fl/.patched" ]; then
		module_src github.com/flannel-io/flannel "$FLANNEL_VERSION" "$fl"
		sed -i -e '\#"github.com/flannel-io/flannel/pkg/backend/tencentvpc"#d' \
			-e '\#"github.com/flannel-io/flannel/pkg/backend/udp"#d' "$SRC/$fl/main.go"
		! grep -q 'backend/tencentvpc"\|backend/udp"' "$SRC/$fl/main.go" || die "could not patch $SRC/$fl/main.go"
		touch "$SRC/$fl/.patched"
	fi
	module_src github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION" "cni-plugins-$CNI_PLUGINS_VERSION"
	module_src github.com/rancher/local-path-provisioner "$LPP_VERSION" "local-path-provisioner-$LPP_VERSION"

	# The flannel CNI plugin of containernetworking/plugins v0.9.1, in a wrapper module of ours.
	local cf=$SRC/cni-flannel-$CNI_FLANNEL_VERSION
	if [ ! -f "$cf/.ready" ]; then
		rm -rf "$cf"
		mkdir -p "$cf"
		(cd "$cf" && go mod init wutong.local/cni-flannel >/dev/null 2>&1 &&
			GOFLAGS=-mod=mod go get "github.com/containernetworking/plugins@$CNI_FLANNEL_VERSION" >/dev/null 2>&1) ||
			die "could not set up the wrapper module for the flannel CNI plugin in $cf"
		touch "$cf/.ready"
	fi

	# The local-path helper, from this repo, in a module of its own (stdlib only).
	local lh=$SRC/local-path-helper
	mkdir -p "$lh"
	cp "$REPO/scripts/k8s/local-path-helper/main.go" "$lh/main.go.tmp" && mv -f "$lh/main.go.tmp" "$lh/main.go"
	if [ ! -f "$lh/go.mod" ]; then
		printf 'module wutong.local/local-path-helper\n\ngo 1.26\n' >"$lh/go.mod.tmp" && mv "$lh/go.mod.tmp" "$lh/go.mod"
	fi
}

# prepare_traefik: Traefik's source in $SRC/traefik-$TRAEFIK_VERSION, built as the main module (a wrapper module
# would drop its replace directives), patched so that every module it needs is one the proxy serves:
#   - pkg/config/dynamic/ext: a nested module (github.com/traefik/traefik/dynamic/ext, replaced by ./pkg/config/
#     dynamic/ext) that a module zip cannot hold and the proxy does not serve; written back as upstream has it,
#     extension points that are empty structs;
#   - go-http-auth: the containous fork at $TRAEFIK_GO_HTTP_AUTH (see above);
#   - go-acme/lego: a copy in $SRC/lego-VERSION (the version Traefik requires), replaced into Traefik's go.mod, with
#     the DNS providers $TRAEFIK_DROP_DNS removed from its registry, and the modules only they need
#     ($TRAEFIK_UNSERVED) removed from both go.mod files.
# The web dashboard's assets (webui/static, built with Node upstream) are not in the module zip: go:embed finds only
# a placeholder file, so the binary has no dashboard (the manifest does not enable it).
prepare_traefik() {
	local tr=traefik-$TRAEFIK_VERSION key m p lego lv
	key="traefik $TRAEFIK_VERSION $TRAEFIK_GO_HTTP_AUTH $TRAEFIK_DROP_DNS $(printf '%s' "$TRAEFIK_UNSERVED" | tr -s ' \n' '  ') $RECIPE"
	if [ -f "$SRC/$tr/.patched" ] && [ "$(cat "$SRC/$tr/.patched")" = "$key" ]; then return; fi
	rm -rf "${SRC:?}/$tr"
	module_src github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" "$tr"
	lv=$(sed -n 's#^[[:space:]]*github.com/go-acme/lego/v5 \(v[^ ]*\)$#\1#p' "$SRC/$tr/go.mod")
	[ -n "$lv" ] || die "no github.com/go-acme/lego/v5 requirement in Traefik $TRAEFIK_VERSION's go.mod"
	lego=lego-$lv
	rm -rf "${SRC:?}/$lego"
	module_src github.com/go-acme/lego/v5 "$lv" "$lego"
	# The nested ext module.
	m=$SRC/$tr/pkg/config/dynamic/ext
	grep -q '^replace github.com/traefik/traefik/dynamic/ext => ./pkg/config/dynamic/ext$' "$SRC/$tr/go.mod" ||
		die "Traefik $TRAEFIK_VERSION no longer replaces github.com/traefik/traefik/dynamic/ext as expected"
	mkdir -p "$m"
	printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' >"$m/go.mod"
	printf '%s\n' 'package ext' '' '// HTTP is a dynamic.HTTP extension.' 'type HTTP struct{}' '' \
		'// Router is a dynamic.Router extension.' 'type Router struct{}' '' \
		'// RouterIng is a RouterIng extension for ingress provider annotations.' 'type RouterIng struct{}' '' \
		'// ToRouter converts RouterIng to a Router.' 'func (r RouterIng) ToRouter() Router {' '	return Router{}' '}' >"$m/ext.go"
	# go-http-auth.
	sed -i "s#\(github.com/containous/go-http-auth\) v[^ ]*\$#\1 $TRAEFIK_GO_HTTP_AUTH#" "$SRC/$tr/go.mod"
	grep -q "github.com/containous/go-http-auth $TRAEFIK_GO_HTTP_AUTH\$" "$SRC/$tr/go.mod" || die "could not patch go-http-auth in $SRC/$tr/go.mod"
	# lego's DNS providers: the import, and the case (with its aliases) and return of each.
	for p in $TRAEFIK_DROP_DNS; do
		sed -i -e "\#^[[:space:]]*\"github.com/go-acme/lego/v5/providers/dns/$p\"\$#d" \
			-e "/^[[:space:]]*case .*:\$/{N;/\n[[:space:]]*return $p\.NewDNSProvider()\$/d}" "$SRC/$lego/providers/dns/zz_gen_dns_providers.go"
		! grep -q "[^a-z]$p\." "$SRC/$lego/providers/dns/zz_gen_dns_providers.go" || die "could not drop the DNS provider $p from lego $lv"
		rm -rf "${SRC:?}/$lego/providers/dns/$p"
	done
	for m in $TRAEFIK_UNSERVED; do
		sed -i "\#^[[:space:]]*$m v[^ ]*\( // indirect\)\{0,1\}\$#d" "$SRC/$tr/go.mod" "$SRC/$lego/go.mod"
		! grep -q "^[[:space:]]*$m v" "$SRC/$tr/go.mod" "$SRC/$lego/go.mod" || die "could not drop $m from the go.mod files"
	done
	printf '\n// wutong-offline: lego without the DNS providers whose SDKs the proxy does not serve.\nreplace github.com/go-acme/lego/v5 => ../%s\n' "$lego" >>"$SRC/$tr/go.mod"
	printf '%s\n' "$key" >"$SRC/$tr/.patched"
}

# --- per-arch steps ---

build_flanneld() {
	local arch=$1 d=$OUT/$1 key="flannel $FLANNEL_VERSION $RECIPE"
	if step_done "$d" flanneld "$key" && [ -f "$d/bin/flanneld" ]; then return; fi
	log "$arch: flanneld $FLANNEL_VERSION"
	(cd "$SRC/flannel-$FLANNEL_VERSION" &&
		gobuild "$arch" "$d/bin/flanneld" "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" .)
	mark_done "$d" flanneld "$key"
}

build_cni() {
	local arch=$1 d=$OUT/$1 key="cni $CNI_PLUGINS_VERSION $CNI_FLANNEL_VERSION $CNI_PLUGINS $RECIPE"
	if step_done "$d" cni-plugins "$key" && [ -f "$d/files/cni-plugins.tgz" ]; then return; fi
	log "$arch: CNI plugins $CNI_PLUGINS_VERSION + flannel $CNI_FLANNEL_VERSION"
	local stage=$d/.tmp/addons-cni p dir
	rm -rf "$stage"
	mkdir -p "$stage/root"
	for p in $CNI_PLUGINS; do
		dir=$(cd "$SRC/cni-plugins-$CNI_PLUGINS_VERSION/plugins" && find . -mindepth 2 -maxdepth 2 -type d -name "$p" | sort | head -1)
		[ -n "$dir" ] || die "no plugin $p in containernetworking/plugins $CNI_PLUGINS_VERSION"
		dir=${dir#./}
		(cd "$SRC/cni-plugins-$CNI_PLUGINS_VERSION" &&
			gobuild "$arch" "$stage/root/$p" "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "./plugins/$dir")
	done
	(cd "$SRC/cni-flannel-$CNI_FLANNEL_VERSION" &&
		GOFLAGS="-buildvcs=false -mod=mod" gobuild "$arch" "$stage/root/flannel" \
			"-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_FLANNEL_VERSION" \
			github.com/containernetworking/plugins/plugins/meta/flannel)
	cp "$SRC/cni-plugins-$CNI_PLUGINS_VERSION/LICENSE" "$SRC/cni-plugins-$CNI_PLUGINS_VERSION/README.md" "$stage/root/"
	chmod 0755 "$stage/root" "$stage"/root/*
	chmod 0644 "$stage/root/LICENSE" "$stage/root/README.md"
	mkdir -p "$d/files"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$stage/root" -cf - . |
		gzip -n -9 >"$d/files/cni-plugins.tgz.tmp"
	mv -f "$d/files/cni-plugins.tgz.tmp" "$d/files/cni-plugins.tgz"
	rm -rf "$stage"
	mark_done "$d" cni-plugins "$key"
}

build_local_path() {
	local arch=$1 d=$OUT/$1 key="local-path $LPP_VERSION $RECIPE"
	key="$key $(sha256sum "$SRC/local-path-helper/main.go" | cut -c1-16)"
	if step_done "$d" local-path "$key" && [ -f "$d/bin/local-path-provisioner" ] && [ -f "$d/bin/local-path-helper" ]; then
		return
	fi
	log "$arch: local-path-provisioner $LPP_VERSION and its helper"
	# Its module zip has vendor/modules.txt but no vendored code: use the module cache.
	(cd "$SRC/local-path-provisioner-$LPP_VERSION" &&
		GOFLAGS="-buildvcs=false -mod=readonly" gobuild "$arch" "$d/bin/local-path-provisioner" "-X main.VERSION=$LPP_VERSION" .)
	(cd "$SRC/local-path-helper" && gobuild "$arch" "$d/bin/local-path-helper" "" .)
	mark_done "$d" local-path "$key"
}

# qemu_run ARCH BINARY ARGS...: run a binary built for ARCH here, natively or through qemu-user-static; status 127
# when neither can.
qemu_run() {
	local arch=$1 q
	shift
	if [ "$arch" = "$(go env GOHOSTARCH)" ]; then "$@"; return; fi
	case $arch in amd64) q=qemu-x86_64-static ;; arm64) q=qemu-aarch64-static ;; loong64) q=qemu-loongarch64-static ;; esac
	command -v "$q" >/dev/null || return 127
	"$q" "$@"
}

build_traefik() {
	local arch=$1 d=$OUT/$1 tr=$SRC/traefik-$TRAEFIK_VERSION key date out rc=0
	key="$(cat "$tr/.patched")"
	if step_done "$d" traefik "$key" && [ -f "$d/bin/traefik" ]; then return; fi
	log "$arch: traefik $TRAEFIK_VERSION"
	# The build date is the tag's time from the proxy, so that rebuilds are reproducible.
	date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(go env GOMODCACHE)/cache/download/github.com/traefik/traefik/v3/@v/$TRAEFIK_VERSION.info")
	local pv=github.com/traefik/traefik/v3/pkg/version
	(cd "$tr" && GOFLAGS="-buildvcs=false -mod=mod" gobuild "$arch" "$d/.tmp/traefik" \
		"-X $pv.Version=$TRAEFIK_VERSION -X $pv.Codename=cheddar -X $pv.BuildDate=${date:-1970-01-01T00:00:00Z}" ./cmd/traefik)
	out=$(qemu_run "$arch" "$d/.tmp/traefik" version 2>&1) || rc=$?
	case $rc in
	0) grep -q "^Version:[[:space:]]*$TRAEFIK_VERSION\$" <<<"$out" || die "$arch: traefik version says: $out" ;;
	127) log "$arch: traefik not run (no qemu-user-static for $arch)" ;;
	*) die "$arch: traefik version failed ($rc): $out" ;;
	esac
	mkdir -p "$d/bin"
	mv -f "$d/.tmp/traefik" "$d/bin/traefik"
	log "$arch: bin/traefik $(du -h "$d/bin/traefik" | cut -f1)"
	mark_done "$d" traefik "$key"
}

# apt_opts ARCH: set APT_OPTS to run apt-get with a private state for ARCH (Debian $DEBIAN_SUITE main only), leaving
# the host's apt configuration and lists alone.
apt_opts() {
	local a=$SRC/apt-$1
	APT_OPTS=(-q -o APT::Architecture="$1" -o APT::Architectures::="$1"
		-o Dir::State="$a/state" -o Dir::State::status="$a/state/status" -o Dir::Cache="$a/cache"
		-o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/sources.list.d"
		-o Acquire::Retries=2 -o Acquire::http::Timeout=30)
}

apt_setup() {
	local arch=$1 a=$SRC/apt-$1
	mkdir -p "$a/state/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d"
	touch "$a/state/status"
	cat >"$a/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DEBIAN_SUITE main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $DEBIAN_SUITE-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $DEBIAN_SUITE-security main
EOF
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || die "no /usr/share/keyrings/debian-archive-keyring.gpg (apt-get install debian-archive-keyring)"
	apt_opts "$arch"
	timeout 600 apt-get "${APT_OPTS[@]}" update >"$a/update.log" 2>&1 || { tail -5 "$a/update.log" >&2; return 1; }
	# apt-get update succeeds even when a list could not be fetched: make sure the packages are known.
	apt-cache "${APT_OPTS[@]}" show "iptables:$arch" >/dev/null 2>&1 || { tail -5 "$a/update.log" >&2; return 1; }
}

# Debian's multiarch triplet per arch.
triplet() {
	case $1 in amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; loong64) echo loongarch64-linux-gnu ;; esac
}

# in_root ROOT PATH: does PATH exist inside ROOT, following symbolic links (absolute ones inside ROOT too)?
in_root() {
	local root=$1 p=$2 t n=0
	while [ -L "$root$p" ] && [ $n -lt 40 ]; do
		t=$(readlink "$root$p")
		case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
		n=$((n + 1))
	done
	[ -e "$root$p" ]
}

# check_elf_closure ROOT TRIPLET: every ELF file's program interpreter and DT_NEEDED libraries must be in ROOT.
check_elf_closure() {
	local root=$1 tri=$2 f lib interp missing=0
	while IFS= read -r f; do
		[ "$(head -c4 "$f" | tr -d '\177')" = ELF ] || continue
		interp=$(readelf -l "$f" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
		if [ -n "$interp" ] && ! in_root "$root" "$interp"; then
			log "missing: ${f#"$root"} needs the interpreter $interp"
			missing=1
		fi
		for lib in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			if ! in_root "$root" "/usr/lib/$tri/$lib" && ! in_root "$root" "/usr/lib/$lib"; then
				log "missing: ${f#"$root"} needs $lib"
				missing=1
			fi
		done
	done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
	return $missing
}

build_iptables_layer() {
	local arch=$1 d=$OUT/$1 key
	key="iptables $DEBIAN_SUITE $(printf '%s' "$IPTABLES_PACKAGES" | tr -s ' \n' '  ') $RECIPE"
	if step_done "$d" iptables-layer "$key" && [ -f "$d/layers/iptables.tar" ]; then return; fi
	case $arch in
	loong64)
		log "$arch: no iptables layer: Debian has loong64 only in debian-ports (unstable), which is not reachable here"
		rm -f "$d/layers/iptables.tar"
		return 0
		;;
	esac
	log "$arch: iptables layer from Debian $DEBIAN_SUITE"
	if ! apt_setup "$arch"; then
		# amd64 must work (flannel and kube-proxy need the layer); arm64 is a bonus where its lists are reachable.
		[ "$arch" != amd64 ] || die "$arch: could not fetch Debian's $arch package lists (see $SRC/apt-$arch/update.log)"
		log "$arch: no iptables layer: could not fetch Debian's $arch package lists (see $SRC/apt-$arch/update.log)"
		rm -f "$d/layers/iptables.tar"
		return 0
	fi
	local work=$d/.tmp/addons-iptables debs root tri p
	tri=$(triplet "$arch")
	debs=$work/debs
	root=$work/root
	rm -rf "$work"
	mkdir -p "$debs" "$root"
	local want=()
	for p in $IPTABLES_PACKAGES; do want+=("$p:$arch"); done
	apt_opts "$arch"
	(cd "$debs" && timeout 900 apt-get "${APT_OPTS[@]}" download "${want[@]}" >"$work/download.log" 2>&1) ||
		{ tail -5 "$work/download.log" >&2; die "$arch: apt-get download failed"; }
	# The closure must be complete: every Depends/Pre-Depends of the packages is one of them.
	local have dep missing=
	have=" $(for f in "$debs"/*.deb; do dpkg-deb -f "$f" Package; done | tr '\n' ' ')"
	for f in "$debs"/*.deb; do
		for dep in $(dpkg-deb -f "$f" Depends Pre-Depends | sed -e 's/^[A-Za-z-]*://' -e 's/([^)]*)//g' -e 's/:any//g' |
			tr ',' '\n' | sed 's/|.*//' | tr -d ' '); do
			case $have in *" $dep "*) ;; *) missing="$missing $dep" ;; esac
		done
	done
	[ -z "$missing" ] || die "$arch: the iptables layer's packages depend on packages not in IPTABLES_PACKAGES:$missing"
	for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$root"; done
	# Debian's alternatives with the nft backend, as the iptables postinst sets them up (priority 20 over legacy 10).
	mkdir -p "$root/etc/alternatives"
	for p in iptables ip6tables arptables ebtables; do
		for s in "" -save -restore; do
			[ -e "$root/usr/sbin/$p-nft$s" ] || [ -L "$root/usr/sbin/$p-nft$s" ] || die "$arch: no /usr/sbin/$p-nft$s"
			ln -sfn "/usr/sbin/$p-nft$s" "$root/etc/alternatives/$p$s"
			ln -sfn "/etc/alternatives/$p$s" "$root/usr/sbin/$p$s"
		done
	done
	# No docs, man pages, locales, lintian overrides, gconv modules (none of these tools uses iconv); keep the
	# copyright files.
	find "$root/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
	find "$root/usr/share/doc" -depth -type d -empty -delete 2>/dev/null || true
	rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" "$root/usr/share/locale" \
		"$root/usr/share/bug" "$root/usr/share/gdb" "$root/usr/share/doc-base" "$root/usr/share/bash-completion" \
		"$root/usr/lib/$tri/gconv" "$root/lib/$tri/gconv"
	# Merged /usr, as Debian bookworm systems have it.
	local dir
	for dir in bin sbin lib lib64; do
		if [ -d "$root/$dir" ] && [ ! -L "$root/$dir" ]; then
			mkdir -p "$root/usr/$dir"
			cp -a "$root/$dir/." "$root/usr/$dir/"
			rm -rf "${root:?}/$dir"
		fi
		if [ -e "$root/usr/$dir" ]; then ln -sfn "usr/$dir" "$root/$dir"; fi
	done
	mkdir -p "$root/tmp" "$root/run" "$root/var/run"
	chmod 1777 "$root/tmp"
	# What is in the layer.
	mkdir -p "$root/usr/share/wutong"
	for f in "$debs"/*.deb; do dpkg-deb -f "$f" Package Version | paste -sd' '; done | sort >"$root/usr/share/wutong/iptables-layer.packages"
	check_elf_closure "$root" "$tri" || die "$arch: the iptables layer misses shared libraries"
	if [ "$arch" = "$(dpkg --print-architecture)" ]; then
		log "$arch: checking the layer in a chroot"
		chroot "$root" /usr/sbin/iptables --version
		chroot "$root" /usr/sbin/ip6tables --version
		chroot "$root" /usr/sbin/nft --version
		chroot "$root" /usr/sbin/conntrack --version
		if unshare -n true 2>/dev/null; then
			# In a throwaway network namespace: save, add a chain, and find it in the next save.
			unshare -n chroot "$root" /usr/sbin/iptables-save >/dev/null
			# shellcheck disable=SC2016 # expanded by the inner shell
			R=$root unshare -n sh -ec 'chroot "$R" /usr/sbin/iptables -t nat -N WUTONG-TEST
				chroot "$R" /usr/sbin/iptables-save | grep -q "^:WUTONG-TEST"
				chroot "$R" /usr/sbin/ip6tables-save >/dev/null
				chroot "$R" /usr/sbin/nft list ruleset >/dev/null' ||
				die "$arch: iptables does not work in the chroot"
		else
			log "$arch: unshare -n is not allowed here: iptables-save was not tried"
		fi
	fi
	mkdir -p "$d/layers"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C "$root" -cf "$d/layers/iptables.tar.tmp" .
	mv -f "$d/layers/iptables.tar.tmp" "$d/layers/iptables.tar"
	log "$arch: layers/iptables.tar $(du -h "$d/layers/iptables.tar" | cut -f1)"
	rm -rf "$work" "$SRC/apt-$arch" # the package lists are fetched afresh for every layer build
	mark_done "$d" iptables-layer "$key"
}

build_arch() {
	local arch=$1
	mkdir -p "$OUT/$arch/bin" "$OUT/$arch/files"
	if want_step flanneld; then build_flanneld "$arch"; fi
	if want_step cni; then build_cni "$arch"; fi
	if want_step local-path; then build_local_path "$arch"; fi
	if want_step iptables; then build_iptables_layer "$arch"; fi
	if want_step traefik; then build_traefik "$arch"; fi
	log "$arch: done"
}

# --- arch-independent outputs ---

# write_file PATH: stdin to PATH through a temporary name.
write_file() {
	mkdir -p "$(dirname "$1")"
	cat >"$1.tmp"
	mv -f "$1.tmp" "$1"
}

write_flannel_manifest() {
	write_file "$OUT/manifests/flannel.yaml" <<EOF
# flannel $FLANNEL_VERSION for the wutong offline installer, after upstream's Documentation/kube-flannel.yml.
#
# Deliberately NOT in this file:
#   - the ConfigMap kube-flannel-cfg: the installer writes it, with net-conf.json holding the cluster's pod CIDR;
#   - the init containers that install the CNI plugin and /etc/cni/net.d/10-flannel.conflist: the installer puts
#     the plugins (files/<arch>/cni-plugins.tgz, which has "flannel") into /opt/cni/bin and writes the conflist on
#     each node itself. That flannel CNI plugin is containernetworking/plugins $CNI_FLANNEL_VERSION: the conflist
#     must use "cniVersion": "0.3.1" or "0.4.0".
# The image is built from source (flanneld at /usr/local/bin/flanneld on Debian's iptables/nftables userland).
---
apiVersion: v1
kind: Namespace
metadata:
  name: kube-flannel
  labels:
    k8s-app: flannel
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: flannel
  namespace: kube-flannel
  labels:
    k8s-app: flannel
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: flannel
  labels:
    k8s-app: flannel
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get"]
  - apiGroups: [""]
    resources: ["nodes"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["nodes/status"]
    verbs: ["patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: flannel
  labels:
    k8s-app: flannel
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: flannel
subjects:
  - kind: ServiceAccount
    name: flannel
    namespace: kube-flannel
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
  labels:
    tier: node
    app: flannel
    k8s-app: flannel
spec:
  selector:
    matchLabels:
      app: flannel
  template:
    metadata:
      labels:
        tier: node
        app: flannel
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: kubernetes.io/os
                    operator: In
                    values: ["linux"]
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: flannel
      tolerations:
        - operator: Exists
          effect: NoSchedule
      containers:
        - name: kube-flannel
          image: $FLANNEL_IMAGE
          imagePullPolicy: IfNotPresent
          command: ["/usr/local/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"]
          resources:
            requests:
              cpu: 100m
              memory: 50Mi
          securityContext:
            privileged: false
            capabilities:
              add: ["NET_ADMIN", "NET_RAW"]
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: EVENT_QUEUE_DEPTH
              value: "5000"
          volumeMounts:
            - name: run
              mountPath: /run/flannel
            - name: flannel-cfg
              mountPath: /etc/kube-flannel/
            - name: xtables-lock
              mountPath: /run/xtables.lock
      volumes:
        - name: run
          hostPath:
            path: /run/flannel
        - name: flannel-cfg
          configMap:
            name: kube-flannel-cfg
            items:
              - key: net-conf.json
                path: net-conf.json
        - name: xtables-lock
          hostPath:
            path: /run/xtables.lock
            type: FileOrCreate
EOF
}

write_local_path_manifest() {
	write_file "$OUT/manifests/local-path.yaml" <<EOF
# local-path-provisioner $LPP_VERSION for the wutong offline installer, after upstream's deploy/local-path-storage.yaml.
# Volumes live under $LOCAL_PATH_DIR on each node. The helper pods run $HELPER_IMAGE, whose /bin/sh
# (scripts/k8s/local-path-helper) runs only the setup and teardown scripts below, and only below LOCAL_PATH_BASES:
# keep LOCAL_PATH_BASES in helperPod.yaml in step with the paths in config.json.
apiVersion: v1
kind: Namespace
metadata:
  name: local-path-storage
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: local-path-provisioner-service-account
  namespace: local-path-storage
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: local-path-provisioner-role
  namespace: local-path-storage
rules:
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: local-path-provisioner-role
rules:
  - apiGroups: [""]
    resources: ["nodes", "persistentvolumeclaims", "configmaps", "pods", "pods/log"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["persistentvolumes"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["storageclasses"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: local-path-provisioner-bind
  namespace: local-path-storage
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: local-path-provisioner-role
subjects:
  - kind: ServiceAccount
    name: local-path-provisioner-service-account
    namespace: local-path-storage
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: local-path-provisioner-bind
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: local-path-provisioner-role
subjects:
  - kind: ServiceAccount
    name: local-path-provisioner-service-account
    namespace: local-path-storage
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: local-path-provisioner
  namespace: local-path-storage
spec:
  replicas: 1
  selector:
    matchLabels:
      app: local-path-provisioner
  template:
    metadata:
      labels:
        app: local-path-provisioner
    spec:
      serviceAccountName: local-path-provisioner-service-account
      containers:
        - name: local-path-provisioner
          image: $LPP_IMAGE
          imagePullPolicy: IfNotPresent
          command:
            - local-path-provisioner
            - --debug
            - start
            - --config
            - /etc/config/config.json
          volumeMounts:
            - name: config-volume
              mountPath: /etc/config/
          env:
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: CONFIG_MOUNT_PATH
              value: /etc/config/
      volumes:
        - name: config-volume
          configMap:
            name: local-path-config
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-path-config
  namespace: local-path-storage
data:
  config.json: |-
    {
            "nodePathMap":[
            {
                    "node":"DEFAULT_PATH_FOR_NON_LISTED_NODES",
                    "paths":["$LOCAL_PATH_DIR"]
            }
            ]
    }
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      priorityClassName: system-node-critical
      tolerations:
      - key: node.kubernetes.io/disk-pressure
        operator: Exists
        effect: NoSchedule
      containers:
      - name: helper-pod
        image: $HELPER_IMAGE
        imagePullPolicy: IfNotPresent
        env:
        - name: LOCAL_PATH_BASES
          value: "$LOCAL_PATH_DIR"
EOF
}

# copy_traefik_manifest: the repo's manifest (a file, decoded by installer/pipeline's tests) into DIR/manifests.
copy_traefik_manifest() {
	local m=$REPO/scripts/k8s/manifests/traefik.yaml
	grep -q "^[[:space:]]*image: $TRAEFIK_IMAGE\$" "$m" || die "$m does not run $TRAEFIK_IMAGE: keep its image in step with TRAEFIK_VERSION"
	write_file "$OUT/manifests/traefik.yaml" <"$m"
}

# write_images_yaml ARCH...: the bundle.yaml images items, for the arches built in this run.
write_images_yaml() {
	local with_layer=() a
	case $OUT in *'"'* | *'\\'*) die "--out must not contain '\"' or '\\': it is written into YAML" ;; esac
	for a in "$@"; do
		if [ -f "$OUT/$a/layers/iptables.tar" ]; then with_layer+=("$a"); fi
	done
	{
		echo "  # Add-ons built by scripts/k8s/addons.sh (--arch $*); paste under images:."
		if [ ${#with_layer[@]} -gt 0 ]; then
			local list
			list=$(IFS=,; echo "${with_layer[*]}")
			list=${list//,/, }
			if [ ${#with_layer[@]} -lt $# ]; then
				echo "  # flannel only for the arches with an iptables layer (Debian $DEBIAN_SUITE packages): $list"
			fi
			cat <<EOF
  - name: $FLANNEL_IMAGE
    binaries:
      path: "$OUT/{arch}/bin/flanneld"
      target: /usr/local/bin/flanneld
      layers: ["$OUT/{arch}/layers/iptables.tar"]
    arches: [$list]
EOF
		else
			echo "  # no flannel image: no arch has an iptables layer"
		fi
		local with_traefik=() tlist
		for a in "$@"; do
			if [ -f "$OUT/$a/bin/traefik" ]; then with_traefik+=("$a"); fi
		done
		if [ ${#with_traefik[@]} -gt 0 ]; then
			tlist=$(IFS=,; echo "${with_traefik[*]}")
			tlist=${tlist//,/, }
			cat <<EOF
  - name: $TRAEFIK_IMAGE
    binaries:
      path: "$OUT/{arch}/bin/traefik"
      target: /usr/local/bin/traefik
      entrypoint: ["/usr/local/bin/traefik"]
    arches: [$tlist]
EOF
		fi
		cat <<EOF
  - name: $LPP_IMAGE
    binaries:
      path: "$OUT/{arch}/bin/local-path-provisioner"
      target: /usr/local/bin/local-path-provisioner
  - name: $HELPER_IMAGE
    binaries:
      path: "$OUT/{arch}/bin/local-path-helper"
      target: /bin/sh
      entrypoint: ["/bin/sh"]
EOF
	} | write_file "$OUT/addons-images.yaml"
}

prepare_sources
if want_step traefik; then prepare_traefik; fi
for a in "${ARCHES[@]}"; do
	build_arch "$a"
done
write_flannel_manifest
write_local_path_manifest
if want_step traefik || [ -f "$OUT/manifests/traefik.yaml" ]; then copy_traefik_manifest; fi
write_images_yaml "${ARCHES[@]}"
log "wrote $OUT/manifests/flannel.yaml, $OUT/manifests/local-path.yaml$([ -f "$OUT/manifests/traefik.yaml" ] && echo ", $OUT/manifests/traefik.yaml"), $OUT/addons-images.yaml"
