"""Decoding the Kubernetes protobuf request encoding (``application/vnd.kubernetes.protobuf``).

kubectl's typed clients (``kubectl create configmap``, ``kubectl create secret``, ``kubectl create namespace``) send
built-in objects as protobuf: the magic ``k8s\\0`` then a ``runtime.Unknown`` envelope
(k8s.io/apimachinery/pkg/runtime/generated.proto) whose ``raw`` bytes are the object's message
(k8s.io/api/core/v1/generated.proto, coordination/v1, rbac/v1, policy/v1). This module decodes
those messages for the built-in kinds into the same JSON form the rest of the server handles;
answers stay JSON (every such client also accepts JSON). A kind it has no message for (a
Deployment, a Service, a custom resource) is a 415 Unsupported Media Type, as upstream answers
protobuf for custom resources.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from autoscaler.apiserver.errors import APIError, bad_request
from autoscaler.protowire import fields

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# field number -> (json name, kind, sub-schema or None, repeated)
Schema = dict[int, tuple[str, str, Any, bool]]

_OWNER_REF: Schema = {
    1: ("kind", "string", None, False),
    3: ("name", "string", None, False),
    4: ("uid", "string", None, False),
    5: ("apiVersion", "string", None, False),
    6: ("controller", "bool", None, False),
    7: ("blockOwnerDeletion", "bool", None, False),
}
OBJECT_META: Schema = {
    1: ("name", "string", None, False),
    2: ("generateName", "string", None, False),
    3: ("namespace", "string", None, False),
    4: ("selfLink", "string", None, False),
    5: ("uid", "string", None, False),
    6: ("resourceVersion", "string", None, False),
    7: ("generation", "int", None, False),
    8: ("creationTimestamp", "time", None, False),
    9: ("deletionTimestamp", "time", None, False),
    10: ("deletionGracePeriodSeconds", "int", None, False),
    11: ("labels", "map", "string", False),
    12: ("annotations", "map", "string", False),
    13: ("ownerReferences", "msg", _OWNER_REF, True),
    14: ("finalizers", "string", None, True),
}
_OBJECT_REF: Schema = {
    1: ("kind", "string", None, False),
    2: ("namespace", "string", None, False),
    3: ("name", "string", None, False),
    4: ("uid", "string", None, False),
    5: ("apiVersion", "string", None, False),
    6: ("resourceVersion", "string", None, False),
    7: ("fieldPath", "string", None, False),
}
CONFIG_MAP: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("data", "map", "string", False),
    3: ("binaryData", "map", "bytes", False),
    4: ("immutable", "bool", None, False),
}
SECRET: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("data", "map", "bytes", False),
    3: ("type", "string", None, False),
    4: ("stringData", "map", "string", False),
    5: ("immutable", "bool", None, False),
}
NAMESPACE: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("spec", "msg", {1: ("finalizers", "string", None, True)}, False),
    3: (
        "status",
        "msg",
        {
            1: ("phase", "string", None, False),
            2: (
                "conditions",
                "msg",
                {
                    1: ("type", "string", None, False),
                    2: ("status", "string", None, False),
                    4: ("lastTransitionTime", "time", None, False),
                    5: ("reason", "string", None, False),
                    6: ("message", "string", None, False),
                },
                True,
            ),
        },
        False,
    ),
}
LEASE: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: (
        "spec",
        "msg",
        {
            1: ("holderIdentity", "string", None, False),
            2: ("leaseDurationSeconds", "int", None, False),
            3: ("acquireTime", "microtime", None, False),
            4: ("renewTime", "microtime", None, False),
            5: ("leaseTransitions", "int", None, False),
            6: ("strategy", "string", None, False),
            7: ("preferredHolder", "string", None, False),
        },
        False,
    ),
}
EVENT: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("involvedObject", "msg", _OBJECT_REF, False),
    3: ("reason", "string", None, False),
    4: ("message", "string", None, False),
    5: (
        "source",
        "msg",
        {1: ("component", "string", None, False), 2: ("host", "string", None, False)},
        False,
    ),
    6: ("firstTimestamp", "time", None, False),
    7: ("lastTimestamp", "time", None, False),
    8: ("count", "int", None, False),
    9: ("type", "string", None, False),
    10: ("eventTime", "microtime", None, False),
    11: (
        "series",
        "msg",
        {1: ("count", "int", None, False), 2: ("lastObservedTime", "microtime", None, False)},
        False,
    ),
    12: ("action", "string", None, False),
    13: ("related", "msg", _OBJECT_REF, False),
    14: ("reportingComponent", "string", None, False),
    15: ("reportingInstance", "string", None, False),
}
_LABEL_SELECTOR: Schema = {
    1: ("matchLabels", "map", "string", False),
    2: (
        "matchExpressions",
        "msg",
        {
            1: ("key", "string", None, False),
            2: ("operator", "string", None, False),
            3: ("values", "string", None, True),
        },
        True,
    ),
}
SERVICE_ACCOUNT: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("secrets", "msg", _OBJECT_REF, True),
    3: ("imagePullSecrets", "msg", {1: ("name", "string", None, False)}, True),
    4: ("automountServiceAccountToken", "bool", None, False),
}
_POLICY_RULE: Schema = {
    1: ("verbs", "string", None, True),
    2: ("apiGroups", "string", None, True),
    3: ("resources", "string", None, True),
    4: ("resourceNames", "string", None, True),
    5: ("nonResourceURLs", "string", None, True),
}
_SUBJECT: Schema = {
    1: ("kind", "string", None, False),
    2: ("apiGroup", "string", None, False),
    3: ("name", "string", None, False),
    4: ("namespace", "string", None, False),
}
_ROLE_REF: Schema = {
    1: ("apiGroup", "string", None, False),
    2: ("kind", "string", None, False),
    3: ("name", "string", None, False),
}
ROLE: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("rules", "msg", _POLICY_RULE, True),
}
CLUSTER_ROLE: Schema = {
    **ROLE,
    3: (
        "aggregationRule",
        "msg",
        {1: ("clusterRoleSelectors", "msg", _LABEL_SELECTOR, True)},
        False,
    ),
}
ROLE_BINDING: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: ("subjects", "msg", _SUBJECT, True),
    3: ("roleRef", "msg", _ROLE_REF, False),
}
POD_DISRUPTION_BUDGET: Schema = {
    1: ("metadata", "msg", OBJECT_META, False),
    2: (
        "spec",
        "msg",
        {
            1: ("minAvailable", "intorstring", None, False),
            2: ("selector", "msg", _LABEL_SELECTOR, False),
            3: ("maxUnavailable", "intorstring", None, False),
            4: ("unhealthyPodEvictionPolicy", "string", None, False),
        },
        False,
    ),
    3: (
        "status",
        "msg",
        {
            1: ("observedGeneration", "int", None, False),
            3: ("disruptionsAllowed", "int", None, False),
            4: ("currentHealthy", "int", None, False),
            5: ("desiredHealthy", "int", None, False),
            6: ("expectedPods", "int", None, False),
            7: (
                "conditions",
                "msg",
                {
                    1: ("type", "string", None, False),
                    2: ("status", "string", None, False),
                    3: ("observedGeneration", "int", None, False),
                    4: ("lastTransitionTime", "time", None, False),
                    5: ("reason", "string", None, False),
                    6: ("message", "string", None, False),
                },
                True,
            ),
        },
        False,
    ),
}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int", None, False),
    2: (
        "preconditions",
        "msg",
        {1: ("uid", "string", None, False), 2: ("resourceVersion", "string", None, False)},
        False,
    ),
    3: ("orphanDependents", "bool", None, False),
    4: ("propagationPolicy", "string", None, False),
    5: ("dryRun", "string", None, True),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "Event"): EVENT,
    ("coordination.k8s.io/v1", "Lease"): LEASE,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ROLE_BINDING,
    ("policy/v1", "PodDisruptionBudget"): POD_DISRUPTION_BUDGET,
    ("v1", "DeleteOptions"): DELETE_OPTIONS,
    ("meta.k8s.io/v1", "DeleteOptions"): DELETE_OPTIONS,
}


def _time(raw: bytes, micro: bool) -> str:
    seconds = nanos = 0
    for num, _wt, v in fields(raw):
        if num == 1:
            seconds = v
        elif num == 2:
            nanos = v
    t = datetime.fromtimestamp(seconds, UTC)
    if micro:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_time(raw: bytes) -> bool:
    return any(num == 1 and _signed(v) > 0 for num, _wt, v in fields(raw))


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, _wt, v in fields(buf):
        if num not in schema:
            continue
        name, kind, sub, repeated = schema[num]
        if kind == "string":
            value: Any = v.decode()
            if not value and not repeated:
                continue  # Go writes empty strings; JSON omits them
        elif kind == "int":
            value = _signed(v)
            if value == 0 and name == "generation":
                continue
        elif kind == "bool":
            value = bool(v)
        elif kind in ("time", "microtime"):
            if not _set_time(v):
                continue  # the zero time: unset
            value = _time(v, kind == "microtime")
        elif kind == "msg":
            value = decode_message(v, sub)
        elif kind == "intorstring":  # intstr.IntOrString: type (0 int, 1 string), intVal, strVal
            parts = {n2: v2 for n2, _w2, v2 in fields(v)}
            value = parts.get(3, b"").decode() if parts.get(1) == 1 else _signed(parts.get(2, 0))
        elif kind == "map":
            key = val = b""
            for n2, _w2, v2 in fields(v):
                if n2 == 1:
                    key = v2
                elif n2 == 2:
                    val = v2
            target = out.setdefault(name, {})
            target[key.decode()] = (
                val.decode() if sub == "string" else base64.b64encode(val).decode()
            )
            continue
        else:
            continue
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def decode(raw: bytes) -> dict[str, Any]:
    """A protobuf-encoded built-in object as its JSON form (400 if it cannot be decoded)."""
    if not raw.startswith(MAGIC):
        raise bad_request("malformed protobuf body: missing the k8s\\0 prefix")
    try:
        env = {num: v for num, _wt, v in fields(raw[len(MAGIC) :])}
        type_meta = {num: v for num, _wt, v in fields(env.get(1, b""))}
        api_version = type_meta.get(1, b"").decode()
        kind = type_meta.get(2, b"").decode()
        schema = KINDS.get((api_version, kind))
        if schema is None:
            raise APIError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml",
            )
        obj = decode_message(env.get(2, b""), schema)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"malformed protobuf body: {exc}") from exc
    if kind != "DeleteOptions":
        obj = {"apiVersion": api_version, "kind": kind, **obj}
    return obj
