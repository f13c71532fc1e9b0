#!/usr/bin/env bash
# The guided demo: build a signed multi-arch bundle from local content only (the wtctl binaries for three arches,
# an OCI image built from them, and a Kubernetes manifest), then verify, inspect, split and extract it, seed a
# registry from it, and (as root) preflight a lab of three servers and install onto them.
# Works offline. Run from the repo root through `make demo`, which builds the binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
WTCTL=${WTCTL:-bin/wtctl}
DEMO=demo
mkdir -p "$DEMO"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A signing key (kept between runs)"
if [ ! -f "$DEMO/release.key" ]; then
	"$WTCTL" bundle keygen --private "$DEMO/release.key" --public "$DEMO/release.pub"
else
	echo "using $DEMO/release.key"
fi

step "2. bundle.yaml: wtctl for amd64, arm64 and loong64, an image built from them, one manifest"
VERSION=$("$WTCTL" version -o json | sed -n 's/.*"version": "\(.*\)".*/\1/p' | tr -c 'a-zA-Z0-9.\n-' '-')
cat > "$DEMO/bundle.yaml" <<YAML
apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: wutong-demo
version: 0.1.0
arches: [amd64, arm64, loong64]
kubernetesVersion: v1.37.2
files:
  - {name: wtctl, arch: amd64, path: ../dist/wtctl-linux-amd64, mode: "0755"}
  - {name: wtctl, arch: arm64, path: ../dist/wtctl-linux-arm64, mode: "0755"}
  - {name: wtctl, arch: loong64, path: ../dist/wtctl-linux-loong64, mode: "0755"}
images:
  - name: wutong/wtctl:${VERSION:-dev}
    binaries:
      path: ../dist/wtctl-linux-{arch}
      target: /usr/local/bin/wtctl
  # The platform server; the install's last phase deploys it into wutong-system.
  - name: ghcr.io/wutong-paas/wutong:${VERSION:-dev}
    binaries:
      path: ../dist/wutong-linux-{arch}
      target: /usr/local/bin/wutong
      entrypoint: [/usr/local/bin/wutong]
manifests:
  - path: ../scripts/demo/namespace.yaml
YAML
cat "$DEMO/bundle.yaml"

step "3. Build and sign"
"$WTCTL" bundle build -f "$DEMO/bundle.yaml" -o "$DEMO/out" --sign-key "$DEMO/release.key" --force
ARCHIVE="$DEMO/out/wutong-demo-0.1.0.tar.zst"

step "4. Verify (signature, every entry's size and sha256)"
"$WTCTL" bundle verify "$ARCHIVE" --key "$DEMO/release.pub"

step "5. Inspect"
"$WTCTL" bundle inspect "$ARCHIVE" --key "$DEMO/release.pub"

step "6. Split for a FAT32 stick (small parts to show it), verify the parts"
rm -rf "$DEMO/usb" && mkdir -p "$DEMO/usb"
"$WTCTL" bundle split "$ARCHIVE" --size 16M -C "$DEMO/usb"
"$WTCTL" bundle verify "$DEMO/usb/wutong-demo-0.1.0.tar.zst.part001" --key "$DEMO/release.pub"

step "7. Extract from the parts (verified while writing, renamed into place at the end)"
rm -rf "$DEMO/extracted"
"$WTCTL" bundle extract "$DEMO/usb/wutong-demo-0.1.0.tar.zst.part001" --key "$DEMO/release.pub" -C "$DEMO/extracted"
ls "$DEMO/extracted" "$DEMO/extracted/files"

step "8. A tampered copy is refused"
cp "$ARCHIVE" "$DEMO/tampered.tar.zst"
size=$(stat -c %s "$DEMO/tampered.tar.zst")
printf '\xff' | dd of="$DEMO/tampered.tar.zst" bs=1 seek=$((size / 2)) conv=notrunc status=none
if "$WTCTL" bundle verify "$DEMO/tampered.tar.zst" --key "$DEMO/release.pub" -o json >/dev/null; then
	echo "tampered bundle was accepted: this is a bug" >&2
	exit 1
else
	echo "refused with exit code $? (as it should be)"
fi
rm -f "$DEMO/tampered.tar.zst"

step "9. Seed the bundle straight into a registry's storage and serve it over TLS"
rm -rf "$DEMO/registry" "$DEMO/pki"
"$WTCTL" registry seed --from "$ARCHIVE" --key "$DEMO/release.pub" --root "$DEMO/registry"
"$WTCTL" registry seed --from "$ARCHIVE" --key "$DEMO/release.pub" --root "$DEMO/registry" -o json | grep -E '"bytesWritten"'
"$WTCTL" registry cert --ca-dir "$DEMO/pki" --host 127.0.0.1 --host localhost --out-cert "$DEMO/pki/tls.crt" --out-key "$DEMO/pki/tls.key"
"$WTCTL" registry serve --root "$DEMO/registry" --addr 127.0.0.1:5643 --tls-cert "$DEMO/pki/tls.crt" --tls-key "$DEMO/pki/tls.key" --read-only 2>"$DEMO/registry.log" &
REG=$!
trap 'kill $REG 2>/dev/null || true' EXIT
if ! command -v curl >/dev/null; then
	echo "curl is not installed (apt-get install curl): skipping the HTTPS check of the running registry"
	kill "$REG"; wait "$REG" 2>/dev/null || true
else
for _ in $(seq 50); do curl -fsS --cacert "$DEMO/pki/ca.crt" https://127.0.0.1:5643/healthz >/dev/null 2>&1 && break; sleep 0.1; done
echo "catalog: $(curl -fsS --cacert "$DEMO/pki/ca.crt" https://127.0.0.1:5643/v2/_catalog)"
echo "tags:    $(curl -fsS --cacert "$DEMO/pki/ca.crt" "https://127.0.0.1:5643/v2/docker.io/wutong/wtctl/tags/list")"
kill "$REG"; wait "$REG" 2>/dev/null || true
fi

step "10. A lab of three servers (Kylin V10 SP2, openEuler 22.03, UOS 20) and a preflight against them"
LABARGS=(--lab demo --subnet 9)
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null || ! command -v systemd-nspawn >/dev/null; then
	echo "skipped: the lab needs root, debootstrap and systemd-nspawn (apt-get install debootstrap systemd-container)"
else
	trap 'kill $REG 2>/dev/null || true; scripts/lab/lab down "${LABARGS[@]}" >/dev/null 2>&1 || true' EXIT
	scripts/lab/lab up 3 "${LABARGS[@]}" --persona kylin-v10-sp2 --persona openeuler2203 --persona uos20
	cat > "$DEMO/cluster.yaml" <<YAML
apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  ssh:
    password: {env: WT_SSH_PASSWORD}    # never written in clear
  kubernetes:
    serviceCIDR: 10.96.0.0/16           # the default 10.96.0.0/12 would contain the lab's 10.99.9.0/24
  bundle: out/$(basename "$ARCHIVE")
  hosts:
    - {name: cp1, address: 10.99.9.11, roles: [control-plane, registry]}
    - {name: node1, address: 10.99.9.12, roles: [worker]}
    - {name: node2, address: 10.99.9.13, roles: [worker]}
YAML
	export WT_SSH_PASSWORD=wutong-root
	rm -rf "$DEMO/.wutong"
	"$WTCTL" cluster validate -f "$DEMO/cluster.yaml"
	echo
	echo "-- first contact: the hosts' keys are unknown, so they are refused (strict by default):"
	"$WTCTL" cluster preflight -f "$DEMO/cluster.yaml" --key "$DEMO/release.pub" --agent-dir dist 2>&1 | grep -m1 "unknown host key" || true
	echo "-- after checking the fingerprints with the servers' owner, accept and record them in the workdir:"
	"$WTCTL" cluster preflight -f "$DEMO/cluster.yaml" --key "$DEMO/release.pub" --agent-dir dist --accept-new-host-keys || true
	echo
	echo "recorded host keys: $DEMO/.wutong/demo/known_hosts; report: $DEMO/.wutong/demo/preflight.json"

	step "11. Install: the exact plan first (--dry-run changes nothing), then the install, then again (a no-op)"
	"$WTCTL" cluster install -f "$DEMO/cluster.yaml" --key "$DEMO/release.pub" --agent-dir dist --dry-run 2>/dev/null | head -30
	echo "…"
	"$WTCTL" cluster install -f "$DEMO/cluster.yaml" --key "$DEMO/release.pub" --agent-dir dist --yes
	echo
	echo "-- a second run: every step is done and verified, nothing changes:"
	"$WTCTL" cluster install -f "$DEMO/cluster.yaml" --key "$DEMO/release.pub" --agent-dir dist --yes 2>&1 | tail -5
	echo
	echo "-- on cp1: the payload, the prepared node, the registry under systemd:"
	scripts/lab/lab ssh lab1 "${LABARGS[@]}" 'ls /opt/wutong; sed -n "/BEGIN wutong/,/END wutong/p" /etc/hosts; systemctl is-active wutong-registry.service'
	echo "journal: $DEMO/.wutong/demo/journal.jsonl; logs: $DEMO/.wutong/demo/logs/"
	scripts/lab/lab down "${LABARGS[@]}"
fi

step "Done. Everything is under $DEMO/"
