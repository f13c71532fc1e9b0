#!/usr/bin/env bash
# Builds what the kwok test tier (platform/kubetest) needs, for this machine's arch, cached and resumable: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from source (scripts/k8s/build.sh --only), and
# kwok from the Go module proxy with its Stage objects.
#
#   scripts/k8s/controlplane.sh [--version v1.37.2] [--kwok v0.8.0]
#
# Layout: /var/cache/wutong-test/k8s-$VERSION-r1/<arch>/{bin,files}/ (build.sh's), and
# /var/cache/wutong-test/kwok-$KWOK/{kwok,stage/{node/fast,node/heartbeat,pod/fast}/*.yaml}. Everything is written
# to a temporary name and renamed into place; a re-run skips what is there. Warm: a fraction of a second; cold: about
# 5-8 minutes on 2 cores (kube-apiserver, and a kubeadm for etcd's version, take longest), and 1.5 minutes for kwok.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

die() { echo "scripts/k8s/controlplane.sh: $*" >&2; exit 1; }
usage() { sed -n '6p' "$REPO/scripts/k8s/controlplane.sh" | sed 's/^# *//'; }

VERSION=v1.37.2 KWOK=v0.8.0
while [ $# -gt 0 ]; do
	case $1 in
	--version) [ $# -ge 2 ] || die "--version needs a value"; VERSION=$2; shift 2 ;;
	--kwok) [ $# -ge 2 ] || die "--kwok needs a value"; KWOK=$2; shift 2 ;;
	--version=* | --kwok=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument '$1'; usage: $(usage)" ;;
	esac
done
command -v go >/dev/null || die "go is not on PATH"
ARCH=$(go env GOHOSTARCH)
K8S=/var/cache/wutong-test/k8s-$VERSION-r1 # build.sh's default --out
KDIR=/var/cache/wutong-test/kwok-$KWOK

# --- The control plane, from source (build.sh skips what is built).
bash "$REPO/scripts/k8s/build.sh" --version "$VERSION" --arch "$ARCH" \
	--only etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl

# --- kwok, in a wrapper module outside the repo (kwok is not a dependency of the repo's module).
STAGES="node/fast node/heartbeat pod/fast"
kwok_built() {
	[ -x "$KDIR/kwok" ] || return 1
	local s
	for s in $STAGES; do compgen -G "$KDIR/stage/$s/*.yaml" >/dev/null || return 1; done
}
if kwok_built; then
	echo "= kwok $KWOK: built before"
else
	echo "> kwok $KWOK ($(date +%T))"
	start=$SECONDS
	mkdir -p "$KDIR/src"
	export GOWORK=off CGO_ENABLED=0 GOOS=linux
	if [ ! -f "$KDIR/src/go.mod" ]; then
		printf 'module wutong.local/build/kwok\n\ngo 1.26\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK" >"$KDIR/src/go.mod.tmp"
		mv "$KDIR/src/go.mod.tmp" "$KDIR/src/go.mod"
	fi
	(cd "$KDIR/src" && go mod download "sigs.k8s.io/kwok@$KWOK") || die "cannot download sigs.k8s.io/kwok@$KWOK from the module proxy"
	MOD=$(cd "$KDIR/src" && go list -m -f '{{.Dir}}' "sigs.k8s.io/kwok@$KWOK")
	[ -d "$MOD" ] || die "no module directory for sigs.k8s.io/kwok@$KWOK"
	(cd "$KDIR/src" && GOFLAGS=-mod=mod nice -n 5 go build -trimpath -ldflags "-s -w" -o "$KDIR/kwok.tmp" \
		sigs.k8s.io/kwok/cmd/kwok) ||
		die "building kwok failed"
	rm -rf "$KDIR/stage.tmp"
	for s in $STAGES; do
		mkdir -p "$KDIR/stage.tmp/$s"
		for f in "$MOD/kustomize/stage/$s"/*.yaml; do
			[ "$(basename "$f")" = kustomization.yaml ] && continue
			cp "$f" "$KDIR/stage.tmp/$s/" && chmod 0644 "$KDIR/stage.tmp/$s/$(basename "$f")"
		done
	done
	rm -rf "$KDIR/stage" && mv "$KDIR/stage.tmp" "$KDIR/stage"
	mv -f "$KDIR/kwok.tmp" "$KDIR/kwok" # last: the binary marks the whole as built
	echo "  kwok $KWOK built in $((SECONDS - start))s"
fi

echo
echo "control plane binaries: $K8S/$ARCH/bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}"
echo "kubectl:                $K8S/$ARCH/files/kubectl"
echo "kwok:                   $KDIR/kwok"
echo "kwok stages:            $KDIR/stage/{${STAGES// /,}}/*.yaml"
echo "(platform/kubetest reads WUTONG_K8S_BIN=$K8S/$ARCH/bin and WUTONG_KWOK=$KDIR/kwok by default)"
