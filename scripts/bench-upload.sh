#!/usr/bin/env bash
# `make bench`, upload part: upload a file to a lab host over a shaped link with installer/remote (the installer's
# distribute path: SFTP, resumable, sha256 verified on the node) side by side with OpenSSH scp, then to 4 hosts
# at once against 1. Writes the "Upload" section of docs/benchmarks.md (from its marker to the end). Results are
# ratios from this one run; whether a goal is met is computed from the measured numbers.
#
# Environment (defaults in brackets):
#   BENCH_UPLOAD_GB    file size in GiB [1]
#   BENCH_UPLOAD_RATE  tc rate of each host's link [1gbit]
#   BENCH_RUNS         timed runs of each command; the median is reported [3]
#   BENCH_DIR          scratch directory [/var/tmp/wutong-bench-upload]
#   BENCH_DOC          the report [docs/benchmarks.md]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
GB=${BENCH_UPLOAD_GB:-1}
RATE=${BENCH_UPLOAD_RATE:-1gbit}
RUNS=${BENCH_RUNS:-3}
WORK=${BENCH_DIR:-/var/tmp/wutong-bench-upload}
DOC=${BENCH_DOC:-docs/benchmarks.md}
case $DOC in /*) ;; *) DOC=$REPO/$DOC ;; esac
HOSTS=4
GOAL_SCP=0.9 # t(scp) / t(wtctl upload), at least
LAB=(scripts/lab/lab)
LABARGS=(--lab bu --subnet 3)
MARK='<!-- bench-upload: written by scripts/bench-upload.sh -->'

log() { printf '\033[1m[bench-upload %s]\033[0m %s\n' "$(date +%T)" "$*" >&2; }
die() { echo "bench-upload: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root for the lab"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$RUNS is not a positive integer"
awk -v g="$GB" 'BEGIN { exit !(g > 0) }' || die "BENCH_UPLOAD_GB=$GB is not a positive number"
rate_bps=$(awk -v r="$RATE" 'BEGIN { n = r + 0; u = tolower(substr(r, length(n "") + 1));
	m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : (u == "bit" || u == "") ? 1 : -1;
	if (m < 0 || n <= 0) exit 1; printf "%.0f", n * m }') || die "BENCH_UPLOAD_RATE=$RATE: use a number with gbit, mbit or kbit"
for t in ssh scp go awk; do command -v "$t" >/dev/null || die "$t not found"; done

rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() { "${LAB[@]}" down "${LABARGS[@]}" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

log "building benchupload"
CGO_ENABLED=0 go build -o "$WORK/benchupload" ./scripts/benchupload
log "lab: $HOSTS hosts, links shaped to $RATE"
"${LAB[@]}" down "${LABARGS[@]}" >/dev/null 2>&1 || true
"${LAB[@]}" up "$HOSTS" "${LABARGS[@]}" --rate "$RATE" >/dev/null
STATE=$("${LAB[@]}" list "${LABARGS[@]}" --json | sed -n 's/.*"stateDir":"\([^"]*\)".*/\1/p')
mapfile -t IPS < <("${LAB[@]}" list "${LABARGS[@]}" | awk '{print $2}')
KEY=$STATE/id_ed25519
KH=$STATE/known_hosts
SSHO=(-i "$KEY" -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" -o BatchMode=yes)

BYTES=$(awk -v g="$GB" 'BEGIN { printf "%.0f", g * 1073741824 }')
log "writing a $GB GiB incompressible file"
head -c "$BYTES" /dev/urandom >"$WORK/payload"

clean() { for ip in "$@"; do ssh "${SSHO[@]}" "root@$ip" 'rm -rf /opt/wutong/bench && mkdir -p /opt/wutong/bench && sync'; done; sync; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

scp_t=() wt_t=() par_t=()
for ((r = 1; r <= RUNS; r++)); do
	clean "${IPS[0]}"
	s=$(now)
	scp -q "${SSHO[@]}" "$WORK/payload" "root@${IPS[0]}:/opt/wutong/bench/payload"
	scp_t+=("$(since "$s")")
	clean "${IPS[0]}"
	s=$(now)
	"$WORK/benchupload" -hosts "${IPS[0]}" -key "$KEY" -known-hosts "$KH" -file "$WORK/payload" -dst /opt/wutong/bench/payload >/dev/null
	wt_t+=("$(since "$s")")
	clean "${IPS[@]}"
	s=$(now)
	"$WORK/benchupload" -hosts "$(IFS=,; echo "${IPS[*]}")" -key "$KEY" -known-hosts "$KH" -file "$WORK/payload" -dst /opt/wutong/bench/payload >/dev/null
	par_t+=("$(since "$s")")
	log "run $r: scp ${scp_t[-1]} s, wtctl ${wt_t[-1]} s, wtctl to $HOSTS hosts ${par_t[-1]} s"
done
SCP=$(median "${scp_t[@]}")
WT=$(median "${wt_t[@]}")
PAR=$(median "${par_t[@]}")
LINK=$(awk -v b="$BYTES" -v r="$rate_bps" 'BEGIN { printf "%.3f", b * 8 / r }')
R_SCP=$(awk -v a="$SCP" -v b="$WT" 'BEGIN { printf "%.3f", a / b }')
R_LINK=$(awk -v a="$LINK" -v b="$WT" 'BEGIN { printf "%.3f", a / b }')
R_PAR=$(awk -v a="$PAR" -v b="$WT" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$R_SCP" -v g="$GOAL_SCP" 'BEGIN { print (r >= g) ? "met" : "**NOT met**" }')
MBS() { awk -v b="$BYTES" -v t="$1" -v n="${2:-1}" 'BEGIN { printf "%.0f", n * b / t / 1048576 }'; }

section=$WORK/section.md
{
	echo "$MARK"
	echo
	echo "## Upload to nodes (issue 4)"
	echo
	echo "Measured on $(date -u '+%Y-%m-%d at %H:%M UTC') by \`scripts/bench-upload.sh\`: a $GB GiB incompressible file to"
	echo "lab hosts (systemd-nspawn containers running OpenSSH sshd $(ssh "${SSHO[@]}" "root@${IPS[0]}" 'ssh -V 2>&1' | awk '{print $1}' | tr -d ,),"
	echo "each behind a veth shaped with \`tc tbf rate $RATE\` both ways). Medians of $RUNS runs. The remote file is removed"
	echo "before each run. wtctl's time includes what scp does not do: checking for an identical file, writing to a temp"
	echo "name, fsync, sha256 of the result on the node, and the atomic rename."
	echo
	echo "| what | measured | goal | verdict |"
	echo "|---|---|---|---|"
	echo "| upload speed: t(OpenSSH scp) / t(wtctl upload), one host | **$R_SCP** | >= $GOAL_SCP | $verdict |"
	echo "| link use: t($GB GiB at $RATE) / t(wtctl upload) | $R_LINK | (1.0 is the physical limit) | informational |"
	echo "| parallel: t(wtctl upload to $HOSTS hosts at once) / t(one host) | $R_PAR | (1.0 if nothing is shared) | informational |"
	echo
	echo "| | median s | MiB/s |"
	echo "|---|---|---|"
	echo "| \`scp\` (OpenSSH $(ssh -V 2>&1 | awk '{print $1}' | tr -d ,), SFTP mode, default cipher) | $SCP | $(MBS "$SCP") |"
	echo "| wtctl upload (installer/remote), one host | $WT | $(MBS "$WT") |"
	echo "| wtctl upload, $HOSTS hosts at once (aggregate) | $PAR | $(MBS "$PAR" "$HOSTS") |"
	echo "| link limit at $RATE | $LINK | $(MBS "$LINK") |"
	echo
	echo "Runs (s): scp ${scp_t[*]}; wtctl ${wt_t[*]}; wtctl ×$HOSTS ${par_t[*]}."
	echo
	echo "Notes:"
	echo "- The lab kernel has no netem qdisc, so links are shaped by rate only; \`lab up --delay\` says so instead of"
	echo "  pretending. Upload keeps $((64 * 32)) KiB of SFTP writes in flight, which covers a 1 Gbit/s link up to ~16 ms RTT."
	echo "- The $HOSTS lab hosts share this machine's $(nproc) cores with the jump host: each stream is encrypted here and"
	echo "  decrypted and written there, so the parallel ratio shows the CPU limit of one small machine, not of the"
	echo "  links. On separate servers each host has its own CPU and link."
} >"$section"

mkdir -p "$(dirname "$DOC")"
if [[ -f "$DOC" ]] && grep -qF "$MARK" "$DOC"; then
	awk -v m="$MARK" 'index($0, m) == 1 { exit } { print }' "$DOC" >"$WORK/doc"
else
	: >"$WORK/doc"
	if [[ -f "$DOC" ]]; then
		cat "$DOC" >"$WORK/doc"
		echo >>"$WORK/doc"
	fi
fi
cat "$WORK/doc" "$section" >"$DOC"
log "wrote the upload section of $DOC"
grep '^| upload\|^| link\|^| parallel' "$section" >&2
