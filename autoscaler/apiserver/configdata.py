"""The rules of the two kinds that hold configuration data: ConfigMap and Secret.

As k8s.io/kubernetes/pkg/apis/core/validation (ValidateConfigMap, ValidateSecret and their
update forms) and the Secret's v1 conversion:

- every key of ``data`` and ``binaryData`` is a config key (``[-._a-zA-Z0-9]+``, at most 253
  characters), no key is in both, and the contents total at most 1 MiB;
- a Secret's ``stringData`` is written into ``data`` (its values win) and never stored or
  returned; its ``type`` defaults to ``Opaque`` (the schema's default), each built-in type's
  required keys must be there, and the type cannot change;
- once ``immutable`` is true, neither the contents nor the flag change.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from autoscaler.apiserver.errors import Cause

CONFIGMAP_STORAGE = ("", "configmaps")
SECRET_STORAGE = ("", "secrets")
STORAGES = (CONFIGMAP_STORAGE, SECRET_STORAGE)
MAX_DATA_BYTES = 1024 * 1024
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
# Secret type -> the data keys it requires (any one of a tuple's keys will do)
_REQUIRED_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kubernetes.io/dockercfg": ((".dockercfg",),),
    "kubernetes.io/dockerconfigjson": ((".dockerconfigjson",),),
    "kubernetes.io/basic-auth": (("username", "password"),),
    "kubernetes.io/ssh-auth": (("ssh-privatekey",),),
    "kubernetes.io/tls": (("tls.crt",), ("tls.key",)),
}
_JSON_KEYS = {
    "kubernetes.io/dockercfg": ".dockercfg",
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
}
_SA_NAME = "kubernetes.io/service-account.name"


def fold_string_data(obj: dict[str, Any]) -> None:
    """A Secret as stored: ``stringData`` written into ``data``, base64-encoded, its values
    over ``data``'s for the same key (the v1 conversion)."""
    string_data = obj.pop("stringData", None)
    if not string_data:
        return
    data = dict(obj.get("data") or {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    obj["data"] = data


def causes(storage: tuple[str, str], obj: dict[str, Any]) -> list[Cause]:
    """What makes a ConfigMap or Secret invalid on any write (empty for other kinds)."""
    if storage not in STORAGES:
        return []
    out: list[Cause] = []
    data = obj.get("data") or {}
    binary = (obj.get("binaryData") or {}) if storage == CONFIGMAP_STORAGE else {}
    size = 0
    for field, values in (("data", data), ("binaryData", binary)):
        for key, value in values.items():
            if len(key) > 253 or not _KEY.match(key):
                out.append(Cause(f"{field}[{key}]", f'Invalid value: "{key}": {_KEY_MESSAGE}'))
            if field == "data" and key in binary:
                out.append(
                    Cause(
                        f"data[{key}]",
                        f'Invalid value: "{key}": duplicate of key present in binaryData',
                    )
                )
            size += _size(storage, field, value)
    if size > MAX_DATA_BYTES:
        where = "data" if storage == SECRET_STORAGE else ""
        out.append(
            Cause(where, f"Too long: must have at most {MAX_DATA_BYTES} bytes", "FieldValueTooLong")
        )
    if storage == SECRET_STORAGE:
        out.extend(_type_causes(obj, data))
    return out


def _size(storage: tuple[str, str], field: str, value: str) -> int:
    """A value's stored size: a ConfigMap's ``data`` holds text, the rest base64 bytes."""
    if storage == CONFIGMAP_STORAGE and field == "data":
        return len(str(value).encode())
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):  # the schema's byte format refuses these first
        return len(value)


def _type_causes(obj: dict[str, Any], data: dict[str, Any]) -> list[Cause]:
    kind = str(obj.get("type") or "Opaque")
    out: list[Cause] = []
    if kind == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(_SA_NAME):
            out.append(
                Cause(f"metadata.annotations[{_SA_NAME}]", "Required value", "FieldValueRequired")
            )
    for keys in _REQUIRED_KEYS.get(kind, ()):
        if not any(k in data for k in keys):
            out.append(Cause(f"data[{keys[0]}]", "Required value", "FieldValueRequired"))
    key = _JSON_KEYS.get(kind)
    if key is not None and key in data:
        try:
            json.loads(base64.b64decode(data[key]))
        except (binascii.Error, ValueError) as e:
            out.append(Cause(f"data[{key}]", f'Invalid value: "<secret contents redacted>": {e}'))
    return out


def update_causes(
    storage: tuple[str, str], new: dict[str, Any], old: dict[str, Any]
) -> list[Cause]:
    """What an update of a ConfigMap or Secret may not change."""
    if storage not in STORAGES:
        return []
    out: list[Cause] = []
    if storage == SECRET_STORAGE and (new.get("type") or "Opaque") != (old.get("type") or "Opaque"):
        out.append(Cause("type", f'Invalid value: "{new.get("type")}": field is immutable'))
    if old.get("immutable") is True:
        locked = "Forbidden: field is immutable when `immutable` is set"
        if new.get("immutable") is not True:
            out.append(Cause("immutable", locked, "FieldValueForbidden"))
        for key in ("data", "binaryData"):
            if (new.get(key) or {}) != (old.get(key) or {}):
                out.append(Cause(key, locked, "FieldValueForbidden"))
    return out
