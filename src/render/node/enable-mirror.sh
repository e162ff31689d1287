#!/bin/sh
# capi-registry-addon: make this node's containerd use the in-cluster registry as its first mirror.
# Runs from kubeadm's preKubeadmCommands, before the kubelet pulls anything. It:
#   1. points the CRI at a hosts directory (config_path) in the section this containerd reads
#      (config version 2, 3, 4, or none), editing one line of config.toml and nothing else;
#   2. puts the mirror first in every hosts.toml containerd will read there (_default and per-registry
#      directories), keeping whatever else those files say;
#   3. makes connections to the mirror's Service IPs fail at once until kube-proxy (or a CNI's service
#      load balancer) serves it, so early pulls fall back upstream without waiting for a dial timeout.
# It never leaves containerd a config it refuses: when it cannot edit safely it changes nothing, says
# why on stderr and in the journal, and writes the reason to the status file. It always exits 0, even
# when a step fails (a read-only or immutable directory, a full disk): a node without the mirror still
# joins, also under a runner that stops at the first failing command. Its temporary files are 0600 (one
# holds the node's Basic auth header) and removed on every path; config.toml keeps its mode and owner.
# A second run changes nothing and restarts nothing.
#
# `report`, from postKubeadmCommands once the node has joined, puts the status file's state on this
# node's Node object (see report below).
#
# Usage: enable-mirror.sh [--config FILE] [--certs-dir DIR] [--no-restart] [--fast-fail-seconds N]
#        enable-mirror.sh report [--kubeconfig FILE]
set -eu
umask 077

# Whatever fails ends here: temporary files go, the status file says which step failed, and the exit
# status is 0 so the node still joins.
STEP="reading the arguments"
TEMPS=
MODE=enable
STATUS=
# shellcheck disable=SC2317 # reached through the EXIT trap
on_exit() {
  rc=$?
  trap - EXIT
  set +eu
  # shellcheck disable=SC2086 # a list of paths without blanks (ours)
  [ -z "$TEMPS" ] || rm -f $TEMPS 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    say "failed while $STEP (exit $rc)"
    if [ "${CHANGED:-no}" = yes ]; then kept="$CONFIG was changed: restart containerd once the cause is fixed"; else kept="containerd keeps the configuration it had"; fi
    [ "$MODE" != enable ] || [ -z "$STATUS" ] || write_status not-enabled "failed while $STEP (exit $rc): $kept; see the journal (capi-registry-addon)"
  fi
  exit 0
}
trap on_exit EXIT

ADDON_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
CONFIG=/etc/containerd/config.toml
CERTS_D=/etc/containerd/certs.d
RESTART=yes
FAST_FAIL_SECONDS=600
KUBELET_KUBECONFIG=/etc/kubernetes/kubelet.conf
while [ $# -gt 0 ]; do
  case $1 in
    report) MODE=report; shift ;;
    --kubeconfig) KUBELET_KUBECONFIG=${2:-}; shift 2 ;;
    --config) CONFIG=${2:-}; shift 2 ;;
    --certs-dir) CERTS_D=${2:-}; shift 2 ;;
    --no-restart) RESTART=no; shift ;;
    --fast-fail-seconds) FAST_FAIL_SECONDS=${2:-}; shift 2 ;;
    *) echo "usage: $0 [--config FILE] [--certs-dir DIR] [--no-restart] [--fast-fail-seconds N] | $0 report [--kubeconfig FILE]" >&2; exit 0 ;;
  esac
done
OUR_HOSTS=$ADDON_DIR/hosts.toml
STATUS=$ADDON_DIR/status
BEGIN_MARK='# BEGIN capi-registry-addon mirror (managed: rewritten on every run)'
END_MARK='# END capi-registry-addon mirror'

say() {
  echo "capi-registry-addon: $*" >&2
  logger -t capi-registry-addon -- "$*" 2>/dev/null || true
}

# report: copies the status file's state onto this node's Node object (annotations
# capi-registry-addon.io/mirror and .../mirror-reason), with the kubelet's own credential: the API server's
# Node authorizer lets it change its own Node and no other. `capi-registry-addon status` reads them.
# Needs kubectl (node images built for kubeadm carry it); never fails the boot.
report() {
  if [ ! -r "$STATUS" ]; then say "report: no $STATUS (the enable step did not run)"; return 0; fi
  if ! command -v kubectl >/dev/null 2>&1; then say "report: no kubectl on this node: the mirror state stays in $STATUS"; return 0; fi
  state=$(sed -n 's/^state=//p' "$STATUS")
  reason=$(sed -n 's/^reason=//p' "$STATUS" | cut -c1-300)
  tries=0
  while [ "$tries" -lt 6 ]; do
    tries=$((tries + 1))
    # The kubelet's user is system:node:<its Node's name>, whatever the hostname says.
    user=$(kubectl --kubeconfig "$KUBELET_KUBECONFIG" --request-timeout=5s auth whoami -o jsonpath='{.status.userInfo.username}' 2>/dev/null || true)
    node=${user#system:node:}
    if [ -n "$user" ] && [ "$node" != "$user" ] && kubectl --kubeconfig "$KUBELET_KUBECONFIG" --request-timeout=5s annotate --overwrite node "$node" \
      "capi-registry-addon.io/mirror=$state" "capi-registry-addon.io/mirror-reason=$reason" >/dev/null 2>&1; then
      say "report: Node $node annotated mirror=$state"
      return 0
    fi
    sleep 5
  done
  say "report: could not annotate this node's Node with $KUBELET_KUBECONFIG: the mirror state stays in $STATUS"
  return 0
}

if [ "$MODE" = report ]; then
  STEP=reporting
  report || true
  exit 0
fi

STEP="checking the node"

# temp PATH: remember PATH for removal on every exit path.
temp() { TEMPS="$TEMPS $1"; }
# A crashed earlier run's block file would hold the node's credential world-readable: gone.
rm -f "$ADDON_DIR"/.block.* "$ADDON_DIR"/.addrs.* 2>/dev/null || true

VERSION=unknown
CONFIG_PATH=unchanged
HOSTS_DIRS=
FAST_FAIL=none
SKIPPED=

# write_status STATE REASON: the marker the extension and operators read (key=value lines).
write_status() {
  tmp="$STATUS.tmp.$$"
  temp "$tmp"
  if ! {
    echo "state=$1"
    echo "reason=$2"
    echo "containerd=$VERSION"
    echo "config=$CONFIG"
    echo "config_path=$CONFIG_PATH"
    echo "hosts_dirs=$HOSTS_DIRS"
    echo "fast_fail=$FAST_FAIL"
    echo "left_alone=$SKIPPED"
    echo "time=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } > "$tmp" 2>/dev/null || ! mv -f "$tmp" "$STATUS" 2>/dev/null; then
    rm -f "$tmp" 2>/dev/null || true
    say "could not write $STATUS"
  fi
  say "mirror $1: $2"
}

# replace FILE TMP: moves TMP over FILE when they differ (atomic, same directory); 0 when FILE changed,
# 1 when it already said that. A move that fails ends the run (through on_exit), never silently.
replace() {
  if [ -f "$1" ] && cmp -s "$1" "$2"; then
    rm -f "$2"
    return 1
  fi
  mv -f "$2" "$1" || exit 1
}

if [ ! -s "$OUR_HOSTS" ]; then
  write_status not-enabled "$OUR_HOSTS is missing: the node's bootstrap files were not written"
  exit 0
fi
if ! command -v containerd >/dev/null 2>&1; then
  write_status not-enabled "no containerd binary on PATH: cannot tell which config format it reads, nothing changed"
  exit 0
fi
VERSION=$(containerd --version 2>/dev/null | sed -n 's/.* v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
MAJOR=${VERSION%%.*}
MINOR=${VERSION#*.}
MINOR=${MINOR%%.*}
if [ -z "$VERSION" ]; then
  VERSION=unknown
  write_status not-enabled "containerd --version did not say its version: nothing changed"
  exit 0
fi

if [ ! -s "$CONFIG" ]; then
  STEP="writing containerd's default configuration to $CONFIG"
  (umask 022 && mkdir -p "$(dirname "$CONFIG")")
  temp "$CONFIG.capi-registry-addon.new"
  containerd config default > "$CONFIG.capi-registry-addon.new"
  chmod 0644 "$CONFIG.capi-registry-addon.new"
  mv -f "$CONFIG.capi-registry-addon.new" "$CONFIG"
fi

# The CRI registry section this containerd reads. A file without `version` is version 1 to containerd
# 1.x (plugin names without the io.containerd prefix) and is read as the current format by 2.x.
DECLARED=$(awk '/^[[:space:]]*\[/ { exit } /^[[:space:]]*version[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]#].*$/, "", v); print v; exit }' "$CONFIG")
case "$DECLARED" in
  2) SECTION='plugins."io.containerd.grpc.v1.cri".registry' ;;
  '') if [ "$MAJOR" -lt 2 ]; then SECTION='plugins.cri.registry'; else SECTION='plugins."io.containerd.cri.v1.images".registry'; fi ;;
  *[!0-9]*)
    write_status not-enabled "$CONFIG has version = $DECLARED, which is not a number: nothing changed"
    exit 0 ;;
  *) SECTION='plugins."io.containerd.cri.v1.images".registry' ;;
esac
IMAGES=${SECTION%.registry}
# containerd >= 2.1 pulls through the transfer service, which reads config_path as ONE directory.
SPLITS_LISTS=yes
if [ "$MAJOR" -gt 2 ] || { [ "$MAJOR" -eq 2 ] && [ "$MINOR" -ge 1 ]; }; then SPLITS_LISTS=no; fi

STEP="editing a copy of $CONFIG"
EDITED="$CONFIG.capi-registry-addon.edited"
NEW_CONFIG="$CONFIG.capi-registry-addon.new"
DECISION="$CONFIG.capi-registry-addon.decision"
temp "$EDITED"
temp "$NEW_CONFIG"
temp "$DECISION"
# Two passes over the file: the first learns where things are, the second writes the edited copy.
awk -v section="$SECTION" -v images="$IMAGES" -v ours="$CERTS_D" -v splits="$SPLITS_LISTS" -v decision="$DECISION" '
  # A table header or key path without blanks, comments or quotes: comparable whatever its spelling.
  function norm(s,   out, i, c, q) {
    out = ""; q = ""
    for (i = 1; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (q == "" && c == "#") break
      if (c == "\"" || c == "\047") { q = (q == c) ? "" : (q == "" ? c : q); continue }
      if (q == "" && (c == " " || c == "\t")) continue
      out = out c
    }
    return out
  }
  function strip(v) {
    sub(/^[^=]*=[ \t]*/, "", v)
    if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) }
    else if (v ~ /^\047/) { sub(/^\047/, "", v); sub(/\047.*$/, "", v) }
    else { sub(/[ \t#].*$/, "", v) }
    return v
  }
  function starts(s, p) { return substr(s, 1, length(p)) == p }
  BEGIN { sec = norm(section); img = norm(images); table = "" }
  NR == FNR {
    if ($0 ~ /^[ \t]*\[\[/) { table = "[[" norm($0); next }   # array of tables: never ours
    if ($0 ~ /^[ \t]*\[/) {
      h = norm($0); table = substr(h, 2, length(h) - 2)
      if (table == sec) { hasSection = 1; sectionLine = FNR }
      if (table == img) imagesLine = FNR
      # Empty [..registry.mirrors] tables (1.x `config default` writes them) set nothing; an entry below them does.
      if (starts(table, sec ".mirrors.") || starts(table, sec ".configs.") || starts(table, sec ".auths.")) legacy = legacy " [" table "]"
      next
    }
    if ($0 !~ /^[ \t]*[^ \t#=][^=]*=/) next
    k = $0; sub(/=.*$/, "", k); k = norm(k)
    full = (table == "" ? k : table "." k)
    if (starts(full, sec ".mirrors.") || starts(full, sec ".configs.") || starts(full, sec ".auths.")) legacy = legacy " " full
    if (full == sec ".config_path") { pathLine = FNR; pathValue = strip($0) }
    else if (starts(full, sec ".") && table != sec) dotted = full
    if (full == img ".use_local_image_pull") { localLine = FNR; localValue = strip($0) }
    next
  }
  FNR == 1 {
    # Decide once, between the passes.
    if (legacy != "") { print "legacy registry mirrors/configs/auths are set (" substr(legacy, 2) "): containerd 1.6/1.7 refuse config_path beside them (the CRI plugin would not load), so config_path is not set; move them to hosts.toml files" > decision; exit 3 }
    if (!pathLine && dotted != "") { print "the registry table is written with dotted keys (" dotted "): adding config_path safely is not possible here; set " section ".config_path by hand" > decision; exit 3 }
    value = pathValue
    if (value == "" || value == ours || value == "/etc/containerd/certs.d:/etc/docker/certs.d") value = ours
    else if (value !~ /:/) { }                        # a custom directory of its own: kept, the mirror goes there
    else {
      n = split(value, parts, ":"); found = 0
      for (i = 1; i <= n; i++) if (parts[i] == ours) found = 1
      if (!found) value = value ":" ours
      if (splits == "no" && localValue != "true") needLocal = 1
    }
    print "ok " value > decision
  }
  {
    if (FNR == pathLine) {
      if (value != pathValue) { ind = $0; sub(/[^ \t].*$/, "", ind); k = $0; sub(/[ \t]*=.*$/, "", k); sub(/^[ \t]*/, "", k); print ind k " = \"" value "\"" } else print
      next
    }
    if (needLocal && FNR == localLine) { ind = $0; sub(/[^ \t].*$/, "", ind); print ind "use_local_image_pull = true"; wroteLocal = 1; next }
    print
    if (FNR == sectionLine && !pathLine) { ind = $0; sub(/[^ \t].*$/, "", ind); print ind "  config_path = \"" value "\"" }
    if (needLocal && !localLine && FNR == imagesLine) { ind = $0; sub(/[^ \t].*$/, "", ind); print ind "  use_local_image_pull = true"; wroteLocal = 1 }
  }
  END {
    if (!hasSection && !pathLine) { print ""; print "[" section "]"; print "  config_path = \"" value "\"" }
    if (needLocal && !wroteLocal) { print ""; print "[" images "]"; print "  use_local_image_pull = true" }
  }
' "$CONFIG" "$CONFIG" > "$EDITED" || {
  reason=$(cat "$DECISION" 2>/dev/null || true)
  [ -n "$reason" ] || reason="the config could not be read or the edited copy not written (a full disk?): nothing changed"
  write_status not-enabled "$CONFIG: $reason"
  exit 0
}
CONFIG_PATH=$(sed -n 's/^ok //p' "$DECISION")
rm -f "$DECISION"

CHANGED=no
EDIT=no
if ! cmp -s "$CONFIG" "$EDITED"; then
  # containerd itself must accept the edited file and read our config_path from it.
  if ! DUMP=$(containerd --config "$EDITED" config dump 2>/dev/null); then
    write_status not-enabled "containerd $VERSION refuses the edited $CONFIG (config dump failed): nothing changed"
    exit 0
  fi
  if ! printf '%s\n' "$DUMP" | grep -q "config_path = [\"']${CONFIG_PATH}[\"']"; then
    write_status not-enabled "containerd $VERSION does not read config_path from the section written ($SECTION): nothing changed"
    exit 0
  fi
  EDIT=yes
fi

# Our host tables (everything from the first table header of our hosts.toml), to put first in a file.
STEP="writing the mirror's hosts.toml files"
BLOCK="$ADDON_DIR/.block.$$"
temp "$BLOCK"
awk -v b="$BEGIN_MARK" -v e="$END_MARK" 'BEGIN { print b } /^[ \t]*\[/ { on = 1 } on { print } END { print e }' "$OUR_HOSTS" > "$BLOCK"

# merge FILE: FILE with our block first among its tables; its own keys and tables kept as they are.
merge() {
  tmp="$1.capi-registry-addon.$$"
  temp "$tmp"
  if [ -f "$1" ]; then
    awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v blockfile="$BLOCK" '
      function block(   line) { while ((getline line < blockfile) > 0) print line }
      # Our previous block goes, with the blank line we put after it: the result is the same each run.
      $0 == b { skip = 1; next }
      skip { if ($0 == e) { skip = 0; after = 1 } next }
      after { after = 0; if ($0 == "") next }
      !done && /^[ \t]*\[/ { block(); print ""; done = 1 }
      { print; printed++; last = $0 }
      END { if (!done) { if (printed && last != "") print ""; block() } }
    ' "$1" > "$tmp"
  else
    cp "$BLOCK" "$tmp"
  fi
  chmod 0600 "$tmp"
  replace "$1" "$tmp" || true
}

OLD_IFS=$IFS
IFS=:
# shellcheck disable=SC2086 # split on ':' on purpose
set -- $CONFIG_PATH
IFS=$OLD_IFS
have_default=no
for dir in "$@"; do
  [ -n "$dir" ] || continue
  HOSTS_DIRS="$HOSTS_DIRS${HOSTS_DIRS:+:}$dir"
  [ -f "$dir/_default/hosts.toml" ] && have_default=yes
done
if [ "$have_default" = no ]; then
  # The first directory containerd reads gets _default (ours, or the operator's own single directory).
  first=${CONFIG_PATH%%:*}
  (umask 022 && mkdir -p "$first/_default")
  merge "$first/_default/hosts.toml"
fi
for dir in "$@"; do
  [ -d "$dir" ] || continue
  for host in "$dir"/*; do
    [ -d "$host" ] || continue
    if [ -f "$host/hosts.toml" ]; then
      merge "$host/hosts.toml"
    else
      # Docker-style certificate directory: a hosts.toml here would replace how containerd reads it.
      SKIPPED="$SKIPPED${SKIPPED:+ }$host"
    fi
  done
done
rm -f "$BLOCK"

# config.toml last: a step above that fails leaves containerd exactly as it was.
if [ "$EDIT" = yes ]; then
  STEP="replacing $CONFIG"
  [ -e "$CONFIG.capi-registry-addon.orig" ] || cp -p "$CONFIG" "$CONFIG.capi-registry-addon.orig"
  # The new file starts as a copy of the old one (mode, owner, times), then takes the edited text,
  # and moves over it in one step: never a half-written config, never a different mode.
  cp -p "$CONFIG" "$NEW_CONFIG"
  cat "$EDITED" > "$NEW_CONFIG"
  replace "$CONFIG" "$NEW_CONFIG" && CHANGED=yes
fi

# Until kube-proxy serves the Service IP, its packets go nowhere and every pull would first wait for a
# dial timeout (30 s on 1.6/1.7, which ignore dial_timeout). Reject them at once instead. Locally
# generated packets pass the nat table (kube-proxy's DNAT) before the filter table, so once the Service
# is served this rule no longer matches; IPVS binds Service IPs locally, which the addrtype match skips.
# Where Services are translated after netfilter's OUTPUT (OVN-Kubernetes, Antrea with proxyAll) the
# packet still carries the Service IP here, so the rule would refuse the mirror for good: it therefore
# ends by itself (the kernel's clock, `-m time --datestop`) FAST_FAIL_SECONDS after this run, long
# enough for a node's boot-time pulls. A kernel without the time match gets no rule at all (pulls then
# wait for a dial timeout until the Service is served), never one that does not end.
# Every mirror address of ours (the writer, then the standby Service) gets the rule; a rule of ours
# already there (a second run in the same boot) is kept as it is.
STEP="adding the fast-fail rule"
case $FAST_FAIL_SECONDS in ''|*[!0-9]*) FAST_FAIL_SECONDS=600 ;; esac
[ "$FAST_FAIL_SECONDS" -le 3600 ] || FAST_FAIL_SECONDS=3600
UNTIL=$(date -u -d "@$(( $(date -u +%s) + FAST_FAIL_SECONDS ))" +%Y-%m-%dT%H:%M:%S 2>/dev/null || true)
ADDRS=$(sed -n 's/^[[:space:]]*\[host\."https:\/\/\([^"]*\)\/v2"\].*/\1/p' "$OUR_HOSTS")
for ADDR in $ADDRS; do
  case $ADDR in
    \[*) IP=${ADDR#\[}; IP=${IP%%\]*}; PORT=${ADDR##*:}; TOOL=ip6tables; PREFIX=128 ;;
    *) IP=${ADDR%%:*}; PORT=${ADDR##*:}; TOOL=iptables; PREFIX=32 ;;
  esac
  if [ "$FAST_FAIL_SECONDS" -eq 0 ] || [ -z "$UNTIL" ]; then break; fi
  command -v "$TOOL" >/dev/null 2>&1 || continue
  EXISTING=$("$TOOL" -w 5 -S OUTPUT 2>/dev/null | grep -F -- "-d $IP/$PREFIX " | grep -F -- '--comment capi-registry-addon-fast-fail' | sed -n 's/.*--datestop \([0-9T:-]*\).*/\1/p' | head -n 1 || true)
  if [ -n "$EXISTING" ]; then FAST_FAIL="$TOOL until ${EXISTING}Z"; continue; fi
  if "$TOOL" -w 5 -I OUTPUT 1 -p tcp -d "$IP" --dport "$PORT" -m addrtype ! --dst-type LOCAL -m time --datestop "$UNTIL" \
    -m comment --comment capi-registry-addon-fast-fail -j REJECT --reject-with tcp-reset 2>/dev/null; then
    FAST_FAIL="$TOOL until ${UNTIL}Z"
  fi
done

if [ "$CHANGED" = yes ]; then
  if [ "$RESTART" = yes ] && command -v systemctl >/dev/null 2>&1; then
    systemctl restart containerd || say "systemctl restart containerd failed: restart it to use the mirror"
  elif [ "$RESTART" = yes ]; then
    say "$CONFIG changed and there is no systemctl: restart containerd to use the mirror"
  fi
fi
case $FAST_FAIL in
  none) FAST_FAIL_SAYS="" ;;
  *) FAST_FAIL_SAYS="; connections to the mirror not yet served by kube-proxy are refused at once until ${FAST_FAIL##* }" ;;
esac
write_status enabled "containerd $VERSION reads $CONFIG_PATH ($SECTION); config.toml changed: $CHANGED$FAST_FAIL_SAYS"
exit 0
