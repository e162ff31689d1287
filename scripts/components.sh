#!/usr/bin/env bash
# Brings every real component the integration tests run, from package registries only:
#   Go module proxy: kube-apiserver, kube-controller-manager and kubectl (k8s.io/kubernetes), etcd,
#                    for the real-node suite a second Kubernetes (API server, controller manager, scheduler,
#                    kubelet, kube-proxy, kubectl, the pause program), CNI plugins, CoreDNS and CAPI's kubeadm bootstrap provider, Distribution v3, regbot, regctl, zlint, helm, CAAPH, clusterctl,
#                    containerd 1.7, 2.0, 2.1, 2.2, 2.3, 2.4 (CRI included), crictl, and the
#                    module sources that carry the CRDs of CAPI, CAAPH and cert-manager;
#   Debian:          containerd 1.6, docker-registry (Distribution 2.8), openssl, shellcheck, iptables,
#                    busybox-static (the shell of the registry image the real-node suite builds), gcc's libc.a (pause).
# Built binaries are cached per machine under $COMPONENTS_CACHE/bin/<name>-<version>, so a second run
# (even from a fresh clone) builds nothing. Writes $COMPONENTS_CACHE/components.json for the harness.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.6}
DISTRIBUTION_VERSION=${DISTRIBUTION_VERSION:-v3.1.2}
REGCLIENT_VERSION=${REGCLIENT_VERSION:-v0.11.7}
CAPI_VERSION=${CAPI_VERSION:-v1.12.5}
# The CAPI core managers the real-CAPI suite runs: the current release (v1.14 moved its main package to
# core/ and its API types to the module sigs.k8s.io/cluster-api/api) and CAPI_VERSION above.
CAPI14_VERSION=${CAPI14_VERSION:-v1.14.2}
CAAPH_VERSION=${CAAPH_VERSION:-v0.6.4}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.19.4}
ZLINT_VERSION=${ZLINT_VERSION:-v3.7.3}
# The containerd matrix the node tests pull through (CRI + crictl): every line a CAPI user runs today.
# 1.6 is Debian's package; the rest are built from the Go module proxy. 2.2.1 is the last release whose
# `config default` writes the colon-separated config_path list.
CONTAINERD_MATRIX=${CONTAINERD_MATRIX:-"v1.7.35 v2.0.14 v2.1.9 v2.2.1 v2.2.9 v2.3.7 v2.4.2"}
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
HELM_VERSION=${HELM_VERSION:-v3.20.2}
# The real-node suite's workload cluster and kubelets: the newest Kubernetes the Go module proxy serves.
NODE_KUBE_VERSION=${NODE_KUBE_VERSION:-v1.37.2}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.10.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
LOCAL_PATH_PROVISIONER_VERSION=${LOCAL_PATH_PROVISIONER_VERSION:-v0.0.30}

CACHE=${COMPONENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capi-registry-addon}
BIN=$CACHE/bin
mkdir -p "$BIN" "$CACHE/mod"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 GOPROXY=${GOPROXY:-https://proxy.golang.org}
command -v go >/dev/null || { echo "components: Go is not installed; it is needed to build kube-apiserver, etcd, Distribution and regbot" >&2; exit 1; }

log() { echo "components: $*" >&2; }

# go_build NAME VERSION MODULE PACKAGE [LDFLAGS] [TAGS] [EXTRA_MODULE]: builds PACKAGE from MODULE@VERSION
# (and EXTRA_MODULE@VERSION, for a main package whose API types live in a module of their own) in a scratch module.
go_build() {
  local name=$1 version=$2 module=$3 package=$4 ldflags=${5:-} tags=${6:-} extra=${7:-}
  local out=$BIN/$name-$version
  [ -x "$out" ] && return 0
  log "building $name $version from $module (first run only)"
  local dir=$CACHE/mod/$name-$version
  mkdir -p "$dir"
  (
    cd "$dir"
    [ -f go.mod ] || go mod init "scratch/$name" >/dev/null 2>&1
    go mod edit -require="$module@$version"
    [ -z "$extra" ] || go mod edit -require="$extra@$version"
    if [ "$module" = k8s.io/kubernetes ]; then
      # k8s.io/kubernetes points its staging repos at ./staging; a consumer pins each to v0.Y.Z.
      local gomod staging=v0.${version#v1.}
      gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | while read -r repo; do
        go mod edit -replace="$repo=$repo@$staging"
      done
    fi
    printf 'package main\n\nimport _ "%s"\n\nfunc main() {}\n' "$package" > tools.go
    go mod tidy >/dev/null 2>&1 || go mod download all
    go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp" "$package"
    mv "$out.tmp" "$out"
  )
}

# module_dir MODULE VERSION: downloads a module's source and prints its directory.
module_dir() {
  go mod download -json "$1@$2" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

kube_ldflags_of() { echo "-X k8s.io/component-base/version.gitVersion=$1 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "${1#v1.}" | cut -d. -f1)"; }
kube_ldflags=$(kube_ldflags_of "$KUBE_VERSION")
go_build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
go_build kube-apiserver "$KUBE_VERSION" k8s.io/kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
# The StatefulSet, PV binder, PVC protection and garbage collector controllers (claims deleted with their StatefulSet).
go_build kube-controller-manager "$KUBE_VERSION" k8s.io/kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
# kubectl, as node images carry it: the node script reports the mirror's state on its Node with the kubelet's credential.
go_build kubectl "$KUBE_VERSION" k8s.io/kubernetes k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
go_build registry "$DISTRIBUTION_VERSION" github.com/distribution/distribution/v3 github.com/distribution/distribution/v3/cmd/registry \
  "-X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION"
go_build regbot "$REGCLIENT_VERSION" github.com/regclient/regclient github.com/regclient/regclient/cmd/regbot
# regctl, regbot's sibling: the copy-throughput baseline the sources and seed figures are measured against.
go_build regctl "$REGCLIENT_VERSION" github.com/regclient/regclient github.com/regclient/regclient/cmd/regctl
go_build zlint "$ZLINT_VERSION" github.com/zmap/zlint/v3 github.com/zmap/zlint/v3/cmd/zlint
# Helm: the client CAAPH embeds (v0.6.4 links Helm v3.20.2), to pull our chart over OCI and template it.
go_build helm "$HELM_VERSION" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm
# CAAPH itself (its main package is the module root), run against the management API server.
go_build caaph "$CAAPH_VERSION" sigs.k8s.io/cluster-api-addon-provider-helm sigs.k8s.io/cluster-api-addon-provider-helm
# containerd: the matrix, CRI plugin included (no cgo: btrfs, devmapper and zfs snapshotters left out).
for v in $CONTAINERD_MATRIX; do
  case $v in
    v1.*) go_build containerd "$v" github.com/containerd/containerd github.com/containerd/containerd/cmd/containerd "" "no_btrfs no_devmapper no_zfs" ;;
    *) go_build containerd "$v" github.com/containerd/containerd/v2 github.com/containerd/containerd/v2/cmd/containerd "" "no_btrfs no_devmapper no_zfs" ;;
  esac
done
go_build capi-manager "$CAPI14_VERSION" sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api/core "" "" sigs.k8s.io/cluster-api/api
# ... and the maintained release before it, whose main package is the module root (it sends v1beta1 Clusters).
go_build capi-manager "$CAPI_VERSION" sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api
# clusterctl: how CAPI users install providers; the clusterctl test installs, upgrades and deletes the extension with it.
capi_ldflags="-X sigs.k8s.io/cluster-api/version.gitVersion=$CAPI14_VERSION -X sigs.k8s.io/cluster-api/version.gitMajor=1 -X sigs.k8s.io/cluster-api/version.gitMinor=$(echo "${CAPI14_VERSION#v1.}" | cut -d. -f1)"
go_build clusterctl "$CAPI14_VERSION" sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api/cmd/clusterctl "$capi_ldflags" "" sigs.k8s.io/cluster-api/api
# crictl: the kubelet's door into containerd (CRI over the socket), for the node pull tests.
go_build crictl "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools sigs.k8s.io/cri-tools/cmd/crictl

# The real-node suite: CAPI's kubeadm bootstrap provider (CABPK) of the core manager's release renders each
# Machine's cloud-init; the workload cluster and its nodes run NODE_KUBE_VERSION.
go_build capi-kubeadm-bootstrap "$CAPI14_VERSION" sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api/bootstrap/kubeadm "" "" sigs.k8s.io/cluster-api/api
node_ldflags=$(kube_ldflags_of "$NODE_KUBE_VERSION")
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  go_build "$cmd" "$NODE_KUBE_VERSION" k8s.io/kubernetes "k8s.io/kubernetes/cmd/$cmd" "$node_ldflags"
done
for plugin in bridge host-local loopback portmap; do
  case $plugin in host-local) dir=ipam ;; portmap) dir=meta ;; *) dir=main ;; esac
  go_build "cni-$plugin" "$CNI_PLUGINS_VERSION" github.com/containernetworking/plugins "github.com/containernetworking/plugins/plugins/$dir/$plugin"
done
# containerd's runc shim of the worker node's line (Debian's containerd 1.6 package carries its own).
NODE_CONTAINERD_VERSION=${CONTAINERD_MATRIX##* }
go_build containerd-shim-runc-v2 "$NODE_CONTAINERD_VERSION" github.com/containerd/containerd/v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 "" "no_btrfs no_devmapper no_zfs"
go_build coredns "$COREDNS_VERSION" github.com/coredns/coredns github.com/coredns/coredns
# A real volume provisioner for the nodes (k3s's default): local volumes, whose ownership the kubelet sets from fsGroup.
go_build local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" github.com/rancher/local-path-provisioner github.com/rancher/local-path-provisioner
# The sandbox ("pause") program, from the Kubernetes module's own C source, built as its Makefile builds it.
pause_src=$(module_dir k8s.io/kubernetes "$NODE_KUBE_VERSION")/build/pause
pause_tag=$(sed -n 's/^TAG ?= //p' "$pause_src/Makefile")
if [ ! -x "$BIN/pause-$pause_tag" ]; then
  log "building pause $pause_tag from k8s.io/kubernetes $NODE_KUBE_VERSION"
  gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-capi-registry-addon" -o "$BIN/pause-$pause_tag.tmp" "$pause_src/linux/pause.c"
  mv "$BIN/pause-$pause_tag.tmp" "$BIN/pause-$pause_tag"
fi

capi=$(module_dir sigs.k8s.io/cluster-api "$CAPI_VERSION")
capi14=$(module_dir sigs.k8s.io/cluster-api "$CAPI14_VERSION")
caaph=$(module_dir sigs.k8s.io/cluster-api-addon-provider-helm "$CAAPH_VERSION")
certmanager=$(module_dir github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION")

# Debian packages: containerd 1.6 and runc (run privately by the tests; runc runs the image), Distribution 2.8, openssl, shellcheck (the node
# script is checked in npm test) and iptables (the node script's fast-fail rule, in test network namespaces).
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v openssl >/dev/null || missing+=(openssl)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v iptables >/dev/null || missing+=(iptables)
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"; exit 1
  fi
fi

# Bun hands its certificate over between two SO_REUSEPORT listeners; this per-network-namespace
# sysctl makes that lossless (README, "Runtimes"). The certificate-reload test asserts it.
if [ "$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null)" = 0 ]; then
  sysctl -qw net.ipv4.tcp_migrate_req=1 2>/dev/null || log "could not set net.ipv4.tcp_migrate_req=1 (needs root)"
fi

cat > "$CACHE/components.json" <<JSON
{
  "kubeApiserver": {"version": "$KUBE_VERSION", "path": "$BIN/kube-apiserver-$KUBE_VERSION"},
  "etcd": {"version": "$ETCD_VERSION", "path": "$BIN/etcd-$ETCD_VERSION"},
  "kubeControllerManager": {"version": "$KUBE_VERSION", "path": "$BIN/kube-controller-manager-$KUBE_VERSION"},
  "kubectl": {"version": "$KUBE_VERSION", "path": "$BIN/kubectl-$KUBE_VERSION"},
  "registry": {"version": "$DISTRIBUTION_VERSION", "path": "$BIN/registry-$DISTRIBUTION_VERSION"},
  "regbot": {"version": "$REGCLIENT_VERSION", "path": "$BIN/regbot-$REGCLIENT_VERSION"},
  "regctl": {"version": "$REGCLIENT_VERSION", "path": "$BIN/regctl-$REGCLIENT_VERSION"},
  "zlint": {"version": "$ZLINT_VERSION", "path": "$BIN/zlint-$ZLINT_VERSION"},
  "helm": {"version": "$HELM_VERSION", "path": "$BIN/helm-$HELM_VERSION"},
  "caaph": {"version": "$CAAPH_VERSION", "path": "$BIN/caaph-$CAAPH_VERSION"},
  "containerd": {"version": "$(containerd --version | awk '{print $3}')", "path": "$(command -v containerd)", "ctr": "$(command -v ctr)"},
  "registry2": {"version": "$(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null)", "path": "$(command -v docker-registry)"},
  "containerdMatrix": [
    {"version": "$(containerd --version | awk '{print $3}' | sed 's/~.*//')", "path": "$(command -v containerd)"},
$(for v in $CONTAINERD_MATRIX; do printf '    {"version": "%s", "path": "%s"},\n' "$v" "$BIN/containerd-$v"; done | sed '$ s/,$//')
  ],
  "clusterctl": {"version": "$CAPI14_VERSION", "path": "$BIN/clusterctl-$CAPI14_VERSION", "metadata": "$capi14/metadata.yaml"},
  "crictl": {"version": "$CRI_TOOLS_VERSION", "path": "$BIN/crictl-$CRI_TOOLS_VERSION"},
  "capiManagers": [
    {"version": "$CAPI14_VERSION", "path": "$BIN/capi-manager-$CAPI14_VERSION",
     "crds": ["$capi14/core/config/crd/bases", "$capi14/bootstrap/kubeadm/config/crd/bases", "$capi14/controlplane/kubeadm/config/crd/bases"]},
    {"version": "$CAPI_VERSION", "path": "$BIN/capi-manager-$CAPI_VERSION",
     "crds": ["$capi/config/crd/bases", "$capi/bootstrap/kubeadm/config/crd/bases", "$capi/controlplane/kubeadm/config/crd/bases"]}
  ],
  "nodeKube": {"version": "$NODE_KUBE_VERSION",
    "kubeApiserver": "$BIN/kube-apiserver-$NODE_KUBE_VERSION", "kubeControllerManager": "$BIN/kube-controller-manager-$NODE_KUBE_VERSION",
    "kubeScheduler": "$BIN/kube-scheduler-$NODE_KUBE_VERSION", "kubelet": "$BIN/kubelet-$NODE_KUBE_VERSION",
    "kubeProxy": "$BIN/kube-proxy-$NODE_KUBE_VERSION", "kubectl": "$BIN/kubectl-$NODE_KUBE_VERSION",
    "pause": {"tag": "$pause_tag", "path": "$BIN/pause-$pause_tag"}},
  "cniPlugins": {"version": "$CNI_PLUGINS_VERSION", "bridge": "$BIN/cni-bridge-$CNI_PLUGINS_VERSION", "host-local": "$BIN/cni-host-local-$CNI_PLUGINS_VERSION",
    "loopback": "$BIN/cni-loopback-$CNI_PLUGINS_VERSION", "portmap": "$BIN/cni-portmap-$CNI_PLUGINS_VERSION"},
  "containerdShim": {"version": "$NODE_CONTAINERD_VERSION", "path": "$BIN/containerd-shim-runc-v2-$NODE_CONTAINERD_VERSION", "debian": "$(command -v containerd-shim-runc-v2)"},
  "coredns": {"version": "$COREDNS_VERSION", "path": "$BIN/coredns-$COREDNS_VERSION"},
  "localPathProvisioner": {"version": "$LOCAL_PATH_PROVISIONER_VERSION", "path": "$BIN/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION"},
  "capiKubeadmBootstrap": {"version": "$CAPI14_VERSION", "path": "$BIN/capi-kubeadm-bootstrap-$CAPI14_VERSION"},
  "busybox": {"version": "$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null)", "path": "/bin/busybox"},
  "crds": {
    "capi": {"version": "$CAPI_VERSION", "dirs": ["$capi/config/crd/bases", "$capi/bootstrap/kubeadm/config/crd/bases", "$capi/controlplane/kubeadm/config/crd/bases"]},
    "caaph": {"version": "$CAAPH_VERSION", "dirs": ["$caaph/config/crd/bases"]},
    "certManager": {"version": "$CERT_MANAGER_VERSION", "dirs": ["$certmanager/deploy/crds"]}
  }
}
JSON
log "ready: $CACHE/components.json"
