"""A CRD version's selectableFields: field selectors on them select custom resources (kubectl
and the client, list and watch); other fields stay refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from autoscaler.apiserver.testing import RunningAPIServer

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    selectableFields:
    - jsonPath: .spec.color
    - jsonPath: .spec.size
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
              size: {type: integer}
              shape: {type: string}
"""

WIDGETS = "".join(
    f"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\n"
    f"spec: {{color: {color}, size: {size}, shape: round}}\n"
    for name, color, size in (("w-red", "red", 3), ("w-blue", "blue", 3), ("w-red2", "red", 5))
)


@pytest.fixture(scope="module")
def widgets(server: RunningAPIServer) -> Iterator[client.CustomObjectsApi]:
    out = server.kubectl("apply", "-f", "-", input=CRD)
    assert out.returncode == 0, out.stderr
    out = server.kubectl("apply", "-f", "-", input=WIDGETS)
    assert out.returncode == 0, out.stderr
    api = server.api_client()
    yield client.CustomObjectsApi(api)
    api.close()


def test_kubectl_field_selector_on_a_selectable_field(
    server: RunningAPIServer, widgets: client.CustomObjectsApi
) -> None:
    out = server.kubectl("get", "widgets", "--field-selector", "spec.color=red", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["widget.example.com/w-red", "widget.example.com/w-red2"]
    out = server.kubectl(
        "get", "widgets", "--field-selector", "spec.color=red,spec.size!=3", "-o", "name"
    )
    assert out.stdout.split() == ["widget.example.com/w-red2"]


def test_client_list_and_watch_on_selectable_fields(widgets: client.CustomObjectsApi) -> None:
    args = ("example.com", "v1", "default", "widgets")
    got = widgets.list_namespaced_custom_object(*args, field_selector="spec.size=3")
    assert [i["metadata"]["name"] for i in got["items"]] == ["w-blue", "w-red"]
    events = []
    w = watch.Watch()
    for e in w.stream(
        widgets.list_namespaced_custom_object, *args, field_selector="spec.color=blue"
    ):
        events.append((e["type"], e["object"]["metadata"]["name"]))
        if len(events) == 1:  # after the initial one: a red widget (not seen), a blue one
            for name, color in (("w-red3", "red"), ("w-blue2", "blue")):
                widgets.create_namespaced_custom_object(
                    *args,
                    {
                        "apiVersion": "example.com/v1",
                        "kind": "Widget",
                        "metadata": {"name": name},
                        "spec": {"color": color},
                    },
                )
        else:
            w.stop()
    assert events == [("ADDED", "w-blue"), ("ADDED", "w-blue2")]


def test_a_field_not_declared_selectable_is_refused(widgets: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        widgets.list_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", field_selector="spec.shape=round"
        )
    assert err.value.status == 400
    body = json.loads(err.value.body)
    assert body["reason"] == "BadRequest"
    assert body["message"] == "field label not supported: spec.shape"
