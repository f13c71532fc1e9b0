#!/usr/bin/env bash
# `make bench`: build, verify and extract synthetic multi-arch bundles side by side with `tar | zstd -T0 -3` and
# `sha256sum`, seed the embedded registry side by side with `skopeo copy` and `cp -r`, and write docs/benchmarks.md.
# Results are ratios measured in this one run on this machine, never pass/fail timed tests; whether each goal is met
# is computed here from the measured numbers.
#
# Environment (defaults in brackets):
#   BENCH_SIZE_GB  size of the timed data set, GiB of unique layer bytes [1]
#   BENCH_BIG_GB   size of the second data set for the memory check [4]; 0 skips it
#   BENCH_IMAGES   images per data set [8]
#   BENCH_SEED_GB  size of the registry seeding data set, GiB of unique layer bytes [1]; 0 skips that section
#   BENCH_SEED_IMAGES  images in the seeding data set [20]
#   BENCH_SEED_TMPFS   a tmpfs for the informational seed/cp rows on another file system [/dev/shm]; empty skips them
#   BENCH_RUNS     timed runs of each command; the median is reported [3]
#   BENCH_SETTLE   seconds to wait (untimed, after sync) before each timed command [3]
#   BENCH_DIR      scratch directory, removed at the end [/var/tmp/wutong-bench]
#   BENCH_KEEP     1 keeps BENCH_DIR [0]
#   BENCH_DOC      where the report goes [docs/benchmarks.md]
#   WTCTL          the wtctl binary [bin/wtctl]
# Quick smoke run: BENCH_SIZE_GB=0.1 BENCH_BIG_GB=0.2 BENCH_SEED_GB=0.1 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SIZE_GB=${BENCH_SIZE_GB:-1}
BIG_GB=${BENCH_BIG_GB:-4}
IMAGES=${BENCH_IMAGES:-8}
SEED_GB=${BENCH_SEED_GB:-1}
SEED_IMAGES=${BENCH_SEED_IMAGES:-20}
SEED_TMPFS=${BENCH_SEED_TMPFS-/dev/shm}
RUNS=${BENCH_RUNS:-3}
SETTLE=${BENCH_SETTLE:-3}
WORK=${BENCH_DIR:-/var/tmp/wutong-bench}
KEEP=${BENCH_KEEP:-0}
DOC=${BENCH_DOC:-docs/benchmarks.md}
WTCTL=${WTCTL:-bin/wtctl}
case $WTCTL in /*) ;; *) WTCTL=$REPO/$WTCTL ;; esac
case $DOC in /*) ;; *) DOC=$REPO/$DOC ;; esac

# Goals (see the brief of issue "make bench").
GOAL_BUILD_SPEED=0.8  # t(tar|zstd) / t(wtctl build), at least
GOAL_SIZE=1.02        # archive bytes / unique blob bytes, at most
GOAL_VERIFY_SPEED=0.9 # t(sha256sum) / t(wtctl verify), at least
GOAL_RSS_MIB=256      # peak RSS of build, verify, extract, at most
FLAT_RATIO=1.25       # RSS(big) / RSS(small) at most counts as flat (informational)
# Goals (see issue "Embedded registry and fast image seeding").
GOAL_SEED_PUSH=5      # t(skopeo copy into wtctl registry serve) / t(wtctl registry seed), at least
GOAL_SEED_CP=1.5      # t(wtctl registry seed) / t(cp -r blobs), at most

log() { printf '\033[1m[bench %s]\033[0m %s\n' "$(date +%T)" "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

valid_num() { awk -v x="$1" 'BEGIN { exit !(x ~ /^[0-9]+(\.[0-9]+)?$/) }'; }
valid_num "$SIZE_GB" || die "BENCH_SIZE_GB=$SIZE_GB is not a number"
valid_num "$BIG_GB" || die "BENCH_BIG_GB=$BIG_GB is not a number"
[[ $IMAGES =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGES=$IMAGES is not a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$RUNS is not a positive integer"
valid_num "$SEED_GB" || die "BENCH_SEED_GB=$SEED_GB is not a number"
[[ $SEED_IMAGES =~ ^[1-9][0-9]*$ ]] || die "BENCH_SEED_IMAGES=$SEED_IMAGES is not a positive integer"
DO_SEED=0
awk -v b="$SEED_GB" 'BEGIN { exit !(b > 0) }' && DO_SEED=1
valid_num "$SETTLE" || die "BENCH_SETTLE=$SETTLE is not a number"
[ -x "$WTCTL" ] || die "$WTCTL not found: run 'make bench' (it builds bin/wtctl first)"

# --- tools -------------------------------------------------------------------------------------------------------
need_pkgs=()
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v zstd >/dev/null || need_pkgs+=(zstd)
if [ "$DO_SEED" = 1 ]; then
	command -v skopeo >/dev/null || need_pkgs+=(skopeo)
	command -v curl >/dev/null || need_pkgs+=(curl)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need_pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
	else
		die "missing ${need_pkgs[*]}: apt-get install ${need_pkgs[*]}"
	fi
fi
for t in tar zstd sha256sum find xargs awk go; do command -v "$t" >/dev/null || die "$t not found"; done
if [ "$DO_SEED" = 1 ]; then
	for t in skopeo curl; do command -v "$t" >/dev/null || die "$t not found"; done
fi

# --- scratch directory -------------------------------------------------------------------------------------------
case $WORK in /* ) ;; *) die "BENCH_DIR must be absolute" ;; esac
[ "$WORK" != / ] || die "BENCH_DIR=/ is not a scratch directory"
# One bench at a time per scratch directory: a second run would delete the first one's files.
if command -v flock >/dev/null; then
	exec 9>"$WORK.lock"
	flock -n 9 || die "another bench is using $WORK (lock $WORK.lock); wait for it or set BENCH_DIR"
fi
MARK=.wutong-bench
if [ -e "$WORK" ]; then
	if [ -e "$WORK/$MARK" ]; then
		rm -rf "$WORK"
	elif [ -n "$(ls -A "$WORK")" ]; then
		die "$WORK exists, is not empty and was not made by this script; remove it or set BENCH_DIR"
	fi
fi
mkdir -p "$WORK"
touch "$WORK/$MARK"
SERVE_PID=
SEED_TMP=
cleanup() {
	if [ -n "$SERVE_PID" ]; then
		kill "$SERVE_PID" 2>/dev/null || true
		wait "$SERVE_PID" 2>/dev/null || true
	fi
	[ -z "$SEED_TMP" ] || rm -rf "$SEED_TMP"
	if [ "$KEEP" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	rm -f "$WORK.lock"
}
trap cleanup EXIT

BENCH_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- helpers -----------------------------------------------------------------------------------------------------
now() { date +%s.%N; }

# measure NAME CMD...: runs CMD under /usr/bin/time, appends "NAME seconds peak_rss_kib" to $RES. CMD's output
# goes to $WORK/logs/NAME.log. Dirty pages are written back (sync, untimed) after every command so that one
# command's writes are not flushed during the next one; NOSYNC=1 skips that once. Before each command it waits
# $SETTLE seconds: on a VM, memory freed a moment ago (deleted outputs) is much faster to write into than memory
# that has settled, which would favour whichever command runs right after a deletion.
RES=$WORK/results.txt
: >"$RES"
mkdir -p "$WORK/logs"
measure() {
	local name=$1
	shift
	local t0 t1 rc=0
	sleep "$SETTLE"
	t0=$(now)
	/usr/bin/time -f '%M' -o "$WORK/rss.tmp" "$@" >>"$WORK/logs/$name.log" 2>&1 || rc=$?
	t1=$(now)
	if [ $rc -ne 0 ]; then
		echo "bench: '$*' failed with exit code $rc; its output:" >&2
		tail -n 30 "$WORK/logs/$name.log" >&2
		exit 1
	fi
	[ "${NOSYNC:-0}" = 1 ] || sync
	local rss
	rss=$(tail -n 1 "$WORK/rss.tmp")
	awk -v n="$name" -v a="$t0" -v b="$t1" -v r="$rss" 'BEGIN { printf "%s %.3f %d\n", n, b - a, r }' >>"$RES"
}

# vals NAME FIELD: every value of FIELD (2 = seconds, 3 = RSS KiB) recorded for NAME
vals() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$RES"; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { sort -g | tail -n 1; }
div() { awk -v a="$1" -v b="$2" -v p="${3:-3}" 'BEGIN { if (b == 0) print "nan"; else printf "%.*f\n", p, a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }
gib() { awk -v b="$1" 'BEGIN { printf "%.2f\n", b / 1073741824 }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { if (s == 0) print "nan"; else printf "%.0f\n", b / 1048576 / s }'; }
# verdict VALUE OP GOAL -> "met" or "NOT met"
verdict() { awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN { ok = (op == ">=") ? (v >= g) : (v <= g); print (ok ? "met" : "**NOT met**") }'; }
# kv FILE KEY: the value of a key=value line
kv() { awk -F= -v k="$2" '$1 == k { print $2 }' "$1"; }
warm() { find "$@" -type f -print0 | xargs -0 cat >/dev/null; }

# --- setup -------------------------------------------------------------------------------------------------------
# A private copy, so that a `make build` elsewhere during the run cannot swap the binary under the benchmark.
cp "$WTCTL" "$WORK/wtctl"
WTCTL=$WORK/wtctl
log "building scripts/benchgen"
go build -o "$WORK/benchgen" ./scripts/benchgen
"$WTCTL" bundle keygen --private "$WORK/bench.key" --public "$WORK/bench.pub" >/dev/null

# gen DIR SIZE_GB [IMAGES]: a layout in DIR/layout, DIR/bundle.yaml, and DIR/gen.txt (benchgen's key=value summary)
gen() {
	mkdir -p "$1"
	"$WORK/benchgen" -out "$1/layout" -spec "$1/bundle.yaml" -size "${2}G" -images "${3:-$IMAGES}" >"$1/gen.txt"
	sync
}

S=$WORK/small
log "generating ${SIZE_GB} GiB of layers ($IMAGES images x 3 arches) in $S/layout"
gen "$S" "$SIZE_GB"
S_UNIQUE=$(kv "$S/gen.txt" unique_blob_bytes)
ARCHIVE=$S/out/bench-1.0.0.tar.zst
REF=$S/ref.tar.zst

# The exact commands, as the report shows them.
CMD_BUILD="wtctl bundle build -f bundle.yaml -o out -q --force --sign-key bench.key"
CMD_TARZ="tar -cf - layout | zstd -T0 -3 -q -o ref.tar.zst"
CMD_VERIFY="wtctl bundle verify out/bench-1.0.0.tar.zst --key bench.pub -o json"
CMD_SHA="find extracted -type f -print0 | xargs -0 sha256sum > /dev/null"
CMD_EXTRACT="wtctl bundle extract out/bench-1.0.0.tar.zst --key bench.pub -C extracted"
CMD_SEED="wtctl registry seed --from layout --root r1 -o json"
CMD_SERVE="wtctl registry serve --root r2 --addr 127.0.0.1:PORT"
# shellcheck disable=SC2016 # shown as is in the report
CMD_SKOPEO='for r in REFNAMES; do skopeo copy -q --all --dest-tls-verify=false oci:layout:$r docker://127.0.0.1:PORT/bench/$r:1; done'
CMD_CP="cp -r layout/blobs r3/"
CMD_CPSYNC="sync -f r3"

run_build() { measure "$1" "$WTCTL" bundle build -f "$2/bundle.yaml" -o "$2/out" -q --force --sign-key "$WORK/bench.key"; }
# The reference archive is not fsynced by tar | zstd, while wtctl fsyncs its archive: the fsync of the reference
# file is timed separately (informational).
run_tarz() {
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	NOSYNC=1 measure tarzstd bash -c 'cd "$1" && tar -cf - layout | zstd -T0 -3 -q -o ref.tar.zst' _ "$S"
	measure tarfsync sync "$REF"
}
run_verify() { measure "$1" "$WTCTL" bundle verify "$2" --key "$WORK/bench.pub" -o json; }
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
run_sha() { measure sha256sum bash -c 'find "$1" -type f -print0 | xargs -0 sha256sum > /dev/null' _ "$S/extracted"; }
# Informational: the same with OpenSSL's sha256, which uses the CPU's SHA extensions (coreutils 9.1 does not).
HAVE_OPENSSL=0
command -v openssl >/dev/null && HAVE_OPENSSL=1
CMD_OPENSSL="find extracted -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null"
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
run_openssl() {
	[ "$HAVE_OPENSSL" = 1 ] || return 0
	measure openssl bash -c 'find "$1" -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null' _ "$S/extracted"
}
run_extract() { measure "$1" "$WTCTL" bundle extract "$2" --key "$WORK/bench.pub" -C "$3"; }

# --- 1. build speed and size -------------------------------------------------------------------------------------
log "warming the page cache with the layout"
warm "$S/layout"
log "build: $RUNS runs each of wtctl bundle build and tar | zstd, alternating which goes first"
for i in $(seq 1 "$RUNS"); do
	rm -rf "$S/out" "$REF"
	sync
	if [ $((i % 2)) = 1 ]; then
		run_build build "$S"
		run_tarz
	else
		run_tarz
		run_build build "$S"
	fi
done
ARCHIVE_BYTES=$(stat -c %s "$ARCHIVE")
REF_BYTES=$(stat -c %s "$REF")
rm -f "$REF"

# One more build without -q, for the per-step lines (resolve and stage each image, then write the archive).
log "build: one more run without -q, for the per-step timing lines"
"$WTCTL" bundle build -f "$S/bundle.yaml" -o "$S/out" --force --sign-key "$WORK/bench.key" >/dev/null 2>"$WORK/logs/build-steps.log"
sync
# Go durations as printed by the progress lines: 850ms, 1.234s, 1m2.5s, 12µs
STEPS=$(awk '
	function secs(d,   s, m) {
		s = 0
		if (d ~ /µs$/) return substr(d, 1, length(d) - 2) / 1e6
		if (d ~ /ms$/) return substr(d, 1, length(d) - 2) / 1e3
		if (d ~ /h/) { split(d, m, "h"); s += m[1] * 3600; d = m[2] }
		if (d ~ /m/) { split(d, m, "m"); s += m[1] * 60; d = m[2] }
		if (d ~ /s$/) s += substr(d, 1, length(d) - 1)
		return s
	}
	/: done, / {
		for (i = 1; i <= NF; i++) if ($i == "in") d = $(i + 1)
		if ($1 == "image") { stage += secs(d); n++ } else if ($1 == "write") write += secs(d)
	}
	END { printf "%d %.3f %.3f\n", n, stage, write }' "$WORK/logs/build-steps.log")
read -r STEP_IMAGES STEP_STAGE STEP_WRITE <<<"$STEPS"

# --- 2. verify speed ---------------------------------------------------------------------------------------------
log "extract once (for sha256sum, and the extract memory figure)"
run_extract extract "$ARCHIVE" "$S/extracted"
EXTRACTED_BYTES=$(du -sb "$S/extracted" | awk '{ print $1 }')
warm "$ARCHIVE" "$S/extracted"
log "verify: $RUNS runs each of wtctl bundle verify and find | xargs sha256sum, alternating"
for i in $(seq 1 "$RUNS"); do
	if [ $((i % 2)) = 1 ]; then
		run_verify verify "$ARCHIVE"
		run_sha
		run_openssl
	else
		run_openssl
		run_sha
		run_verify verify "$ARCHIVE"
	fi
done
rm -rf "$S/extracted" "$S/out" "$S/layout"

# --- 3. memory on a bigger bundle --------------------------------------------------------------------------------
B=$WORK/big
if awk -v b="$BIG_GB" 'BEGIN { exit !(b > 0) }'; then
	log "generating ${BIG_GB} GiB of layers in $B/layout"
	gen "$B" "$BIG_GB"
	cp "$B/gen.txt" "$WORK/big-gen.txt"
	B_UNIQUE=$(kv "$WORK/big-gen.txt" unique_blob_bytes)
	warm "$B/layout"
	log "big: build, verify, extract once each"
	run_build big-build "$B"
	BIG_ARCHIVE_BYTES=$(stat -c %s "$B/out/bench-1.0.0.tar.zst")
	rm -rf "$B/layout"
	run_verify big-verify "$B/out/bench-1.0.0.tar.zst"
	run_extract big-extract "$B/out/bench-1.0.0.tar.zst" "$B/extracted"
	rm -rf "$B"
fi

# --- 4. registry seeding -----------------------------------------------------------------------------------------
# The same layout three ways, on the scratch file system: wtctl registry seed straight into a registry root,
# skopeo copy of every image into a running wtctl registry serve (plain HTTP on loopback), and cp -r of the blobs.
D=$WORK/seed
# Each run's server listens on a new port, so that skopeo's blob-info cache (kept across runs, for root in
# /var/lib/containers/cache) knows no blob locations on it from an earlier run and cannot try to mount from them.
NEXT_PORT=$((20000 + RANDOM % 20000))
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# serve_start ROOT: wtctl registry serve on a free loopback port ($SERVE_PORT), back once /healthz answers
serve_start() {
	local tries=0
	while port_busy "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
	SERVE_PORT=$NEXT_PORT
	NEXT_PORT=$((NEXT_PORT + 1))
	"$WTCTL" registry serve --root "$1" --addr "127.0.0.1:$SERVE_PORT" >>"$WORK/logs/serve.log" 2>&1 &
	SERVE_PID=$!
	until curl -fsS -o /dev/null "http://127.0.0.1:$SERVE_PORT/healthz" 2>/dev/null; do
		tries=$((tries + 1))
		if [ $tries -gt 150 ]; then
			tail -n 20 "$WORK/logs/serve.log" >&2
			die "wtctl registry serve on 127.0.0.1:$SERVE_PORT did not answer /healthz within 15 s"
		fi
		sleep 0.1
	done
}
serve_stop() {
	local rc=0
	kill "$SERVE_PID"
	wait "$SERVE_PID" || rc=$?
	SERVE_PID=
	[ $rc = 0 ] || log "warning: wtctl registry serve exited with code $rc after SIGTERM (see $WORK/logs/serve.log)"
}
run_seed() { measure "$1" "$WTCTL" registry seed --from "$D/layout" --root "$2" -o json; }
run_cp() {
	mkdir -p "$2"
	measure "$1" cp -r "$D/layout/blobs" "$2/"
}
run_skopeo() {
	serve_start "$D/r2"
	# shellcheck disable=SC2016 # $1.. are expanded by the inner bash
	measure seed-skopeo bash -c 'l=$1 p=$2; shift 2; for r in "$@"; do
		skopeo copy -q --all --dest-tls-verify=false "oci:$l:$r" "docker://127.0.0.1:$p/bench/$r:1" || exit; done' \
		_ "$D/layout" "$SERVE_PORT" "${SEED_REFS[@]}"
	serve_stop
}
if [ "$DO_SEED" = 1 ]; then
	log "generating ${SEED_GB} GiB of layers ($SEED_IMAGES images x 3 arches) in $D/layout"
	gen "$D" "$SEED_GB" "$SEED_IMAGES"
	cp "$D/gen.txt" "$WORK/seed-gen.txt"
	case $D/layout in *:*) die "the layout path $D/layout contains ':', which an oci: reference cannot carry" ;; esac
	# The oci: references are the layout's own names (index.json, org.opencontainers.image.ref.name).
	mapfile -t SEED_REFS < <(grep -o '"org\.opencontainers\.image\.ref\.name": *"[^"]*"' "$D/layout/index.json" |
		sed 's/.*: *"\([^"]*\)"$/\1/')
	[ ${#SEED_REFS[@]} = "$SEED_IMAGES" ] || die "found ${#SEED_REFS[@]} ref names in $D/layout/index.json, expected $SEED_IMAGES"
	warm "$D/layout"
	log "seed: $RUNS runs each of wtctl registry seed, skopeo copy x${#SEED_REFS[@]} into wtctl registry serve, cp -r; rotating the order"
	for i in $(seq 1 "$RUNS"); do
		rm -rf "$D/r1" "$D/r2" "$D/r3"
		sync
		for k in 0 1 2; do
			case $(((i - 1 + k) % 3)) in
			0) run_seed seed "$D/r1" ;;
			1) run_skopeo ;;
			2)
				# cp does not flush what it wrote while the seed does (syncfs, twice, inside its timed run): the flush
				# after cp is timed separately (informational).
				NOSYNC=1 run_cp seed-cp "$D/r3"
				measure seed-cpsync sync -f "$D/r3"
				;;
			esac
		done
	done
	SEED_LINKED=$(awk -F'[:,]' '/"blobsLinked"/ { gsub(/ /, "", $2); v = $2 } END { print v }' "$WORK/logs/seed.log")
	SEED_BLOBS=$(awk -F'[:,]' '/"blobs"/ { gsub(/ /, "", $2); v = $2 } END { print v }' "$WORK/logs/seed.log")
	SEED_R2_BYTES=$(du -sb "$D/r2" | awk '{ print $1 }')
	rm -rf "$D/r1" "$D/r2" "$D/r3"
	sync

	# Informational: the seed into a root on another file system (it copies and hashes instead of linking), next to
	# cp -r onto the same tmpfs; only when the data fits in memory with room to spare.
	SEED_TMPFS_WHY=
	S_UNIQ_SEED=$(kv "$WORK/seed-gen.txt" unique_blob_bytes)
	if [ -z "$SEED_TMPFS" ]; then
		SEED_TMPFS_WHY="BENCH_SEED_TMPFS is empty"
	elif [ ! -d "$SEED_TMPFS" ] || [ "$(df --output=fstype "$SEED_TMPFS" | tail -n 1)" != tmpfs ]; then
		SEED_TMPFS_WHY="$SEED_TMPFS is not a tmpfs"
	elif [ "$(stat -c %d "$SEED_TMPFS")" = "$(stat -c %d "$WORK")" ]; then
		SEED_TMPFS_WHY="$SEED_TMPFS is on the scratch file system"
	elif ! awk -v need="$S_UNIQ_SEED" -v avail="$(($(df --output=avail -B1 "$SEED_TMPFS" | tail -n 1)))" \
		-v mem="$(awk '/^MemAvailable/ { print $2 * 1024 }' /proc/meminfo)" \
		'BEGIN { exit !(avail >= 2 * need && mem >= 3 * need + 1073741824) }'; then
		SEED_TMPFS_WHY="not enough room in $SEED_TMPFS or memory for $(gib "$S_UNIQ_SEED") GiB"
	fi
	if [ -z "$SEED_TMPFS_WHY" ]; then
		SEED_TMP=$(mktemp -d "$SEED_TMPFS/wutong-bench-seed.XXXXXX")
		log "seed: $RUNS runs each of wtctl registry seed and cp -r into $SEED_TMPFS (tmpfs), alternating"
		for i in $(seq 1 "$RUNS"); do
			rm -rf "$SEED_TMP/r1" "$SEED_TMP/r3"
			sync
			if [ $((i % 2)) = 1 ]; then
				run_seed seed-tmpfs "$SEED_TMP/r1"
				run_cp seed-tmpfs-cp "$SEED_TMP/r3"
			else
				run_cp seed-tmpfs-cp "$SEED_TMP/r3"
				run_seed seed-tmpfs "$SEED_TMP/r1"
			fi
		done
		SEED_TMPFS_LINKED=$(awk -F'[:,]' '/"blobsLinked"/ { gsub(/ /, "", $2); v = $2 } END { print v }' "$WORK/logs/seed-tmpfs.log")
		rm -rf "$SEED_TMP"
		SEED_TMP=
	else
		log "seed: skipping the tmpfs rows: $SEED_TMPFS_WHY"
	fi
	rm -rf "$D/layout"
fi

# --- numbers -----------------------------------------------------------------------------------------------------
T_BUILD=$(vals build 2 | median)
T_TARZ=$(vals tarzstd 2 | median)
T_TARFSYNC=$(vals tarfsync 2 | median)
T_TARZ_FSYNC=$(awk -v a="$T_TARZ" -v b="$T_TARFSYNC" 'BEGIN { printf "%.3f\n", a + b }')
BUILD_SPEED_FSYNC=$(div "$T_TARZ_FSYNC" "$T_BUILD")
T_VERIFY=$(vals verify 2 | median)
T_SHA=$(vals sha256sum 2 | median)
BUILD_SPEED=$(div "$T_TARZ" "$T_BUILD")
SIZE_RATIO=$(div "$ARCHIVE_BYTES" "$S_UNIQUE" 4)
REF_SIZE_RATIO=$(div "$REF_BYTES" "$S_UNIQUE" 4)
VERIFY_SPEED=$(div "$T_SHA" "$T_VERIFY")
if [ "$HAVE_OPENSSL" = 1 ]; then
	T_OPENSSL=$(vals openssl 2 | median)
	VERIFY_SPEED_OPENSSL=$(div "$T_OPENSSL" "$T_VERIFY")
fi

RSS_BUILD=$(vals build 3 | maxof)
RSS_VERIFY=$(vals verify 3 | maxof)
RSS_EXTRACT=$(vals extract 3 | maxof)
if [ -n "${B_UNIQUE:-}" ]; then
	RSS_BBUILD=$(vals big-build 3 | maxof)
	RSS_BVERIFY=$(vals big-verify 3 | maxof)
	RSS_BEXTRACT=$(vals big-extract 3 | maxof)
fi
if [ "$DO_SEED" = 1 ]; then
	T_SEED=$(vals seed 2 | median)
	T_SKOPEO=$(vals seed-skopeo 2 | median)
	T_CP=$(vals seed-cp 2 | median)
	T_CPSYNC=$(vals seed-cpsync 2 | median)
	T_CP_FSYNC=$(awk -v a="$T_CP" -v b="$T_CPSYNC" 'BEGIN { printf "%.3f\n", a + b }')
	SEED_PUSH=$(div "$T_SKOPEO" "$T_SEED" 2)
	SEED_CP=$(div "$T_SEED" "$T_CP")
	SEED_CP_FSYNC=$(div "$T_SEED" "$T_CP_FSYNC")
	if [ -z "$SEED_TMPFS_WHY" ]; then
		T_SEED_TMPFS=$(vals seed-tmpfs 2 | median)
		T_CP_TMPFS=$(vals seed-tmpfs-cp 2 | median)
		SEED_CP_TMPFS=$(div "$T_SEED_TMPFS" "$T_CP_TMPFS")
	fi
fi

ELAPSED=$(($(date +%s) - BENCH_START))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "done in ${ELAPSED}s; writing $DOC"

# --- report ------------------------------------------------------------------------------------------------------
ncpu=$(nproc)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu" ] || cpu=$(uname -m)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
wtv=$("$WTCTL" version)
zv=$(zstd --version)
tv=$(tar --version | sed -n 1p)
sv=$(sha256sum --version | sed -n 1p)
gv=$(go version)
skv=n/a
[ "$DO_SEED" = 0 ] || skv=$(skopeo --version)
shani=$(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)

# rss_row LABEL SMALL_KIB BIG_KIB
rss_row() {
	local v="n/a" growth="n/a" flat="n/a" worst=$2
	if [ -n "${3:-}" ]; then
		v="$(mib "$3")"
		growth=$(div "$3" "$2" 2)
		flat=$(awk -v g="$growth" -v f="$FLAT_RATIO" 'BEGIN { print (g <= f) ? "yes" : "no" }')
		worst=$(printf '%s\n%s\n' "$2" "$3" | maxof)
	fi
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(mib "$2")" "$v" "$growth" "$flat" \
		"$(verdict "$(mib "$worst")" "<=" "$GOAL_RSS_MIB")"
}

runs_of() { vals "$1" 2 | paste -sd' ' | sed 's/ /, /g'; }

BIG_LABEL=n/a
[ -z "${B_UNIQUE:-}" ] || BIG_LABEL=$(gib "$B_UNIQUE")
TMPDOC=$WORK/benchmarks.md
{
	cat <<EOF
# Benchmarks

Written by \`make bench\` (\`scripts/bench.sh\`) on $(date -u +%Y-%m-%d) at $(date -u +%H:%M) UTC; do not edit by hand.
Every number below was measured in that one run, side by side on the same machine and the same data. Speeds are
reported as **ratios** to a plain-tools baseline, since absolute times depend on the machine; the verdicts are
computed by the script from the measured numbers.

## Summary

| what | measured | goal | verdict |
|---|---|---|---|
| build speed: t(tar \\| zstd) / t(wtctl bundle build) | **${BUILD_SPEED}** | >= ${GOAL_BUILD_SPEED} | $(verdict "$BUILD_SPEED" ">=" "$GOAL_BUILD_SPEED") |
| archive size: bundle bytes / unique blob bytes | **${SIZE_RATIO}** | <= ${GOAL_SIZE} | $(verdict "$SIZE_RATIO" "<=" "$GOAL_SIZE") |
| verify speed: t(sha256sum of the extracted tree) / t(wtctl bundle verify) | **${VERIFY_SPEED}** | >= ${GOAL_VERIFY_SPEED} | $(verdict "$VERIFY_SPEED" ">=" "$GOAL_VERIFY_SPEED") |
EOF
	if [ -n "${B_UNIQUE:-}" ]; then
		worst=$(printf '%s\n' "$RSS_BUILD" "$RSS_VERIFY" "$RSS_EXTRACT" "$RSS_BBUILD" "$RSS_BVERIFY" "$RSS_BEXTRACT" | maxof)
		echo "| peak RSS, worst of build/verify/extract at $(gib "$S_UNIQUE") and $(gib "$B_UNIQUE") GiB | **$(mib "$worst") MiB** | <= ${GOAL_RSS_MIB} MiB | $(verdict "$(mib "$worst")" "<=" "$GOAL_RSS_MIB") |"
	else
		worst=$(printf '%s\n' "$RSS_BUILD" "$RSS_VERIFY" "$RSS_EXTRACT" | maxof)
		echo "| peak RSS, worst of build/verify/extract at $(gib "$S_UNIQUE") GiB (big run skipped) | **$(mib "$worst") MiB** | <= ${GOAL_RSS_MIB} MiB | $(verdict "$(mib "$worst")" "<=" "$GOAL_RSS_MIB") |"
	fi
	if [ "$DO_SEED" = 1 ]; then
		echo "| seed speed: t(skopeo copy of every image into wtctl registry serve) / t(wtctl registry seed) | **${SEED_PUSH}** | >= ${GOAL_SEED_PUSH} | $(verdict "$SEED_PUSH" ">=" "$GOAL_SEED_PUSH") |"
		echo "| seed cost: t(wtctl registry seed) / t(cp -r of the layout's blobs), same file system | **${SEED_CP}** | <= ${GOAL_SEED_CP} | $(verdict "$SEED_CP" "<=" "$GOAL_SEED_CP") |"
	else
		echo "| seed speed and cost (section 4) | skipped (BENCH_SEED_GB=0) | >= ${GOAL_SEED_PUSH}, <= ${GOAL_SEED_CP} | n/a |"
	fi
	cat <<EOF

## Machine and versions

| | |
|---|---|
| CPU | ${cpu} (nproc ${ncpu}; SHA extensions: ${shani}) |
| memory | ${mem} |
| scratch file system | ${fs} (\`${WORK}\`) |
| kernel | $(uname -sr) |
| wtctl | ${wtv} |
| zstd | ${zv} |
| tar | ${tv} |
| sha256sum | ${sv} |
| Go | ${gv} |
| skopeo | ${skv} |
| parameters | BENCH_SIZE_GB=${SIZE_GB} BENCH_BIG_GB=${BIG_GB} BENCH_IMAGES=${IMAGES} BENCH_SEED_GB=${SEED_GB} BENCH_SEED_IMAGES=${SEED_IMAGES} BENCH_SEED_TMPFS=${SEED_TMPFS} BENCH_RUNS=${RUNS} BENCH_SETTLE=${SETTLE} |
| bench run time | ${ELAPSED} s |
| load average (1, 5, 15 min) at start / end | ${LOAD_START} / ${LOAD_END} (other work on the machine makes the ratios noisier) |

## Data set

\`scripts/benchgen\` writes an OCI image layout directly: ${IMAGES} images, each a multi-arch index over linux/amd64,
linux/arm64 and linux/loong64 image manifests, with incompressible layers (ChaCha8 stream, fixed seed). Half of the
unique layer bytes are in shared layers: a quarter common to every image and arch, a quarter shared by the three
arches of one image; the rest is per image and arch. \`bundle.yaml\` lists every image as
\`{name: bench.local/imgN:1, ociLayout: <layout>, refName: imgNN}\` for arches [amd64, arm64, loong64].

| | timed set | memory set |
|---|---|---|
| unique blob bytes (layers, configs, manifests, indexes) | $(kv "$S/gen.txt" unique_blob_bytes) ($(gib "$S_UNIQUE") GiB) | ${B_UNIQUE:-n/a}$([ -n "${B_UNIQUE:-}" ] && echo " ($(gib "$B_UNIQUE") GiB)") |
| unique layer bytes / of which in shared layers | $(kv "$S/gen.txt" unique_layer_bytes) / $(kv "$S/gen.txt" shared_layer_bytes) ($(kv "$S/gen.txt" shared_fraction)) | $([ -n "${B_UNIQUE:-}" ] && echo "$(kv "$WORK/big-gen.txt" unique_layer_bytes) / $(kv "$WORK/big-gen.txt" shared_layer_bytes) ($(kv "$WORK/big-gen.txt" shared_fraction))" || echo n/a) |
| layer bytes as referenced by the image manifests | $(kv "$S/gen.txt" referenced_layer_bytes) | $([ -n "${B_UNIQUE:-}" ] && kv "$WORK/big-gen.txt" referenced_layer_bytes || echo n/a) |
| blobs (of which layers) | $(kv "$S/gen.txt" blobs) ($(kv "$S/gen.txt" layers)) | $([ -n "${B_UNIQUE:-}" ] && echo "$(kv "$WORK/big-gen.txt" blobs) ($(kv "$WORK/big-gen.txt" layers))" || echo n/a) |

## 1. Build

The layout was read once into the page cache (\`cat > /dev/null\`) before the runs; page cache cannot be dropped
reliably here, so both sides read warm input. ${RUNS} runs each, alternating which command goes first; the archive
and the reference file were removed before each pair; \`sync\` ran after every command and each command started
${SETTLE} s later (both untimed; on a VM, memory freed a moment ago is faster to write into). Median of the runs.

| command | runs (s) | median (s) | MiB/s of unique blob bytes | output bytes | output / unique blob bytes |
|---|---|---|---|---|---|
| \`${CMD_BUILD}\` | $(runs_of build) | ${T_BUILD} | $(rate "$S_UNIQUE" "$T_BUILD") | ${ARCHIVE_BYTES} | ${SIZE_RATIO} |
| \`${CMD_TARZ//|/\\|}\` | $(runs_of tarzstd) | ${T_TARZ} | $(rate "$S_UNIQUE" "$T_TARZ") | ${REF_BYTES} | ${REF_SIZE_RATIO} |

- speed ratio t(tar | zstd) / t(wtctl build) = ${T_TARZ} / ${T_BUILD} = **${BUILD_SPEED}** (goal >= ${GOAL_BUILD_SPEED}: $(verdict "$BUILD_SPEED" ">=" "$GOAL_BUILD_SPEED"))
- informational, with the reference archive fsynced too (\`sync ref.tar.zst\` after each run: $(runs_of tarfsync) s, median ${T_TARFSYNC} s):
  (${T_TARZ} + ${T_TARFSYNC}) / ${T_BUILD} = ${BUILD_SPEED_FSYNC}
- size ratio archive / unique blob bytes = ${ARCHIVE_BYTES} / ${S_UNIQUE} = **${SIZE_RATIO}** (goal <= ${GOAL_SIZE}: $(verdict "$SIZE_RATIO" "<=" "$GOAL_SIZE"))

Not the same work on both sides: \`wtctl bundle build\` also resolves every image, keeps the bundle's arches,
stages a deduplicated layout (hardlinks, each blob hashed), hashes every entry again while writing, signs the
manifest and fsyncs the archive; \`tar | zstd\` only packs the directory as it is and does not fsync. The output
directory is on the same file system as the layout, so staging hardlinks the blobs instead of copying them.

Where the build time goes (one extra run without \`-q\`, from its per-step lines; ${STEP_IMAGES} images):

| step | seconds |
|---|---|
| resolve and stage the images (read and hash every blob once) | ${STEP_STAGE} |
| write the archive (hash every entry again, tar, zstd, fsync) | ${STEP_WRITE} |

## 2. Verify

The archive was extracted once with \`${CMD_EXTRACT}\` ($(gib "$EXTRACTED_BYTES") GiB on disk); archive and tree
were then read into the page cache. ${RUNS} runs each, alternating, median.

| command | runs (s) | median (s) | MiB/s of unique blob bytes |
|---|---|---|---|
| \`${CMD_VERIFY}\` | $(runs_of verify) | ${T_VERIFY} | $(rate "$S_UNIQUE" "$T_VERIFY") |
| \`${CMD_SHA//|/\\|}\` | $(runs_of sha256sum) | ${T_SHA} | $(rate "$S_UNIQUE" "$T_SHA") |
$([ "$HAVE_OPENSSL" = 1 ] && echo "| \`${CMD_OPENSSL//|/\\|}\` (informational) | $(runs_of openssl) | ${T_OPENSSL} | $(rate "$S_UNIQUE" "$T_OPENSSL") |")

- speed ratio t(sha256sum) / t(wtctl verify) = ${T_SHA} / ${T_VERIFY} = **${VERIFY_SPEED}** (goal >= ${GOAL_VERIFY_SPEED}: $(verdict "$VERIFY_SPEED" ">=" "$GOAL_VERIFY_SPEED"))
$([ "$HAVE_OPENSSL" = 1 ] && echo "- informational, against \`openssl dgst -sha256\`: ${T_OPENSSL} / ${T_VERIFY} = ${VERIFY_SPEED_OPENSSL}")

\`wtctl bundle verify\` decompresses the zstd stream and checks the signature and every entry's size and sha256;
\`sha256sum\` only hashes files that are already there. $(ldd "$(command -v sha256sum)" 2>/dev/null | grep -q libcrypto && echo "This sha256sum is linked with libcrypto." || echo "This sha256sum is not linked with libcrypto and does not use the CPU's SHA extensions, while Go's crypto/sha256 does; that is most of the margin, hence the OpenSSL row.")

## 3. Memory

Peak resident set size (\`/usr/bin/time\`, %M) of each command on both data sets (for the timed set, the highest of
its runs). The goal is that memory stays flat as the bundle grows, under ${GOAL_RSS_MIB} MiB.
"flat" means RSS(big) / RSS(timed) <= ${FLAT_RATIO} (informational).

| command | RSS at $(gib "$S_UNIQUE") GiB (MiB) | RSS at ${BIG_LABEL} GiB (MiB) | big / timed | flat | <= ${GOAL_RSS_MIB} MiB |
|---|---|---|---|---|---|
$(rss_row "wtctl bundle build" "$RSS_BUILD" "${RSS_BBUILD:-}")
$(rss_row "wtctl bundle verify" "$RSS_VERIFY" "${RSS_BVERIFY:-}")
$(rss_row "wtctl bundle extract" "$RSS_EXTRACT" "${RSS_BEXTRACT:-}")
EOF
	if [ -n "${B_UNIQUE:-}" ]; then
		cat <<EOF

Times of the single runs on the memory set ($(gib "$B_UNIQUE") GiB, archive ${BIG_ARCHIVE_BYTES} bytes,
$(div "$BIG_ARCHIVE_BYTES" "$B_UNIQUE" 4) of unique blob bytes), for scale: build $(vals big-build 2) s
($(rate "$B_UNIQUE" "$(vals big-build 2)") MiB/s), verify $(vals big-verify 2) s ($(rate "$B_UNIQUE" "$(vals big-verify 2)") MiB/s),
extract $(vals big-extract 2) s ($(rate "$B_UNIQUE" "$(vals big-extract 2)") MiB/s); extract of the timed set took $(vals extract 2) s
($(rate "$S_UNIQUE" "$(vals extract 2)") MiB/s).
EOF
	fi
	cat <<EOF

## 4. Registry seeding

EOF
	if [ "$DO_SEED" = 1 ]; then
		SU=$(kv "$WORK/seed-gen.txt" unique_blob_bytes)
		rss_of() { mib "$(vals "$1" 3 | maxof)"; }
		cat <<EOF
One more layout from \`benchgen -size ${SEED_GB}G -images ${SEED_IMAGES}\`: ${SEED_IMAGES} images x 3 arches,
$(kv "$WORK/seed-gen.txt" blobs) blobs ($(kv "$WORK/seed-gen.txt" layers) layers), ${SU} unique blob bytes ($(gib "$SU") GiB),
half of the layer bytes in shared layers as above. It is on the scratch file system and was read into the page
cache before the runs. Three ways to get its images into the registry's storage, all on that same file system:
\`wtctl registry seed\` straight into a fresh storage root; \`skopeo copy --all\` of every image (its index, three
manifests, configs and layers) into a fresh root served by \`wtctl registry serve\`; and, as the floor, a plain
\`cp -r\` of the blobs. ${RUNS} runs each, rotating the order (in three runs each command goes first once); the three
outputs were removed and \`sync\` ran before each round, \`sync\` ran after every command and each command started
${SETTLE} s later (untimed). Median of the runs.

| command | runs (s) | median (s) | MiB/s of unique blob bytes | peak RSS (MiB) |
|---|---|---|---|---|
| \`${CMD_SEED}\` | $(runs_of seed) | ${T_SEED} | $(rate "$SU" "$T_SEED") | $(rss_of seed) |
| \`${CMD_SKOPEO}\` (${#SEED_REFS[@]} images), into \`${CMD_SERVE}\` | $(runs_of seed-skopeo) | ${T_SKOPEO} | $(rate "$SU" "$T_SKOPEO") | $(rss_of seed-skopeo) (largest skopeo; the server not counted) |
| \`${CMD_CP}\` | $(runs_of seed-cp) | ${T_CP} | $(rate "$SU" "$T_CP") | $(rss_of seed-cp) |
| \`${CMD_CPSYNC}\` right after the cp (informational) | $(runs_of seed-cpsync) | ${T_CPSYNC} | | |

- speed ratio t(skopeo copy) / t(wtctl registry seed) = ${T_SKOPEO} / ${T_SEED} = **${SEED_PUSH}** (goal >= ${GOAL_SEED_PUSH}: $(verdict "$SEED_PUSH" ">=" "$GOAL_SEED_PUSH"))
- cost ratio t(wtctl registry seed) / t(cp -r) = ${T_SEED} / ${T_CP} = **${SEED_CP}** (goal <= ${GOAL_SEED_CP}: $(verdict "$SEED_CP" "<=" "$GOAL_SEED_CP"))
- informational, with cp's writes flushed too (the seed flushes its file system with syncfs, twice, inside its timed
  run; cp does not): ${T_SEED} / (${T_CP} + ${T_CPSYNC}) = ${SEED_CP_FSYNC}

**The storage root is on the same file system as the layout, so the seed hard-links the blobs** (${SEED_LINKED} of
${SEED_BLOBS} blobs linked, \`blobsLinked\` in its JSON output): it writes next to no data, while \`cp -r\` writes
every byte. The seed still reads and hashes every blob (sha256, from the page cache) before it renames it into
place, and writes the repository link files and tags. From a layout on another file system (a USB disk, a bundle
extracted elsewhere) it copies and hashes instead: see the tmpfs rows below.

skopeo: plain HTTP on loopback (\`--dest-tls-verify=false\`); TLS would only add to skopeo's side. Each run had a
fresh root and a fresh server on a new port, started before the timing and stopped (SIGTERM, wait) after it; the
timing started once \`/healthz\` answered. Each image goes to its own repository \`bench/<refname>:1\`, the ref names
taken from \`org.opencontainers.image.ref.name\` in \`layout/index.json\`; the served root held ${SEED_R2_BYTES}
bytes afterwards. The seed names the same images by its mapping rule (\`docker.io/library/<refname>:latest\` for
these bare names); repository names do not change the work.
EOF
		if [ -z "$SEED_TMPFS_WHY" ]; then
			cat <<EOF

Informational, a storage root on another file system: \`${SEED_TMPFS}\` (tmpfs), where the seed cannot link and
copies (and hashes) every blob; next to \`cp -r\` onto the same tmpfs. ${RUNS} runs each, alternating, same discipline.

| command | runs (s) | median (s) | MiB/s of unique blob bytes | peak RSS (MiB) |
|---|---|---|---|---|
| \`wtctl registry seed --from layout --root ${SEED_TMPFS}/…/r1 -o json\` | $(runs_of seed-tmpfs) | ${T_SEED_TMPFS} | $(rate "$SU" "$T_SEED_TMPFS") | $(rss_of seed-tmpfs) |
| \`cp -r layout/blobs ${SEED_TMPFS}/…/r3/\` | $(runs_of seed-tmpfs-cp) | ${T_CP_TMPFS} | $(rate "$SU" "$T_CP_TMPFS") | $(rss_of seed-tmpfs-cp) |

- t(wtctl registry seed) / t(cp -r), both into tmpfs = ${T_SEED_TMPFS} / ${T_CP_TMPFS} = **${SEED_CP_TMPFS}**
  (informational; against the same-file-system goal of <= ${GOAL_SEED_CP} it would be $(verdict "$SEED_CP_TMPFS" "<=" "$GOAL_SEED_CP"));
  blobs linked: ${SEED_TMPFS_LINKED}
EOF
		else
			echo
			echo "The informational rows for a root on another file system were skipped: ${SEED_TMPFS_WHY}."
		fi
	else
		echo "Skipped (BENCH_SEED_GB=0)."
	fi
	cat <<EOF

## Exact commands

Run from the repository root: \`make bench\` (or \`BENCH_SIZE_GB=0.1 BENCH_BIG_GB=0.2 BENCH_SEED_GB=0.1 scripts/bench.sh\`
for a quick smoke run). In a scratch directory (\`${WORK}\`, removed at the end) it runs, per data set:

\`\`\`sh
go build -o benchgen ./scripts/benchgen
wtctl bundle keygen --private bench.key --public bench.pub
benchgen -out layout -spec bundle.yaml -size ${SIZE_GB}G -images ${IMAGES}   # and -size ${BIG_GB}G for the memory set
find layout -type f -print0 | xargs -0 cat > /dev/null   # warm the page cache
# ${RUNS}x, alternating; each under /usr/bin/time -f %M, wall time from date +%s.%N, then sync (untimed)
${CMD_BUILD}
${CMD_TARZ}
${CMD_EXTRACT}   # once
# ${RUNS}x, alternating
${CMD_VERIFY}
${CMD_SHA}
# memory set: build, verify, extract once each, same commands
EOF
	if [ "$DO_SEED" = 1 ]; then
		cat <<EOF
# registry seeding (section 4)
benchgen -out layout -spec bundle.yaml -size ${SEED_GB}G -images ${SEED_IMAGES}
find layout -type f -print0 | xargs -0 cat > /dev/null
# ${RUNS}x, rotating; r1, r2, r3 removed before each round
${CMD_SEED}
${CMD_SERVE} &   # untimed; a new port each run; timing starts when /healthz answers
${CMD_SKOPEO}   # REFNAMES: the ref names in layout/index.json
kill \$! && wait   # untimed
${CMD_CP}
${CMD_CPSYNC}
EOF
		[ -n "$SEED_TMPFS_WHY" ] || cat <<EOF
# ${RUNS}x, alternating, into ${SEED_TMPFS} (tmpfs)
wtctl registry seed --from layout --root ${SEED_TMPFS}/…/r1 -o json
cp -r layout/blobs ${SEED_TMPFS}/…/r3/
EOF
	fi
	echo '```'
} >"$TMPDOC"
mkdir -p "$(dirname "$DOC")"
# Keep the sections other bench scripts own (from their marker to the end).
if [ -f "$DOC" ] && grep -q '^<!-- bench-' "$DOC"; then
	{ echo; awk '/^<!-- bench-/ { keep = 1 } keep' "$DOC"; } >>"$TMPDOC"
fi
cp "$TMPDOC" "$DOC"
log "wrote $DOC"
sed -n '/^## Summary/,/^## Machine/p' "$DOC" | grep '^| [a-z]' >&2
