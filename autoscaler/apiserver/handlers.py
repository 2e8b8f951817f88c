"""The HTTP layer: routes a request to discovery, OpenAPI or a verb on a resource, decodes its
body and query, calls ``Objects`` and encodes the answer (JSON, Table or a Status on error).

Paths follow the Kubernetes layout: ``/api/v1/...`` for the core group and
``/apis/<group>/<version>/...``; ``[namespaces/<ns>/]<plural>[/<name>[/status]]``, and a Pod's
``log`` (see ``podlog``).
Every request needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from autoscaler.apiserver import codec, discovery, podlog, tables
from autoscaler.apiserver.audit import TOKEN_USER, AuditHook, request_record
from autoscaler.apiserver.codec import Accept, dumps, parse_accept
from autoscaler.apiserver.errors import (
    APIError,
    Cause,
    bad_request,
    invalid,
    method_not_allowed,
    too_large,
    too_large_resource_version,
    unauthorized,
)
from autoscaler.apiserver.objects import Objects, WriteOptions, Written
from autoscaler.apiserver.openapi import OpenAPICache, v2_protobuf_empty
from autoscaler.apiserver.registry import Registry, ResourceType
from autoscaler.apiserver.selectors import (
    parse_field_selector,
    parse_label_selector,
    predicate,
    supported_fields,
)
from autoscaler.apiserver.store import Store
from autoscaler.apiserver.watch import WatchRequest, serve_watch
from autoscaler.clock import Clock

WATCH_DEFAULT_TIMEOUT_S = 1800.0


@dataclass
class Settings:
    """Limits and intervals of the HTTP layer."""

    max_body_bytes: int = 3 * 1024 * 1024
    bookmark_interval_s: float = 10.0
    watch_timeout_s: float = WATCH_DEFAULT_TIMEOUT_S
    # how long a list at a resourceVersion the server has not reached waits for it before the
    # 504 "Too large resource version" (upstream's watch cache waits 3 s)
    fresh_wait_s: float = 3.0


def json_response(
    body: Any,
    status: int = 200,
    warnings: list[str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    resp = web.Response(body=dumps(body), status=status, headers={"Content-Type": content_type})
    for w in warnings or ():
        escaped = w.replace("\\", "\\\\").replace('"', '\\"')
        resp.headers.add("Warning", f'299 - "{escaped}"')
    return resp


def error_response(err: APIError) -> web.Response:
    resp = json_response(err.status(), err.code)
    if err.retry_after_s:
        resp.headers["Retry-After"] = str(err.retry_after_s)
    return resp


def _resource_version(q: Any) -> str:
    """The ``resourceVersion`` query parameter; one that is not a number is a bad request (the
    message is upstream's APIObjectVersioner.ParseResourceVersion's)."""
    rv = str(q.get("resourceVersion", ""))
    if rv and not (rv.isascii() and rv.isdigit()):
        raise bad_request(
            f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: parsing "{rv}": '
            "invalid syntax"
        )
    return rv


def _check_rv_match(match: str, rv: str, cont: str) -> None:
    """Upstream's ValidateListOptions for ``resourceVersionMatch``: an Invalid ListOptions."""
    if not match:
        return
    causes = []
    if not rv:
        causes.append(
            Cause(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                "FieldValueForbidden",
            )
        )
    if cont:
        causes.append(
            Cause(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided",
                "FieldValueForbidden",
            )
        )
    if match not in ("Exact", "NotOlderThan"):
        causes.append(
            Cause(
                "resourceVersionMatch",
                f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""',
                "FieldValueNotSupported",
            )
        )
    if match == "Exact" and rv == "0":
        causes.append(
            Cause(
                "resourceVersionMatch",
                'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                "FieldValueForbidden",
            )
        )
    if causes:
        raise invalid("ListOptions", "meta.k8s.io", "", causes)


@dataclass(frozen=True)
class Target:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str | None  # None: all namespaces (or a cluster-scoped kind)
    name: str
    subresource: str


class Handlers:
    """The request handler bound to one server's store, registry and token."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        objects: Objects,
        openapi: OpenAPICache,
        clock: Clock,
        token: str,
        settings: Settings,
        address: str,
    ) -> None:
        self.store = store
        self.registry = registry
        self.objects = objects
        self.openapi = openapi
        self.clock = clock
        self.token = token
        self.settings = settings
        self.address = address
        self.stopping = asyncio.Event()
        self.audit_hooks: list[AuditHook] = []  # called with each authenticated request
        self.users: dict[str, str] = {}  # further bearer tokens -> the user each stands for
        self._lines: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self.log_source: podlog.LogSource | None = None  # where a Pod's container logs are

    # --- entry point --------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            user = self._authenticate(request)
            if self.audit_hooks:
                record = request_record(request.method, request.path, request.query, user)
                for hook in self.audit_hooks:
                    hook(record)
            return await self._route(request)
        except APIError as err:
            return error_response(err)
        except web.HTTPRequestEntityTooLarge:
            return error_response(too_large(self.settings.max_body_bytes))

    def _authenticate(self, request: web.Request) -> str:
        """The user the request's bearer token stands for (every user may do everything)."""
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer":
            token = given.strip()
            if hmac.compare_digest(token, self.token):
                return TOKEN_USER
            for known, user in self.users.items():
                if hmac.compare_digest(token, known):
                    return user
        raise unauthorized()

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        data = await request.read()  # aiohttp stops past client_max_size (limit + 1)
        if len(data) > limit:
            raise too_large(limit)
        return data

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        accept = parse_accept(request.headers.get("Accept"))
        if path == "/version":
            return json_response(discovery.version_info())
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if parts and parts[0] == "openapi":
            return self._openapi(request, parts[1:])
        if parts[:1] == ["api"]:
            if len(parts) == 1:
                if accept.discovery:
                    return self._aggregated(core=True, version=accept.discovery)
                return json_response(discovery.api_versions(self.address))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            if len(parts) == 1:
                if accept.discovery:
                    return self._aggregated(core=False, version=accept.discovery)
                return json_response(discovery.api_group_list(self.registry))
            if len(parts) == 2:
                grp = discovery.api_group(self.registry, parts[1])
                if grp is None:
                    raise APIError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                return json_response(grp)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            listing = discovery.resource_list(self.registry, group, version)
            if listing is None:
                raise APIError(404, "NotFound", "the server could not find the requested resource")
            return json_response(listing)
        watch_prefix = rest[0] == "watch"
        if watch_prefix:
            rest = rest[1:]
        target = self._target(group, version, rest)
        return await self._verb(request, target, accept, watch_prefix)

    def _aggregated(self, *, core: bool, version: str) -> web.Response:
        body = discovery.aggregated(self.registry, core=core, version=version)
        ct = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        return json_response(body, content_type=ct)

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts == ["v2"]:
            accept = request.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                return web.Response(
                    body=v2_protobuf_empty(),
                    content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )
            return web.Response(body=self.openapi.v2(), content_type="application/json")
        if parts == ["v3"]:
            return json_response(self.openapi.index())
        if parts[:1] == ["v3"]:
            found = self.openapi.document("/".join(parts[1:]))
            if found is not None:
                headers = {"Content-Type": "application/json"}
                if request.query.get("hash") == found[1]:
                    headers["Cache-Control"] = "public, immutable"
                headers["Etag"] = f'"{found[1]}"'
                return web.Response(body=found[0], headers=headers)
        raise APIError(404, "NotFound", "the server could not find the requested resource")

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rt.namespaced:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        known = sub in rt.get_subresources or (sub == "status" and rt.status_subresource)
        if len(rest) > 3 or (sub and not known):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        return Target(rt, namespace, name, sub)

    # --- verbs --------------------------------------------------------------------------------

    def _write_options(self, request: web.Request) -> WriteOptions:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise bad_request(f'Invalid dry run value {d!r}: the only allowed value is "All"')
        fv = q.get("fieldValidation", "Warn") or "Warn"
        if fv not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f'fieldValidation: Invalid value: "{fv}": must be one of "Ignore", "Warn", or "Strict"'
            )
        return WriteOptions(
            dry_run=bool(dry),
            field_validation=fv,
            field_manager=q.get("fieldManager", ""),
            force=q.get("force", "") in ("true", "1"),
            user_agent=request.headers.get("User-Agent", ""),
        )

    def _encoder(self, rt: ResourceType, accept: Accept, request: web.Request) -> Any:
        """The watch event encoder; plain JSON lines are shared by all watchers of a kind."""
        include = request.query.get("includeObject", "Metadata") or "Metadata"
        cache = self._lines
        plain = not accept.table and not accept.partial_metadata

        def render(stored: dict[str, Any], first: bool) -> dict[str, Any]:
            obj = self.objects.view(rt, stored)
            if accept.table:
                return tables.table(
                    rt,
                    [obj],
                    now=self.clock.wall(),
                    resource_version=str(obj.get("metadata", {}).get("resourceVersion", "")),
                    include=include,
                    headers=first,
                )
            if accept.partial_metadata:
                return tables.row_object(obj, "Metadata") or {}
            return obj

        def encode(typ: str, stored: dict[str, Any], first: bool) -> bytes:
            if not plain:
                return dumps({"type": typ, "object": render(stored, first)}) + b"\n"
            meta = stored.get("metadata") or {}
            key = (
                typ,
                meta.get("resourceVersion"),
                meta.get("namespace"),
                meta.get("name"),
                rt.api_version,
            )
            line = cache.get(key)
            if line is None:
                line = dumps({"type": typ, "object": render(stored, first)}) + b"\n"
                cache[key] = line
                if len(cache) > 512:
                    cache.popitem(last=False)
            return line

        return encode

    async def _verb(
        self, request: web.Request, t: Target, accept: Accept, watch_prefix: bool
    ) -> web.StreamResponse:
        m = request.method
        rt = t.rt
        ns = t.namespace or ""
        if rt.namespaced and t.namespace is None and (t.name or m not in ("GET", "DELETE")):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if t.subresource in rt.get_subresources:
            if m != "GET":
                raise method_not_allowed(
                    f"the server does not allow this method on the requested resource: {m}"
                )
            return await self._pod_log(request, rt, ns, t.name)
        if not accept.acceptable:
            raise APIError(406, "NotAcceptable", "only application/json responses are served")
        if not t.name:
            if m == "GET":
                q = request.query
                if watch_prefix or q.get("watch") in ("true", "1"):
                    return await self._watch(request, t, accept)
                return await self._list(request, t, accept)
            if m == "POST":
                opts = self._write_options(request)
                body = codec.decode_body(
                    request.headers.get("Content-Type"),
                    await self._body(request),
                    (codec.JSON, codec.YAML, codec.PROTOBUF),
                )
                return self._written(self.objects.create(rt, ns, body, opts))
            if m == "DELETE":
                if rt.namespaced and t.namespace is None:
                    raise method_not_allowed("deletecollection needs a namespace")
                options = await self._delete_options(request)
                match = self._predicate(request, rt)
                items = self.objects.delete_collection(
                    rt, t.namespace, match, options, self._dry(request, options)
                )
                return json_response(
                    {
                        "kind": rt.kind_list,
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(self.store.rv)},
                        "items": items,
                    }
                )
            raise method_not_allowed(
                f"the server does not allow this method on the requested resource: {m}"
            )
        if m == "GET":
            obj = self.objects.get(rt, ns, t.name)
            if accept.table:
                include = request.query.get("includeObject", "Metadata") or "Metadata"
                return json_response(
                    tables.table(
                        rt,
                        [obj],
                        now=self.clock.wall(),
                        resource_version=str(self.store.rv),
                        include=include,
                    )
                )
            if accept.partial_metadata:
                return json_response(tables.row_object(obj, "Metadata"))
            return json_response(obj)
        if m == "PUT":
            opts = self._write_options(request)
            body = codec.decode_body(
                request.headers.get("Content-Type"),
                await self._body(request),
                (codec.JSON, codec.YAML, codec.PROTOBUF),
            )
            return self._written(
                self.objects.update(rt, ns, t.name, body, opts, subresource=t.subresource)
            )
        if m == "PATCH":
            opts = self._write_options(request)
            raw = await self._body(request)
            return self._written(
                self.objects.patch(
                    rt,
                    ns,
                    t.name,
                    request.headers.get("Content-Type", ""),
                    raw,
                    opts,
                    subresource=t.subresource,
                )
            )
        if m == "DELETE" and not t.subresource:
            options = await self._delete_options(request)
            written = self.objects.delete(rt, ns, t.name, options, self._dry(request, options))
            return self._written(written)
        raise method_not_allowed(
            f"the server does not allow this method on the requested resource: {m}"
        )

    async def _pod_log(
        self, request: web.Request, rt: ResourceType, ns: str, name: str
    ) -> web.StreamResponse:
        pod = self.objects.get(rt, ns, name)  # 404 for an unknown Pod
        opts = podlog.options(pod, request.query)
        source = self.log_source
        path = source(ns, name, opts.container, opts.run) if source else None
        uid = (pod.get("metadata") or {}).get("uid")

        def still_there() -> bool:  # the Pod, and the run whose log is followed
            current = self.store.get(rt.storage, ns, name)
            return (
                current is not None
                and current["metadata"].get("uid") == uid
                and not podlog.run_ended(current, opts.container, opts.run)
            )

        return await podlog.serve(request, path, opts, still_there, self.stopping)

    def _dry(self, request: web.Request, options: dict[str, Any]) -> bool:
        dry = list(request.query.getall("dryRun", [])) + list(options.get("dryRun") or [])
        for d in dry:
            if d != "All":
                raise bad_request(f'Invalid dry run value {d!r}: the only allowed value is "All"')
        return bool(dry)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await self._body(request)
        options: dict[str, Any] = {}
        if raw.strip():
            decoded = codec.decode_body(
                request.headers.get("Content-Type"), raw, (codec.JSON, codec.YAML, codec.PROTOBUF)
            )
            if not isinstance(decoded, dict):
                raise bad_request("DeleteOptions must be an object")
            options = decoded
        policy = request.query.get("propagationPolicy") or options.get("propagationPolicy")
        if policy and policy not in ("Orphan", "Background", "Foreground"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        return options

    def _written(self, w: Written) -> web.Response:
        return json_response(w.obj, w.code, w.warnings)

    def _predicate(self, request: web.Request, rt: ResourceType) -> Any:
        q = request.query
        labels = parse_label_selector(q.get("labelSelector", ""))
        fields = parse_field_selector(
            q.get("fieldSelector", ""), supported_fields(rt.group, rt.plural, rt.selectable_fields)
        )
        return predicate(labels, fields)

    async def _fresh(self, rv: str) -> None:
        """Wait until the store reaches ``rv``, up to ``settings.fresh_wait_s``; then 504."""
        want = int(rv or 0)
        if want <= self.store.rv:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.fresh_wait_s
        while self.store.rv < want:
            left = deadline - loop.time()
            if left <= 0:
                raise too_large_resource_version(want, self.store.rv)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.next_change(), left)

    async def _list(self, request: web.Request, t: Target, accept: Accept) -> web.Response:
        rt = t.rt
        q = request.query
        match = self._predicate(request, rt)
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError as exc:
            raise bad_request(f"invalid limit {q.get('limit')!r}") from exc
        rv_match = q.get("resourceVersionMatch", "")
        rv = _resource_version(q)
        _check_rv_match(rv_match, rv, q.get("continue", ""))
        if not q.get("continue"):
            await self._fresh(rv)
        if rv_match == "Exact" and rv and int(rv) < self.store.compacted:
            raise APIError(
                410, "Expired", f"too old resource version: {rv} ({self.store.compacted + 1})"
            )
        items, list_rv, token, remaining = self.objects.list_objects(
            rt,
            t.namespace,
            match,
            limit,
            q.get("continue", ""),
            count_remaining=not q.get("labelSelector") and not q.get("fieldSelector"),
            at=int(rv) if rv_match == "Exact" else 0,
        )
        if accept.table:
            include = q.get("includeObject", "Metadata") or "Metadata"
            return json_response(
                tables.table(
                    rt,
                    items,
                    now=self.clock.wall(),
                    resource_version=list_rv,
                    include=include,
                    continue_token=token,
                    remaining=remaining,
                )
            )
        meta: dict[str, Any] = {"resourceVersion": list_rv}
        if token:
            meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        if accept.partial_metadata:
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [tables.row_object(i, "Metadata") for i in items],
                }
            )
        return json_response(
            {"kind": rt.kind_list, "apiVersion": rt.api_version, "metadata": meta, "items": items}
        )

    async def _watch(self, request: web.Request, t: Target, accept: Accept) -> web.StreamResponse:
        q = request.query
        match = self._predicate(request, t.rt)
        try:
            timeout = float(q.get("timeoutSeconds", "0") or 0) or self.settings.watch_timeout_s
        except ValueError as exc:
            raise bad_request(f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}") from exc
        sie = q.get("sendInitialEvents")
        wr = WatchRequest(
            rt=t.rt,
            namespace=t.namespace,
            match=match,
            resource_version=_resource_version(q),
            bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
            timeout_s=timeout,
            initial_events=None if sie is None else sie in ("true", "1"),
            bookmark_interval_s=self.settings.bookmark_interval_s,
        )
        return await serve_watch(
            request, self.store, wr, self._encoder(t.rt, accept, request), self.stopping
        )
