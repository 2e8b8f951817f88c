#!/usr/bin/env bash
# Create a kind cluster with Knative Serving (Kourier), Knative Eventing, cert-manager and KServe
# in Knative (Serverless) mode, all at pinned versions; build modelscale's images, load them into
# the cluster and apply manifests/. Safe to run again: what exists is kept and re-applied.
#
#   scripts/cluster-up.sh [--overlay NAME] [--no-samples] [--name CLUSTER]
#
#   --overlay NAME   base (default) or recommend-only. The prometheus overlay is refused: it
#                    reads a Prometheus that this script does not install (see "Pointing the
#                    tuner at Prometheus" in README.md); so is knative-legacy-pa, which is for
#                    Knative Serving older than the one installed here
#   --no-samples     do not apply manifests/samples (sklearn InferenceService, eventing samples)
#   --name CLUSTER   the kind cluster's name (default: modelscale)
#
# Needs docker (a running engine), kind and kubectl on PATH. tests/cluster checks the versions
# and image names below against manifests/.
set -euo pipefail

# --- pinned versions -------------------------------------------------------------------------
KIND_VERSION="v0.29.0"
KIND_NODE_IMAGE="kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
CERT_MANAGER_VERSION="v1.18.2"
KNATIVE_SERVING_VERSION="knative-v1.21.2"
KOURIER_VERSION="knative-v1.21.0"
KNATIVE_EVENTING_VERSION="knative-v1.21.0"
KSERVE_VERSION="v0.20.0"
# The kubectl versions the scripts are used with (README.md, "Prerequisites"): one minor version
# either side of the kind node's Kubernetes, the skew kubectl supports. Older stops the script,
# newer is a warning.
KUBECTL_MIN_VERSION="1.32"
KUBECTL_MAX_VERSION="1.34"

# --- images built here and loaded into kind ------------------------------------------------
IMAGE_TAG="0.1.0"
IMAGE_REPOSITORY="ghcr.io/modelscale"
CONTROLLER_IMAGE="${IMAGE_REPOSITORY}/controller:${IMAGE_TAG}"
# Each is functions/<name>/Dockerfile, built as ${IMAGE_REPOSITORY}/<name>:${IMAGE_TAG}.
FUNCTIONS="predict-on-event batch-predict event-log"

WAIT_TIMEOUT="${MODELSCALE_WAIT_TIMEOUT:-600s}"
# How long an apply is retried while an admission webhook refuses it (seconds): cert-manager's
# answers only some seconds after its Deployment is Available.
WEBHOOK_TIMEOUT="${MODELSCALE_WEBHOOK_TIMEOUT:-120}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="modelscale"
overlay="base"
samples=1

say() { printf '[cluster-up] %s\n' "$*" >&2; }
die() { printf '[cluster-up] error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --overlay) [ $# -ge 2 ] || die "--overlay needs a name"; overlay="$2"; shift 2 ;;
    --no-samples) samples=0; shift ;;
    --name) [ $# -ge 2 ] || die "--name needs a cluster name"; cluster="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$overlay" in
  base) manifests="$root/manifests/base" ;;
  prometheus|knative-legacy-pa|recommend-only) manifests="$root/manifests/overlays/$overlay" ;;
  *) die "unknown overlay '$overlay' (known: base, recommend-only)" ;;
esac
# knative-legacy-pa writes the PodAutoscaler, as Knative Serving before 1.21 needs; the Knative
# installed below derives its PodAutoscalers' annotations from the Revision and would undo it.
if [ "$overlay" = knative-legacy-pa ]; then
  die "the knative-legacy-pa overlay is for Knative Serving older than 1.21, and cluster-up
  installs ${KNATIVE_SERVING_VERSION}, where the base is right: run cluster-up without --overlay.
  For a cluster of your own with an older Knative: kubectl apply --server-side -k manifests/overlays/knative-legacy-pa
  (README.md, \"Overlays\")"
fi
# The prometheus overlay points the controller at a Prometheus, which this script does not
# install: without one (and its scrape jobs) the controller rolls out and then finds no metrics
# on every tick. Say what to provide instead of building a cluster that cannot tune.
if [ "$overlay" = prometheus ]; then
  die "the prometheus overlay needs a Prometheus that you provide, which cluster-up does not install:
  one that scrapes every revision's queue-proxy (port 9091) and the Knative autoscaler (port 9090
  in knative-serving, every 6 s or more often), served at the --prometheus-url in
  manifests/overlays/prometheus/kustomization.yaml. Run cluster-up without --overlay, install that
  Prometheus, then: kubectl --context kind-${cluster} apply --server-side -k manifests/overlays/prometheus
  (README.md, \"Pointing the tuner at Prometheus\")"
fi

# --- prerequisites ---------------------------------------------------------------------------
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed or not on PATH: $2"
}
need docker "install Docker Engine (https://docs.docker.com/engine/install/) and start it"
need kind "install kind ${KIND_VERSION} (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
need kubectl "install kubectl ${KUBECTL_MIN_VERSION} to ${KUBECTL_MAX_VERSION} (https://kubernetes.io/docs/tasks/tools/)"
# kubectl prints "Client Version: v1.33.1" (or, before 1.28, a version.Info with GitVersion:"v1.27.4").
kubectl_version="$(kubectl version --client 2>/dev/null |
  awk 'match($0, /v[0-9]+\.[0-9]+/) { print substr($0, RSTART + 1, RLENGTH - 1); exit }')" || true
if [ -z "$kubectl_version" ]; then
  say "warning: could not read kubectl's version; these scripts need ${KUBECTL_MIN_VERSION} to ${KUBECTL_MAX_VERSION}"
else
  # older A B: whether MAJOR.MINOR A comes before B.
  older() {
    local a_major a_minor b_major b_minor
    IFS=. read -r a_major a_minor <<<"$1"
    IFS=. read -r b_major b_minor <<<"$2"
    [ "$a_major" -lt "$b_major" ] || { [ "$a_major" -eq "$b_major" ] && [ "$a_minor" -lt "$b_minor" ]; }
  }
  if older "$kubectl_version" "$KUBECTL_MIN_VERSION"; then
    die "kubectl ${kubectl_version} is older than ${KUBECTL_MIN_VERSION}: install kubectl ${KUBECTL_MIN_VERSION} to ${KUBECTL_MAX_VERSION} (https://kubernetes.io/docs/tasks/tools/)"
  fi
  if older "$KUBECTL_MAX_VERSION" "$kubectl_version"; then
    say "warning: kubectl ${kubectl_version} is newer than ${KUBECTL_MAX_VERSION}, more than one minor version past the cluster's Kubernetes: install kubectl ${KUBECTL_MIN_VERSION} to ${KUBECTL_MAX_VERSION} if a command fails"
  fi
fi
docker info >/dev/null 2>&1 || die "docker is installed but its engine does not answer: start Docker (or check your permissions on its socket)"
kind_version="$(kind version 2>/dev/null | awk '{print $2}')" || true
if [ "$kind_version" != "$KIND_VERSION" ]; then
  say "warning: kind is ${kind_version:-unknown}; these scripts are tested with ${KIND_VERSION}"
fi

ctx="kind-${cluster}"
k() { kubectl --context "$ctx" "$@"; }

wait_available() {  # NAMESPACE: every Deployment there becomes Available
  say "waiting for the Deployments in $1 (up to ${WAIT_TIMEOUT})"
  k wait deployment --all -n "$1" --for=condition=Available --timeout="$WAIT_TIMEOUT"
}

# `k apply ARGS...`, tried again every 5 s for up to WEBHOOK_TIMEOUT seconds while an admission
# webhook refuses it (a webhook's Deployment is Available before it answers: its serving
# certificate may not be injected yet). Any other error fails at once. Server-side apply is
# idempotent, so what went through on an earlier attempt is applied again unchanged.
apply_past_webhooks() {
  local deadline=$((SECONDS + WEBHOOK_TIMEOUT)) out
  until out="$(k apply "$@" 2>&1)"; do
    if ! grep -qi 'webhook' <<<"$out"; then
      printf '%s\n' "$out" >&2
      die "kubectl apply $* failed"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s\n' "$out" >&2
      die "an admission webhook still refuses kubectl apply $* after ${WEBHOOK_TIMEOUT}s"
    fi
    say "an admission webhook is not answering yet; applying again in 5s (up to ${WEBHOOK_TIMEOUT}s)"
    sleep 5
  done
  printf '%s\n' "$out"
}

# --- 1. the cluster --------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  say "kind cluster '$cluster' exists: reusing it"
  # Its context may be missing from this kubeconfig (another machine's, or deleted): write it.
  kind export kubeconfig --name "$cluster"
else
  say "creating kind cluster '$cluster' (${KIND_NODE_IMAGE%@*})"
  kind create cluster --name "$cluster" --image "$KIND_NODE_IMAGE" --wait 180s
fi

# --- 2. cert-manager (KServe's webhook certificates) -----------------------------------------
say "installing cert-manager ${CERT_MANAGER_VERSION}"
k apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
wait_available cert-manager

# --- 3. Knative Serving with Kourier -----------------------------------------------------------
serving="https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}"
say "installing Knative Serving ${KNATIVE_SERVING_VERSION} with Kourier ${KOURIER_VERSION}"
k apply -f "${serving}/serving-crds.yaml"
k wait crd --all --for=condition=Established --timeout="$WAIT_TIMEOUT"
k apply -f "${serving}/serving-core.yaml"
k apply -f "https://github.com/knative-extensions/net-kourier/releases/download/${KOURIER_VERSION}/kourier.yaml"
k patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
# No external DNS in kind: a fixed domain, reached with a Host header through Kourier.
k patch configmap/config-domain -n knative-serving --type merge -p '{"data":{"example.com":""}}'
# Images loaded with `kind load` are in no registry: do not resolve their tags to digests.
k patch configmap/config-deployment -n knative-serving --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local,ghcr.io"}}'
# Knative >= 1.19 exports metrics only when asked: the queue-proxy's request metrics
# (request-metrics-protocol) and the control plane's, the autoscaler's concurrency gauges among
# them (metrics-protocol). The tuner reads both.
k patch configmap/config-observability -n knative-serving --type merge \
  -p '{"data":{"metrics-protocol":"prometheus","request-metrics-protocol":"prometheus"}}'
wait_available knative-serving
wait_available kourier-system

# --- 4. Knative Eventing (in-memory channel, multi-tenant channel broker) ---------------------
eventing="https://github.com/knative/eventing/releases/download/${KNATIVE_EVENTING_VERSION}"
say "installing Knative Eventing ${KNATIVE_EVENTING_VERSION}"
k apply -f "${eventing}/eventing-crds.yaml"
k wait crd --all --for=condition=Established --timeout="$WAIT_TIMEOUT"
k apply -f "${eventing}/eventing-core.yaml"
k apply -f "${eventing}/in-memory-channel.yaml"
k apply -f "${eventing}/mt-channel-broker.yaml"
wait_available knative-eventing

# --- 5. KServe in Knative (Serverless) mode -----------------------------------------------------
kserve="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}"
say "installing KServe ${KSERVE_VERSION}"
# Its CRDs are too large for client-side apply's last-applied annotation. kserve.yaml holds
# cert-manager Issuers and Certificates, which cert-manager's webhook admits; the cluster
# resources are admitted by KServe's own webhook.
apply_past_webhooks --server-side --force-conflicts -f "${kserve}/kserve.yaml"
wait_available kserve
apply_past_webhooks --server-side --force-conflicts -f "${kserve}/kserve-cluster-resources.yaml"
# Kourier, not Istio: KServe must not create Istio VirtualServices.
ingress="$(k get configmap/inferenceservice-config -n kserve -o jsonpath='{.data.ingress}')"
if ! grep -q '"disableIstioVirtualHost": *true' <<<"$ingress"; then
  ingress="$(sed -e 's/"disableIstioVirtualHost": *false,\{0,1\}//' -e '0,/{/s//{"disableIstioVirtualHost": true,/' <<<"$ingress")"
  k create configmap inferenceservice-config -n kserve --from-literal=ingress="$ingress" \
    --dry-run=client -o json |
    k patch configmap/inferenceservice-config -n kserve --type merge --patch-file /dev/stdin
fi
# Knative mode for an InferenceService that names no mode: KServe's own default, where its
# config names none, is Standard (plain Deployments, no scale to zero).
k patch configmap/inferenceservice-config -n kserve --type merge \
  -p '{"data":{"deploy":"{\"defaultDeploymentMode\": \"Knative\"}"}}'

# --- 6. modelscale's images ----------------------------------------------------------------------
say "building ${CONTROLLER_IMAGE}"
docker build -t "$CONTROLLER_IMAGE" -f "$root/Dockerfile" "$root"
images=("$CONTROLLER_IMAGE")
for fn in $FUNCTIONS; do
  image="${IMAGE_REPOSITORY}/${fn}:${IMAGE_TAG}"
  say "building ${image}"
  docker build -t "$image" -f "$root/functions/${fn}/Dockerfile" "$root"
  images+=("$image")
done
for image in "${images[@]}"; do
  kind load docker-image "$image" --name "$cluster"
done

# --- 7. modelscale -------------------------------------------------------------------------------
say "applying ${manifests#"$root"/}"
k apply --server-side -k "$manifests"
k wait crd/modelscalers.modelscale.dev --for=condition=Established --timeout="$WAIT_TIMEOUT"
k rollout status deployment/modelscale-controller -n modelscale-system --timeout="$WAIT_TIMEOUT"
if [ "$samples" -eq 1 ]; then
  say "applying manifests/samples"
  k apply --server-side -k "$root/manifests/samples"
fi

say "ready. kubectl --context ${ctx} get isvc,modelscalers -A"
