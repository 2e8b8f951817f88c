"""InferenceService -> Knative Service, and the InferenceService's status (KServe's serverless mode).

Mirrors KServe's ``pkg/controller/v1beta1/inferenceservice/reconcilers/knative`` for the predictor:
the Knative Service is ``<isvc>-predictor``; ``minReplicas`` is always written as ``min-scale``
(unset means 1), ``maxReplicas`` as ``max-scale`` when non-zero, ``scaleTarget``/``scaleMetric`` as
``target``/``metric``, ``containerConcurrency`` and ``timeout`` onto the template; the
InferenceService's annotations with ``spec.predictor.annotations`` over them are copied onto the
template except KServe's disallowed ones (min-scale, max-scale, ...), its labels with the
predictor's likewise; the predictor's container fields (``args`` appended to the server's) and pod
fields go onto the template too, so a change to any of them makes a new revision, and those
one-machine mode cannot honour (logger, batcher, gRPC, another image, ...) are refused; a
``canaryTrafficPercent`` gives the latest revision that share (tag ``latest`` only with
``serving.kserve.io/enable-tag-routing: "true"``) and the last rolled-out revision the rest (tag
``prev``); setting it again after a promotion rolls back to the revision rolled out before.

One-machine mode runs two predictor kinds: sklearn (``predictor.sklearn`` or ``predictor.model`` with
``modelFormat.name: sklearn``) and a custom container that names a Python ``kserve.Model`` class.
Anything else is refused at admission with a message naming the field.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import names

SKLEARN_IMAGE = "kserve/sklearnserver:v0.21.0"
STORAGE_URI_ANNOTATION = "internal.serving.kserve.io/storage-initializer-sourceuri"
MODEL_CLASS_ENV = "MODEL_CLASS"
CANARY_ANNOTATION = "serving.kserve.io/canary-traffic-percent"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
SERVERLESS_MODES = ("Serverless", "Knative")
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
# KServe's framework keys; only sklearn runs on one machine.
FRAMEWORK_KEYS = (
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "pmml", "lightgbm",
    "paddle", "huggingface",
)  # fmt: skip
# KServe's ServiceAnnotationDisallowedList and RevisionTemplateLabelDisallowedList defaults.
ANNOTATIONS_DISALLOWED = (
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    STORAGE_URI_ANNOTATION,
    "kubectl.kubernetes.io/last-applied-configuration",
)
TEMPLATE_LABELS_DISALLOWED = ("networking.knative.dev/visibility",)
# The Pod spec fields of spec.predictor: KServe puts them on the revision template as given.
POD_SPEC_KEYS = (
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
    "enableServiceLinks", "hostAliases", "hostIPC", "hostNetwork", "hostPID", "hostUsers",
    "hostname", "hostnameOverride", "imagePullSecrets", "initContainers", "nodeName",
    "nodeSelector", "os", "overhead", "preemptionPolicy", "priority", "priorityClassName",
    "readinessGates", "resourceClaims", "resources", "restartPolicy", "runtimeClassName",
    "schedulerName", "schedulingGates", "securityContext", "serviceAccount", "serviceAccountName",
    "setHostnameAsFQDN", "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds",
    "tolerations", "topologySpreadConstraints", "volumes",
)  # fmt: skip
# Predictor fields one-machine mode cannot honour (each adds machinery it does not run).
UNSUPPORTED_PREDICTOR_KEYS = {
    "logger": "the request logger agent",
    "batcher": "the batcher agent",
    "workerSpec": "multi-node workers",
    "deploymentStrategy": "a deployment strategy (KServe allows it in raw deployment mode only)",
    "autoScaling": "HPA/KEDA autoscaling (one-machine mode runs the KPA)",
    "scaleMetricType": "a metric type (used by the HPA autoscaler class only)",
    "storageUris": "several storage URIs",
    "storageContainerName": "a storage initializer container",
}
# Fields of spec.predictor.sklearn / .model that are not container fields.
IMPL_KEYS = ("storageUri", "storage", "runtimeVersion", "protocolVersion", "modelFormat", "runtime")
PROTOCOL_ENV = "PROTOCOL"  # KServe's CustomSpecProtocolEnvVarKey
PROTOCOLS = ("v1", "v2")  # the model server answers both over REST; no gRPC here
SKLEARN_RUNTIME = "kserve-sklearnserver"
KPA_METRICS = ("concurrency", "rps")
TARGET_MIN = 0.01  # Knative's least target
MAX_TIMEOUT_S = 600  # Knative's max-revision-timeout-seconds default
SUPPORTED = (
    "predictor.sklearn, predictor.model with modelFormat.name sklearn, or predictor.containers"
)


@dataclass(frozen=True)
class FieldError:
    """One problem with an object, with the field path Kubernetes puts in a Status cause."""

    field: str
    message: str


def _predictor(isvc: Mapping[str, Any]) -> Mapping[str, Any]:
    return (isvc.get("spec") or {}).get("predictor") or {}


def validate(isvc: Mapping[str, Any]) -> list[FieldError]:
    """What one-machine mode cannot run, as field errors (empty when it can)."""
    spec = isvc.get("spec") or {}
    if "predictor" not in spec:
        return [
            FieldError("spec.predictor", "Required value: an InferenceService needs a predictor")
        ]
    pred = _predictor(isvc)
    errors: list[FieldError] = []
    frameworks = [k for k in FRAMEWORK_KEYS if k in pred]
    for key in frameworks:
        if key != "sklearn":
            errors.append(
                FieldError(
                    f"spec.predictor.{key}",
                    f"Unsupported value: predictor type {key!r} does not run in one-machine mode "
                    f"(supported: {SUPPORTED})",
                )
            )
    if "model" in pred:
        fmt = ((pred.get("model") or {}).get("modelFormat") or {}).get("name", "")
        if str(fmt).lower() != "sklearn":
            errors.append(
                FieldError(
                    "spec.predictor.model.modelFormat.name",
                    f"Unsupported value: model format {fmt!r} does not run in one-machine mode "
                    f"(supported: {SUPPORTED})",
                )
            )
    kinds = len(frameworks) + ("model" in pred) + bool(pred.get("containers"))
    if kinds == 0:
        errors.append(
            FieldError("spec.predictor", f"Required value: name a predictor ({SUPPORTED})")
        )
    elif kinds > 1 and not errors:
        errors.append(
            FieldError("spec.predictor", "Invalid value: exactly one predictor type may be set")
        )
    for path, impl in (("sklearn", pred.get("sklearn")), ("model", pred.get("model"))):
        if impl is not None and not (impl or {}).get("storageUri"):
            errors.append(
                FieldError(f"spec.predictor.{path}.storageUri", "Required value: a model location")
            )
    containers = pred.get("containers") or []
    if containers and not _model_class(containers[0]):
        errors.append(
            FieldError(
                "spec.predictor.containers[0]",
                f"Required value: a custom predictor names its kserve.Model class as "
                f"'module:Class' in env {MODEL_CLASS_ENV} or the argument --model_class",
            )
        )
    for key, lo, hi in (
        ("minReplicas", 0, None),
        ("maxReplicas", 0, None),
        ("canaryTrafficPercent", 0, 100),
    ):
        if key in pred and pred[key] is not None:
            value = pred[key]
            if not isinstance(value, int) or value < lo or (hi is not None and value > hi):
                bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
                errors.append(
                    FieldError(
                        f"spec.predictor.{key}",
                        f"Invalid value: {value!r}: must be an integer {bound}",
                    )
                )
    errors.extend(_scaling_errors(pred))
    errors.extend(_unsupported_errors(pred))
    lo_r, hi_r = pred.get("minReplicas"), pred.get("maxReplicas")
    if isinstance(lo_r, int) and isinstance(hi_r, int) and hi_r > 0 and lo_r > hi_r:
        errors.append(
            FieldError(
                "spec.predictor.minReplicas",
                f"Invalid value: minReplicas {lo_r} is greater than maxReplicas {hi_r}",
            )
        )
    return errors


def _unsupported_errors(pred: Mapping[str, Any]) -> list[FieldError]:
    """Fields KServe would turn into machinery one-machine mode does not run: refused, never
    silently dropped."""
    errors = [
        FieldError(
            f"spec.predictor.{key}",
            f"Forbidden: {what} does not run in one-machine mode",
        )
        for key, what in UNSUPPORTED_PREDICTOR_KEYS.items()
        if pred.get(key) not in (None, [], {})
    ]
    for path in ("sklearn", "model"):
        impl = pred.get(path)
        if not isinstance(impl, Mapping):
            continue
        image = impl.get("image")
        if image not in (None, "", SKLEARN_IMAGE):
            errors.append(
                FieldError(
                    f"spec.predictor.{path}.image",
                    f"Unsupported value: {image!r}: one-machine mode runs the sklearn server of "
                    f"its kserve package ({SKLEARN_IMAGE})",
                )
            )
        version = impl.get("runtimeVersion")
        if version not in (None, "", SKLEARN_IMAGE.rsplit(":", 1)[1]):
            errors.append(
                FieldError(
                    f"spec.predictor.{path}.runtimeVersion",
                    f"Unsupported value: {version!r}: one-machine mode runs "
                    f"{SKLEARN_IMAGE.rsplit(':', 1)[1]}",
                )
            )
        protocol = impl.get("protocolVersion")
        if protocol not in (None, *PROTOCOLS):
            errors.append(
                FieldError(
                    f"spec.predictor.{path}.protocolVersion",
                    f"Unsupported value: {protocol!r}: one-machine mode serves "
                    f"{' and '.join(PROTOCOLS)} over REST",
                )
            )
        runtime = impl.get("runtime")
        if runtime not in (None, "", SKLEARN_RUNTIME):
            errors.append(
                FieldError(
                    f"spec.predictor.{path}.runtime",
                    f"Unsupported value: {runtime!r}: one-machine mode runs {SKLEARN_RUNTIME}",
                )
            )
    return errors


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scaling_errors(pred: Mapping[str, Any]) -> list[FieldError]:
    """What KServe's webhook (KPA class) and Knative's refuse in the predictor's scaling fields."""
    errors: list[FieldError] = []
    metric = pred.get("scaleMetric")
    if metric is not None and metric not in KPA_METRICS:
        errors.append(
            FieldError(
                "spec.predictor.scaleMetric",
                f"Unsupported value: {metric!r}: [{metric}] is not a supported metric "
                f"(one-machine mode runs the KPA, which scales on {' or '.join(KPA_METRICS)})",
            )
        )
    target = pred.get("scaleTarget")
    if target is not None:
        if not _is_number(target):
            errors.append(
                FieldError("spec.predictor.scaleTarget", f"Invalid value: {target!r}: not a number")
            )
        elif metric == "rps" and target < 1:
            errors.append(
                FieldError(
                    "spec.predictor.scaleTarget",
                    f"Invalid value: {target!r}: the target for metric rps must be at least 1",
                )
            )
        elif target < TARGET_MIN:
            errors.append(
                FieldError(
                    "spec.predictor.scaleTarget",
                    f"Invalid value: {target!r}: must be at least {TARGET_MIN}",
                )
            )
    timeout = pred.get("timeout")
    if timeout is not None and (
        not isinstance(timeout, int)
        or isinstance(timeout, bool)
        or not 0 <= timeout <= MAX_TIMEOUT_S
    ):
        errors.append(
            FieldError(
                "spec.predictor.timeout",
                f"Invalid value: {timeout!r}: must be an integer number of seconds in "
                f"[0, {MAX_TIMEOUT_S}] (Knative's max-revision-timeout-seconds)",
            )
        )
    return errors


def _model_class(container: Mapping[str, Any]) -> str | None:
    for env in container.get("env") or []:
        if env.get("name") == MODEL_CLASS_ENV and env.get("value"):
            return str(env["value"])
    args = [str(a) for a in (container.get("args") or [])]
    for i, arg in enumerate(args):
        if arg.startswith("--model_class="):
            return arg.split("=", 1)[1]
        if arg == "--model_class" and i + 1 < len(args):
            return args[i + 1]
    return None


def model_name(isvc: Mapping[str, Any]) -> str:
    """KServe serves the predictor's model under the InferenceService's name."""
    return str(isvc["metadata"]["name"])


def predictor_container(isvc: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The predictor's containers and the template annotations they need (storage URI).

    For sklearn the user's container fields are merged onto the runtime's container as KServe
    does: ``args`` appended to the server's, ``command``, ``env``, ``resources`` and the rest
    carried, ``protocolVersion`` as env ``PROTOCOL``; a custom predictor's containers are taken
    as given (``--model_name`` added to the first), so any change to them makes a new revision.
    """
    pred = _predictor(isvc)
    name = model_name(isvc)
    impl = pred.get("sklearn") or pred.get("model")
    if impl is not None:
        container: dict[str, Any] = {
            "name": "kserve-container",
            "image": SKLEARN_IMAGE,
            "args": [f"--model_name={name}", "--model_dir=/mnt/models", "--http_port=8080"],
        }
        for key, value in impl.items():
            if key in IMPL_KEYS or key in ("name", "image") or value is None:
                continue
            if key == "args":
                container["args"] = [*container["args"], *(str(a) for a in value)]
            else:
                container[key] = copy.deepcopy(value)
        protocol = impl.get("protocolVersion")
        if protocol:
            env = [e for e in container.get("env") or [] if e.get("name") != PROTOCOL_ENV]
            container["env"] = [*env, {"name": PROTOCOL_ENV, "value": str(protocol)}]
        return [container], {STORAGE_URI_ANNOTATION: str(impl["storageUri"])}
    containers = copy.deepcopy(pred.get("containers") or [{}])
    first = containers[0]
    first.setdefault("name", "kserve-container")
    if not any(str(a).startswith("--model_name") for a in first.get("args") or []):
        first["args"] = [*(first.get("args") or []), f"--model_name={name}"]
    return containers, {}


def desired_ksvc(isvc: Mapping[str, Any], rolled_out_revision: str | None) -> dict[str, Any]:
    """The Knative Service KServe would write for this InferenceService's predictor."""
    meta = isvc["metadata"]
    pred = _predictor(isvc)
    containers, extra_annotations = predictor_container(isvc)
    # KServe: the InferenceService's annotations with the predictor's over them, less the
    # disallowed ones; labels likewise (the template drops the visibility label)
    merged = {**(meta.get("annotations") or {}), **(pred.get("annotations") or {})}
    annotations = {k: str(v) for k, v in merged.items() if k not in ANNOTATIONS_DISALLOWED}
    annotations.update(extra_annotations)
    annotations.setdefault(names.CLASS_ANNOTATION, names.KPA_CLASS)
    min_replicas = pred.get("minReplicas")
    annotations[names.MIN_SCALE] = str(1 if min_replicas is None else min_replicas)
    if pred.get("maxReplicas"):
        annotations[names.MAX_SCALE] = str(pred["maxReplicas"])
    if pred.get("scaleTarget") is not None:
        annotations[names.TARGET] = str(pred["scaleTarget"])
    if pred.get("scaleMetric"):
        annotations[names.METRIC] = str(pred["scaleMetric"])
    template_spec: dict[str, Any] = {
        key: copy.deepcopy(pred[key]) for key in POD_SPEC_KEYS if pred.get(key) is not None
    }
    template_spec["containers"] = containers
    if pred.get("containerConcurrency") is not None:
        template_spec["containerConcurrency"] = int(pred["containerConcurrency"])
    if pred.get("timeout") is not None:
        template_spec["timeoutSeconds"] = int(pred["timeout"])
        template_spec["responseStartTimeoutSeconds"] = int(pred["timeout"])
    labels = {
        **(meta.get("labels") or {}),
        **{k: str(v) for k, v in (pred.get("labels") or {}).items()},
        names.ISVC_LABEL: meta["name"],
        names.COMPONENT_LABEL: "predictor",
    }
    template_labels = {k: v for k, v in labels.items() if k not in TEMPLATE_LABELS_DISALLOWED}
    return {
        "apiVersion": f"{names.KNATIVE_SERVING_GROUP}/v1",
        "kind": "Service",
        "metadata": {
            "name": names.predictor_service_name(meta["name"]),
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "ownerReferences": [names.owner_reference(isvc)],
        },
        "spec": {
            "template": {
                "metadata": {"labels": template_labels, "annotations": annotations},
                "spec": template_spec,
            },
            "traffic": traffic(
                pred.get("canaryTrafficPercent"),
                rolled_out_revision,
                tag_routing=annotations.get(TAG_ROUTING_ANNOTATION) == "true",
            ),
        },
    }


def traffic(
    canary_percent: int | None, rolled_out_revision: str | None, *, tag_routing: bool = False
) -> list[dict[str, Any]]:
    """KServe's split: the latest revision gets the canary share, the last rolled-out one the rest.

    Without a canary percent, or before anything has rolled out, the latest revision takes 100 %.
    The rest always carries the tag ``prev``; the latest revision's target carries ``latest`` only
    with tag routing on (annotation ``serving.kserve.io/enable-tag-routing: "true"``).
    """
    latest: dict[str, Any] = {"latestRevision": True, "percent": 100}
    if tag_routing:
        latest["tag"] = "latest"
    if canary_percent is None or rolled_out_revision is None:
        return [latest]
    latest["percent"] = canary_percent
    out = [latest]
    if canary_percent < 100:
        out.append(
            {
                "tag": "prev",
                "revisionName": rolled_out_revision,
                "latestRevision": False,
                "percent": 100 - canary_percent,
            }
        )
    return out


def rolled_out_revision(
    isvc: Mapping[str, Any], ksvc: Mapping[str, Any] | None
) -> tuple[str | None, str | None]:
    """(latest rolled-out, previous rolled-out) revision names, as KServe's ``PropagateStatus``.

    A revision is rolled out once the Knative Service's status shows its latest-revision target,
    resolved to the latest ready revision, at 100 %: the one rolled out before it becomes the
    previous. A rollback after a promotion (the latest ready revision is the latest rolled-out
    one, created equals ready, its latest-revision target is under 100 % and the revision's
    summed traffic is 100 %, as when ``canaryTrafficPercent`` is set again with no spec change)
    makes the previous rolled-out revision the latest again, so the ``prev`` share goes to it;
    the previous one stays as it was, so both then name it, as KServe's ``PropagateStatus``.
    Only a status that observed the Knative Service's current generation counts, and a rollback
    only from a settled one: both ConfigurationsReady and RoutesReady True. While the
    Configuration has not yet observed a changed template (no new revision created yet, so
    created still equals ready) the Route may already serve the new split over the old revision,
    which reads exactly as a rollback; the stored result is what the next split is built from,
    so it must not be taken from that passing state.
    """
    comp = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    current: str | None = comp.get("latestRolledoutRevision") or None
    previous: str | None = comp.get("previousRolledoutRevision") or None
    if not names.observed(ksvc):
        return current, previous
    kst = (ksvc or {}).get("status") or {}
    latest_ready = kst.get("latestReadyRevisionName")
    settled = all(
        (names.get_condition(ksvc or {}, type_) or {}).get("status") == "True"
        for type_ in ("ConfigurationsReady", "RoutesReady")
    )
    summed: dict[str, int] = {}
    for t in kst.get("traffic") or []:
        if t.get("percent") is not None:
            name = str(t.get("revisionName") or "")
            summed[name] = summed.get(name, 0) + int(t["percent"])
    for t in kst.get("traffic") or []:
        if not latest_ready or t.get("revisionName") != latest_ready or not t.get("latestRevision"):
            continue
        percent = t.get("percent")
        if current != latest_ready:
            if percent == 100:
                previous, current = current, latest_ready
        elif (
            settled
            and latest_ready == kst.get("latestCreatedRevisionName")
            and percent is not None
            and percent < 100
            and summed.get(latest_ready) == 100
            and previous
        ):
            current = previous
    return current, previous


OUT_OF_DATE = (
    "OutOfDate",
    "The predictor's Knative Service is still working to reflect the latest desired specification.",
)


def _cross(type_: str, part: dict[str, Any], now_iso: str) -> dict[str, Any]:
    """KServe's ``PropagateCrossComponentStatus`` over the one component, the predictor."""
    if part["status"] == "True":
        return names.condition(type_, True, now_iso=now_iso)
    return names.condition(
        type_, names.tri(part["status"]), f"{part['type']} not ready", now_iso=now_iso
    )


def _model_status(
    prev: Mapping[str, Any], kst: Mapping[str, Any], ready: bool, config: dict[str, Any]
) -> dict[str, Any]:
    """KServe's model status: Loaded and UpToDate once the latest revision serves; FailedToLoad
    and BlockedByFailedLoad while the latest revision fails (an older one may still serve, and
    the active model stays Loaded); otherwise Loading (a revision is starting) or Pending."""
    prev_states = (prev.get("modelStatus") or {}).get("states") or {}
    created, latest_ready = kst.get("latestCreatedRevisionName"), kst.get("latestReadyRevisionName")
    active = (
        "Loaded" if latest_ready or prev_states.get("activeModelState") == "Loaded" else "Pending"
    )
    if ready and created == latest_ready:
        return {
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate",
        }
    if config["status"] == "False":
        failure: dict[str, Any] = {"reason": "ModelLoadFailed"}
        if config.get("message"):
            failure["message"] = config["message"]
        if created:
            failure["modelRevisionName"] = created
        return {
            "states": {"activeModelState": active, "targetModelState": "FailedToLoad"},
            "transitionStatus": "BlockedByFailedLoad",
            "lastFailureInfo": failure,
        }
    return {
        "states": {
            "activeModelState": active,
            "targetModelState": "Loading" if created else "Pending",
        },
        "transitionStatus": "InProgress",
    }


def status(
    isvc: Mapping[str, Any],
    ksvc: Mapping[str, Any] | None,
    *,
    rolled_out: tuple[str | None, str | None],
    domain: str,
    now_iso: str,
) -> dict[str, Any]:
    """The InferenceService status KServe derives from its predictor's Knative Service.

    PredictorReady, PredictorRouteReady and PredictorConfigurationReady carry the Knative
    Service's Ready, RoutesReady and ConfigurationsReady (True, False or Unknown); RoutesReady and
    LatestDeploymentReady aggregate them; IngressReady follows the routes (the ingress serves
    what the Route says); Ready needs PredictorReady and IngressReady. A Knative Service whose
    status has not observed its current spec says nothing yet: the predictor's conditions are
    Unknown (OutOfDate) and observedGeneration stays where it was, so ``kubectl wait
    --for=condition=Ready`` after an apply waits for the new revision.
    """
    meta = isvc["metadata"]
    ns = meta.get("namespace", "default")
    prev = isvc.get("status") or {}
    kst = (ksvc or {}).get("status") or {}
    current = names.observed(ksvc)

    def propagated(type_: str, source: str) -> dict[str, Any]:
        if not current:
            return names.condition(type_, None, *OUT_OF_DATE, now_iso)
        return names.copied_condition(type_, names.get_condition(ksvc or {}, source), now_iso)

    predictor = propagated("PredictorReady", "Ready")
    pred_route = propagated("PredictorRouteReady", "RoutesReady")
    pred_config = propagated("PredictorConfigurationReady", "ConfigurationsReady")
    routes = _cross("RoutesReady", pred_route, now_iso)
    deployment = _cross("LatestDeploymentReady", pred_config, now_iso)
    ingress = names.condition("IngressReady", names.tri(routes["status"]), now_iso=now_iso)
    ready = names.aggregate("Ready", [predictor, ingress], now_iso)
    conditions = sorted(
        [predictor, pred_route, pred_config, routes, deployment, ingress, ready],
        key=lambda c: c["type"],
    )
    comp: dict[str, Any] = {
        "url": kst.get("url")
        or f"http://{names.host(names.predictor_service_name(meta['name']), ns, domain)}",
        "latestCreatedRevision": kst.get("latestCreatedRevisionName"),
        "latestReadyRevision": kst.get("latestReadyRevisionName"),
        "latestRolledoutRevision": rolled_out[0],
        "previousRolledoutRevision": rolled_out[1],
        "traffic": kst.get("traffic") or [],
    }
    comp = {k: v for k, v in comp.items() if v is not None}
    out: dict[str, Any] = {
        "url": f"http://{names.host(meta['name'], ns, domain)}",
        "address": {"url": f"http://{meta['name']}.{ns}.svc.cluster.local"},
        "components": {"predictor": comp},
        "conditions": names.merge_conditions(prev.get("conditions"), conditions),
        "deploymentMode": "Serverless",
        "modelStatus": _model_status(prev, kst, ready["status"] == "True", pred_config),
    }
    if current:
        out["observedGeneration"] = meta.get("generation", 1)
    elif prev.get("observedGeneration") is not None:
        out["observedGeneration"] = prev["observedGeneration"]
    return out


def failed_status(
    isvc: Mapping[str, Any], reason: str, message: str, now_iso: str
) -> dict[str, Any]:
    """The status of an InferenceService whose spec cannot be reconciled: PredictorReady and
    Ready False saying why, and KServe's model status for an invalid spec."""
    prev = isvc.get("status") or {}
    new = [names.condition(t, False, reason, message, now_iso) for t in ("PredictorReady", "Ready")]
    kept = [
        c for c in prev.get("conditions") or [] if c.get("type") not in ("PredictorReady", "Ready")
    ]
    states = dict((prev.get("modelStatus") or {}).get("states") or {})
    states.setdefault("activeModelState", "Pending")
    states["targetModelState"] = "FailedToLoad"
    return {
        **prev,
        "conditions": sorted(
            kept + names.merge_conditions(prev.get("conditions"), new), key=lambda c: c["type"]
        ),
        "modelStatus": {
            **(prev.get("modelStatus") or {}),
            "transitionStatus": "InvalidSpec",
            "states": states,
            "lastFailureInfo": {"reason": "InvalidPredictorSpec", "message": message},
        },
    }
