#!/usr/bin/env bash
# Remove what scripts/cluster-up.sh made.
#
#   scripts/cluster-down.sh [--name CLUSTER]       delete the kind cluster (default: modelscale)
#   scripts/cluster-down.sh --uninstall [--context CTX] [--overlay NAME]
#                                                  remove modelscale only (samples, controller,
#                                                  RBAC, the ModelScaler CRD and every
#                                                  ModelScaler) from a cluster, kind or not
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="modelscale"
uninstall=0
context=""
overlay="base"

say() { printf '[cluster-down] %s\n' "$*" >&2; }
die() { printf '[cluster-down] error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --name) [ $# -ge 2 ] || die "--name needs a cluster name"; cluster="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --context) [ $# -ge 2 ] || die "--context needs a kubeconfig context"; context="$2"; shift 2 ;;
    --overlay) [ $# -ge 2 ] || die "--overlay needs a name"; overlay="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$overlay" in
  base) manifests="$root/manifests/base" ;;
  prometheus|knative-legacy-pa|recommend-only) manifests="$root/manifests/overlays/$overlay" ;;
  *) die "unknown overlay '$overlay' (known: base, prometheus, knative-legacy-pa, recommend-only)" ;;
esac

if [ "$uninstall" -eq 1 ]; then
  command -v kubectl >/dev/null 2>&1 ||
    die "kubectl is not installed or not on PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/)"
  args=()
  if [ -n "$context" ]; then args=(--context "$context"); fi
  # ${args[@]+"${args[@]}"}: bash before 4.4 (macOS's /bin/bash is 3.2) calls a plain
  # "${args[@]}" of an empty array an unbound variable under set -u.
  say "removing the samples"
  # A cluster without Knative Eventing does not know the Broker and Trigger kinds: kubectl
  # deletes the rest of the samples and fails. Go on to the controller.
  kubectl ${args[@]+"${args[@]}"} delete -k "$root/manifests/samples" --ignore-not-found --wait=true ||
    say "warning: removing the samples failed (above); continuing with modelscale itself"
  # The values the tuner wrote stay on the revisions: Knative keeps scaling with them.
  say "removing modelscale (${manifests#"$root"/}); the written revision annotations stay"
  kubectl ${args[@]+"${args[@]}"} delete -k "$manifests" --ignore-not-found --wait=true
  exit 0
fi

command -v kind >/dev/null 2>&1 ||
  die "kind is not installed or not on PATH: install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
command -v docker >/dev/null 2>&1 ||
  die "docker is not installed or not on PATH: kind clusters run in Docker"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  say "deleting kind cluster '$cluster'"
  kind delete cluster --name "$cluster"
else
  say "no kind cluster named '$cluster': nothing to do"
fi
