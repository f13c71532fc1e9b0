#!/usr/bin/env bash
# Builds the Kubernetes core set from source for an offline bundle: kubeadm, kubelet, kubectl and the control-plane
# binaries (k8s.io/kubernetes through a wrapper module), etcd, coredns, pause (scripts/k8s/pause), containerd,
# crictl, plus Debian's runc; then runs scripts/k8s/addons.sh if present and writes $OUT/bundle.yaml.
#
#   scripts/k8s/build.sh [--version v1.37.2] [--arch amd64]... [--out DIR] [--only kubectl,etcd,...]
#
# --only builds just those components (names as in CORE below) and skips addons.sh and bundle.yaml; etcd, coredns
# and pause take their versions from kubeadm's image list, for which a kubeadm for this machine is built if needed.
#
# Layout (a contract): $OUT/<arch>/files/ are bundle files, $OUT/<arch>/bin/ become images, $OUT/images.txt is what
# kubeadm expects, $OUT/<arch>/BUILD-REPORT.txt says what built. Resumable: each component of each arch has a marker
# in $OUT/<arch>/.state/; a re-run skips what is done. Builds go to $OUT/<arch>/.tmp/ and are renamed into place.
# Exits non-zero only if a component failed for amd64.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

die() { echo "scripts/k8s/build.sh: $*" >&2; exit 1; }
usage() { sed -n '6p' "$REPO/scripts/k8s/build.sh" | sed 's/^# *//'; }

VERSION=v1.37.2 OUT="" ARCHES=() ONLY=""
while [ $# -gt 0 ]; do
	case $1 in
	--version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift 2 ;;
	--arch) [ $# -ge 2 ] || die "--arch needs a value"; ARCHES+=("$2"); shift 2 ;;
	--out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift 2 ;;
	--only) [ $# -ge 2 ] || die "--only needs a value"; ONLY=$2; shift 2 ;;
	--version=* | --arch=* | --out=* | --only=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1'; usage: $(usage)" ;;
	esac
done
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(amd64)
for a in "${ARCHES[@]}"; do
	case $a in amd64 | arm64 | loong64) ;; *) die "unknown arch '$a': use amd64, arm64 or loong64" ;; esac
done
[[ $VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "--version must look like v1.37.2, got '$VERSION'"
MINOR=${BASH_REMATCH[1]}
STAGING_VERSION=v0.$MINOR.${BASH_REMATCH[2]} # k8s.io/api etc. are tagged v0.X.Y for Kubernetes v1.X.Y
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.$MINOR.0}
OUT=${OUT:-/var/cache/wutong-test/k8s-$VERSION-r1} # bump r1 when the recipe changes
mkdir -p "$OUT/src" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
SRC=$OUT/src
command -v go >/dev/null || die "go is not on PATH"
MODCACHE=$(go env GOMODCACHE)
HOSTARCH=$(go env GOHOSTARCH)
export CGO_ENABLED=0 GOOS=linux GOWORK=off
cd "$SRC" # go commands outside the wrappers run here, outside any module (never in the repo's)

# The wrapper modules resolve their dependencies themselves (-mod=mod writes their go.mod/go.sum under $SRC).
gobuild() { # gobuild DIR ARCH OUTFILE LDFLAGS PKG [go build flags...]
	local dir=$1 arch=$2 out=$3 ld=$4 pkg=$5
	shift 5
	(cd "$dir" && GOARCH=$arch GOFLAGS=-mod=mod nice -n 5 go build -trimpath -ldflags "-s -w $ld" "$@" -o "$out" "$pkg")
}

# mkmod DIR MODULE VERSION: a wrapper module requiring MODULE@VERSION (written once; a rename makes it atomic).
mkmod() {
	[ -f "$1/go.mod" ] && return 0
	mkdir -p "$1"
	printf 'module wutong.local/build/%s\n\ngo 1.26\n\nrequire %s %s\n' "$(basename "$1")" "$2" "$3" >"$1/go.mod.tmp"
	mv "$1/go.mod.tmp" "$1/go.mod"
}

# The commit of a module version, if the proxy's .info records its origin (it often does not).
origin_hash() { sed -n 's/.*"Hash":"\([0-9a-f]*\)".*/\1/p' "$MODCACHE/cache/download/$1/@v/$2.info" 2>/dev/null; }

# pick_version MODULE WANTED: WANTED if the proxy serves it, else the highest served release below it, else the
# lowest above it. Prints "VERSION" or "VERSION (wanted WANTED, not served)".
pick_version() {
	local served
	served=$(go list -m -versions "$1" | tr ' ' '\n' | tail -n +2 | grep -v -- '-' || true)
	[ -n "$served" ] || { echo "no version of $1 is served" >&2; return 1; }
	if grep -qxF "$2" <<<"$served"; then echo "$2"; return; fi
	local pick
	pick=$( (echo "$served"; echo "$2 WANTED") | sort -V | grep -B1 ' WANTED$' | head -1)
	[[ $pick == *WANTED ]] && pick=$( (echo "$served"; echo "$2 WANTED") | sort -V | grep -A1 ' WANTED$' | tail -1)
	echo "$pick (wanted $2, not served)"
}

# --- Kubernetes: k8s.io/kubernetes replaces every staging repo with ./staging/src/..., which a dependent module
# cannot see; the wrapper replaces each with its published v0.X.Y tag instead. The list comes from its go.mod.
k8s_module() {
	local d=$SRC/k8s kmod
	[ -f "$d/go.mod" ] && return 0
	mkdir -p "$d"
	go mod download "k8s.io/kubernetes@$VERSION" || die "cannot download k8s.io/kubernetes@$VERSION from the module proxy"
	kmod=$MODCACHE/k8s.io/kubernetes@$VERSION/go.mod
	local staging godir
	staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$kmod")
	[ -n "$staging" ] || die "no staging replaces found in $kmod"
	godir=$(sed -n 's/^go //p' "$kmod")
	{
		printf 'module wutong.local/build/k8s\n\ngo %s\n\n' "$godir"
		grep '^godebug ' "$kmod" || true # kubernetes' GODEBUG defaults apply only to a main module: keep them
		printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$VERSION"
		for m in $staging; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
		echo ')'
	} >"$d/go.mod.tmp"
	mv "$d/go.mod.tmp" "$d/go.mod"
}
k8s_ldflags() {
	# The build date is the tag's time from the proxy, so that rebuilds are reproducible.
	local date commit x=""
	date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$MODCACHE/cache/download/k8s.io/kubernetes/@v/$VERSION.info")
	commit=$(origin_hash k8s.io/kubernetes "$VERSION")
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		x+=" -X $p.gitVersion=$VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
		x+=" -X $p.buildDate=${date:-1970-01-01T00:00:00Z}${commit:+ -X $p.gitCommit=$commit}"
	done
	echo "$x"
}
build_k8s() { k8s_module && gobuild "$SRC/k8s" "$2" "$3/$1" "$(k8s_ldflags)" "k8s.io/kubernetes/cmd/$1"; } # CMD ARCH TMP

# --- The image names kubeadm expects, from a kubeadm for this machine (built here if the host arch is not built).
images_list() {
	[ -s "$OUT/images.txt" ] && return 0
	local kubeadm=$OUT/$HOSTARCH/files/kubeadm
	if [ ! -x "$kubeadm" ]; then
		kubeadm=$SRC/host/kubeadm
		[ -x "$kubeadm" ] || { mkdir -p "$SRC/host" && build_k8s kubeadm "$HOSTARCH" "$SRC/host"; } || return 1
	fi
	"$kubeadm" config images list --kubernetes-version "$VERSION" >"$OUT/images.txt.tmp" || return 1
	mv "$OUT/images.txt.tmp" "$OUT/images.txt"
}
image_tag() { # the tag of the image named */NAME:TAG in images.txt
	[ -s "$OUT/images.txt" ] || { echo "no $OUT/images.txt: kubeadm did not build or run" >&2; return 1; }
	sed -n "s#.*/$1:##p" "$OUT/images.txt" | head -1 | grep . || { echo "kubeadm lists no $1 image" >&2; return 1; }
}

build_etcd() { # ARCH TMP; a generated main around etcdmain, the same as etcd's own server/main.go
	local want ver d=$SRC/etcd
	want=$(image_tag etcd) && ver=$(pick_version go.etcd.io/etcd/server/v3 "v${want%-*}") || return 1
	echo "$ver" >"$2/VERSION"
	mkmod "$d" go.etcd.io/etcd/server/v3 "${ver%% *}"
	# etcd exits on arches it does not test (loong64) unless ETCD_UNSUPPORTED_ARCH names the arch; kubeadm's static
	# pod cannot set it per arch and, set on amd64, etcd would warn about an unknown ETCD_ variable: set it here.
	cat >"$d/main.go" <<'EOF'
package main

import (
	"os"
	"runtime"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	switch runtime.GOARCH {
	case "amd64", "arm64", "ppc64le", "s390x":
	default:
		if _, ok := os.LookupEnv("ETCD_UNSUPPORTED_ARCH"); !ok {
			os.Setenv("ETCD_UNSUPPORTED_ARCH", runtime.GOARCH)
		}
	}
	etcdmain.Main(os.Args)
}
EOF
	local sha
	sha=$(go mod download go.etcd.io/etcd/server/v3@"${ver%% *}" && origin_hash go.etcd.io/etcd/server/v3 "${ver%% *}")
	gobuild "$d" "$1" "$2/etcd" "${sha:+-X go.etcd.io/etcd/api/v3/version.GitSHA=${sha:0:7}}" .
}
build_coredns() { # ARCH TMP; the module root is the main package
	local want ver d=$SRC/coredns sha
	want=$(image_tag coredns) && ver=$(pick_version github.com/coredns/coredns "$want") || return 1
	echo "$ver" >"$2/VERSION"
	mkmod "$d" github.com/coredns/coredns "${ver%% *}"
	sha=$(go mod download github.com/coredns/coredns@"${ver%% *}" && origin_hash github.com/coredns/coredns "${ver%% *}")
	gobuild "$d" "$1" "$2/coredns" "${sha:+-X github.com/coredns/coredns/coremain.GitCommit=${sha:0:7}}" github.com/coredns/coredns
}
build_pause() { # ARCH TMP; from the repo (stdlib only; -mod=readonly so the repo's go.mod is never touched)
	(cd "$REPO" && GOARCH=$1 GOFLAGS=-mod=readonly nice -n 5 go build -trimpath -ldflags "-s -w" -o "$2/pause" ./scripts/k8s/pause)
	image_tag pause >"$2/VERSION" || true
}
build_containerd() { # ARCH TMP; as installer/labtest Containerd(): no cgo-only snapshotters
	mkmod "$SRC/containerd" github.com/containerd/containerd/v2 "$CONTAINERD_VERSION"
	for c in containerd containerd-shim-runc-v2 ctr; do
		gobuild "$SRC/containerd" "$1" "$2/$c" "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
			"github.com/containerd/containerd/v2/cmd/$c" -tags "no_btrfs no_devmapper no_zfs" || return 1
	done
}
build_crictl() {
	mkmod "$SRC/cri-tools" sigs.k8s.io/cri-tools "$CRICTL_VERSION"
	gobuild "$SRC/cri-tools" "$1" "$2/crictl" "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}
build_runc() { # ARCH TMP; runc needs cgo (libseccomp), so Debian's package, for this machine's arch only
	if [ "$1" != "$(dpkg --print-architecture 2>/dev/null)" ]; then
		echo "no $1 runc reachable: Debian's $1 runc is not reachable from here and there is no cross C toolchain;" \
			"take runc from the distribution (Kylin/UOS/openEuler ship it) as a local file in bundle.yaml" >"$2/NOTE"
		return 3 # not available: reported as n/a, not as a failure
	fi
	local d=$SRC/runc-$1
	rm -rf "$d" && mkdir -p "$d" && chmod 777 "$d" # apt's _apt sandbox user must be able to write here
	(cd "$d" && { apt-get download "runc:$1" || { apt-get update -qq && apt-get download "runc:$1"; }; }) || return 1
	dpkg-deb -x "$d"/runc_*.deb "$d/x" && cp "$d/x/usr/sbin/runc" "$2/runc" || return 1
	dpkg-deb -f "$d"/runc_*.deb Version >"$2/VERSION"
	echo "dynamic, from Debian: $(ldd "$2/runc" | awk '{print $1}' | grep -v -e linux-vdso -e ld-linux | tr '\n' ' ')" >"$2/NOTE"
	ldd "$2/runc" >"$OUT/$1/runc.ldd.txt"
}

# component ARCH NAME VERSION "files/a bin/b" FUNC ARGS...: runs FUNC ARGS... ARCH TMPDIR unless done, moves the
# outputs into place and leaves a marker: .state/NAME.done, .failed or .na holding the report line.
component() {
	local arch=$1 name=$2 ver=$3 outs=$4 o
	shift 4
	local a=$OUT/$arch
	local st=$a/.state/$name tmp=$a/.tmp/$name log=$a/logs/$name.log ok=1
	for o in $outs; do [ -s "$a/$o" ] || ok=0; done
	if [ -f "$st.done" ] && [ $ok = 1 ]; then echo "= $arch/$name: built before"; return 0; fi
	rm -rf "$st".* "$tmp" && mkdir -p "$tmp" "$a/files" "$a/bin" "$a/logs" "$a/.state"
	echo "> $arch/$name ($(date +%T))"
	local start=$SECONDS rc=0
	# Not `if (...)`: set -e is ignored inside a subshell that is an if condition.
	set +e
	(set -e; "$@" "$arch" "$tmp") >"$log" 2>&1
	rc=$?
	set -e
	for o in $outs; do [ $rc != 0 ] || [ -s "$tmp/${o#*/}" ] || { echo "no output $o" >>"$log"; rc=1; }; done
	local note=""
	if [ -s "$tmp/VERSION" ]; then ver=$(cat "$tmp/VERSION"); fi
	if [ -s "$tmp/NOTE" ]; then note="  $(cat "$tmp/NOTE")"; fi
	if [ $rc = 0 ]; then
		for o in $outs; do mv -f "$tmp/${o#*/}" "$a/$o"; done
		printf '%-24s %-7s %-36s %5ss%s\n' "$name" ok "$ver" $((SECONDS - start)) "$note" >"$st.done"
	elif [ $rc = 3 ]; then
		printf '%-24s %-7s %-36s %5ss%s\n' "$name" n/a "$ver" $((SECONDS - start)) "$note" >"$st.na"
	else
		{
			printf '%-24s %-7s %-36s %5ss  log: %s\n' "$name" FAILED "$ver" $((SECONDS - start)) "$log"
			# The first compiler errors (file:line:col: ...), else the last lines of the log.
			grep -m 8 -E '\.go:[0-9]+(:[0-9]+)?: |^# |cannot |undefined|error' "$log" | sed 's/^/    | /' || tail -5 "$log" | sed 's/^/    | /'
		} >"$st.failed"
		echo "  FAILED: $arch/$name, see $log"
	fi
	rm -rf "$tmp"
	return 0
}

CORE="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause containerd crictl"
ALL="$CORE runc"
# --only a,b: the components to build (default all). wanted NAME: whether NAME is one of them.
if [ -n "$ONLY" ]; then
	ONLY=" ${ONLY//,/ } "
	for c in $ONLY; do [[ " $ALL " == *" $c "* ]] || die "--only: unknown component '$c' (one of: $ALL)"; done
fi
wanted() { [ -z "$ONLY" ] || [[ $ONLY == *" $1 "* ]]; }
build_arch() {
	local arch=$1 c
	rm -rf "$OUT/$arch/.tmp"
	for c in kubeadm kubelet kubectl; do wanted "$c" && component "$arch" "$c" "$VERSION" "files/$c" build_k8s "$c"; done
	if wanted etcd || wanted coredns || wanted pause; then
		images_list || echo "  could not list kubeadm's images: etcd, coredns will fail"
	fi
	wanted containerd && component "$arch" containerd "$CONTAINERD_VERSION" "files/containerd files/containerd-shim-runc-v2 files/ctr" build_containerd
	wanted crictl && component "$arch" crictl "$CRICTL_VERSION" files/crictl build_crictl
	wanted runc && component "$arch" runc "debian" files/runc build_runc
	for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
		wanted "$c" && component "$arch" "$c" "$VERSION" "bin/$c" build_k8s "$c"
	done
	wanted etcd && component "$arch" etcd "?" bin/etcd build_etcd
	wanted coredns && component "$arch" coredns "?" bin/coredns build_coredns
	wanted pause && component "$arch" pause "?" bin/pause build_pause
	{
		echo "# $arch: Kubernetes $VERSION core set, built $(date -u +%FT%TZ) into $OUT/$arch"
		printf '%-24s %-7s %-36s %6s\n' COMPONENT STATUS VERSION TIME
		for c in $ALL; do cat "$OUT/$arch/.state/$c".* 2>/dev/null || printf '%-24s not tried\n' "$c"; done
	} >"$OUT/$arch/BUILD-REPORT.txt.tmp"
	mv "$OUT/$arch/BUILD-REPORT.txt.tmp" "$OUT/$arch/BUILD-REPORT.txt"
}
core_built() { local c; for c in $CORE; do [ -f "$OUT/$1/.state/$c.done" ] || return 1; done; }

for a in "${ARCHES[@]}"; do build_arch "$a"; done
for a in "${ARCHES[@]}"; do echo; cat "$OUT/$a/BUILD-REPORT.txt"; done

if [ -n "$ONLY" ]; then # a partial build: no addons, no bundle.yaml; fail if a requested amd64 component failed
	failed=()
	for c in $ONLY; do [ ! -f "$OUT/amd64/.state/$c.failed" ] || failed+=("$c"); done
	[[ " ${ARCHES[*]} " != *" amd64 "* ]] || [ ${#failed[@]} = 0 ] || die "amd64 components failed: ${failed[*]} (see $OUT/amd64/BUILD-REPORT.txt)"
	exit 0
fi

if [ -f "$REPO/scripts/k8s/addons.sh" ]; then
	archflags=()
	for a in "${ARCHES[@]}"; do archflags+=(--arch "$a"); done
	echo; echo "> scripts/k8s/addons.sh ${archflags[*]} --out $OUT"
	bash "$REPO/scripts/k8s/addons.sh" "${archflags[@]}" --out "$OUT" || die "scripts/k8s/addons.sh failed"
fi

# --- bundle.yaml, last: the requested arches whose core set is built, like addons.sh's addons-images.yaml (a
# bundle of amd64 and loong64 built in two runs: run again with both --arch; what is built is skipped).
# Paths are relative to $OUT.
flow() { local s; s=$(printf '%s, ' "$@"); echo "[${s%, }]"; } # a YAML flow list
BARCHES=()
for a in "${ARCHES[@]}"; do if core_built "$a"; then BARCHES+=("$a"); fi; done
LAYERS=() # arches with an iptables layer for kube-proxy (from addons.sh)
if grep -q 'yaml:"layers"' "$REPO/bundle/build/spec.go"; then
	for a in "${BARCHES[@]}"; do if [ -s "$OUT/$a/layers/iptables.tar" ]; then LAYERS+=("$a"); fi; done
fi
if [ ${#BARCHES[@]} = 0 ]; then
	rm -f "$OUT/bundle.yaml" # not a stale one either
	echo "no requested arch has its core set built: no bundle.yaml" >&2
else
	{
		echo "# Generated by scripts/k8s/build.sh; paths are relative to this file."
		echo "apiVersion: wutong.io/v1alpha1"
		echo "kind: BundleSpec"
		echo "name: kubernetes"
		echo "version: $VERSION"
		echo "arches: $(flow "${BARCHES[@]}")"
		echo "kubernetesVersion: $VERSION"
		echo "files:"
		for a in "${BARCHES[@]}"; do
			for f in "$OUT/$a/files"/*; do
				[ -f "$f" ] || continue
				case $f in *.tmp | *.tmp.* | */.*) continue ;; esac # another writer's file in progress
				mode=0755
				if [[ $f == *.tgz ]]; then mode=0644; fi
				printf '  - {name: %s, arch: %s, path: %s, mode: "%s"}\n' "$(basename "$f")" "$a" "$a/files/$(basename "$f")" "$mode"
			done
		done
		echo "images:"
		while read -r img; do
			[ -n "$img" ] || continue
			b=${img##*/} && b=${b%%:*} # registry.k8s.io/coredns/coredns:v1.14.6 -> coredns
			arches=()
			for a in "${BARCHES[@]}"; do if [ -s "$OUT/$a/bin/$b" ]; then arches+=("$a"); fi; done
			# kube-proxy runs iptables (nft in nftables mode): without that layer it cannot work, so once one arch
			# has the layer, kube-proxy is only built where it is (as addons.sh does for flannel).
			if [ "$b" = kube-proxy ] && [ ${#LAYERS[@]} -gt 0 ]; then
				for a in "${arches[@]}"; do [[ " ${LAYERS[*]} " == *" $a "* ]] || echo "  # no kube-proxy for $a: no $a/layers/iptables.tar"; done
				arches=("${LAYERS[@]}")
			elif [ "$b" = kube-proxy ]; then
				echo "warning: kube-proxy's image has no iptables (no layers/iptables.tar or no layers field in spec.go)" >&2
			fi
			[ ${#arches[@]} -gt 0 ] || { echo "warning: no binary for image $img" >&2; continue; }
			echo "  - name: \"$img\""
			echo "    arches: $(flow "${arches[@]}")"
			echo "    binaries:"
			echo "      path: \"{arch}/bin/$b\""
			echo "      target: /usr/local/bin/$b"
			echo "      entrypoint: [\"/usr/local/bin/$b\"]"
			if [ "$b" = kube-proxy ] && [ ${#LAYERS[@]} -gt 0 ]; then echo "      layers: [\"{arch}/layers/iptables.tar\"]"; fi
		done <"$OUT/images.txt"
		if [ -s "$OUT/addons-images.yaml" ]; then cat "$OUT/addons-images.yaml"; fi
		if compgen -G "$OUT/manifests/*.yaml" >/dev/null; then
			echo "manifests:"
			for m in "$OUT"/manifests/*.yaml; do echo "  - path: manifests/$(basename "$m")"; done
		fi
	} >"$OUT/bundle.yaml.tmp"
	mv "$OUT/bundle.yaml.tmp" "$OUT/bundle.yaml"
	echo; echo "wrote $OUT/bundle.yaml (arches: ${BARCHES[*]})"
fi

[[ " ${ARCHES[*]} " != *" amd64 "* ]] || ! compgen -G "$OUT/amd64/.state/*.failed" >/dev/null || die "some amd64 components failed (see $OUT/amd64/BUILD-REPORT.txt)"
