"""``APIServer``: the embedded Kubernetes-compatible API server's lifecycle.

The server speaks HTTPS with a self-signed certificate (see ``tls``): Kubernetes clients send
a bearer token only over TLS. Start opens the store in ``data_dir`` (``store.db``), creates or reads the bearer token
(``data_dir/token``, mode 0600), registers the stored CRDs, creates the project's CRDs from
``autoscaler/apiserver/crds`` when they are not there yet, applies ``extra_crds`` (create or
replace), creates the usual namespaces, serves HTTP on ``host:port`` (port 0 picks a free one)
and writes ``data_dir/kubeconfig`` (mode 0600) for kubectl and the kubernetes client.
``record_requests()`` (or ``audit_hooks``) sees every authenticated request as RBAC would.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from autoscaler.apiserver import kinds
from autoscaler.apiserver.audit import AuditHook, RequestRecord
from autoscaler.apiserver.errors import Cause
from autoscaler.apiserver.handlers import Handlers, Settings
from autoscaler.apiserver.objects import CRD_STORAGE, NS_STORAGE, Objects, WriteOptions
from autoscaler.apiserver.openapi import OpenAPICache
from autoscaler.apiserver.registry import Registry, types_from_crd
from autoscaler.apiserver.store import Store
from autoscaler.apiserver.tls import ensure_certificate, server_context
from autoscaler.clock import Clock, SystemClock

log = logging.getLogger(__name__)

PROJECT_CRDS_DIR = Path(__file__).resolve().parent / "crds"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def load_crd_file(path: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinition documents in a YAML file."""
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


class APIServer:
    """One API server over one data directory."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_crds: Sequence[Path] = (),
        clock: Clock | None = None,
        *,
        settings: Settings | None = None,
        history: int = 10_000,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.extra_crds = [Path(p) for p in extra_crds]
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.history = history
        self.token = ""
        self.url = ""
        self.kubeconfig_path = self.data_dir / "kubeconfig"
        self.ca_path = self.data_dir / "tls.crt"
        self._runner: web.AppRunner | None = None
        self._store: Store | None = None
        self._handlers: Handlers | None = None
        self.validators: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {}
        # Called with every authenticated request (the same list object the handlers read).
        self.audit_hooks: list[AuditHook] = []
        # Further bearer tokens, each naming a user for the request log (no authorization).
        self.users: dict[str, str] = {}

    def add_user(self, user: str) -> str:
        """A new bearer token whose requests are logged as ``user``'s."""
        token = secrets.token_urlsafe(32)
        self.users[token] = user
        return token

    def record_requests(self) -> list[RequestRecord]:
        """Start a request log: the returned list gets every request from now on."""
        requests: list[RequestRecord] = []
        self.audit_hooks.append(requests.append)
        return requests

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    def _token(self) -> str:
        path = self.data_dir / "token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        _write_private(path, token + "\n")
        return token

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.token = self._token()
        cert, key = ensure_certificate(self.data_dir, self.host)
        self.ca_path = cert
        store = Store(self.data_dir / "store.db", history=self.history)
        self._store = store
        registry = Registry(kinds.builtin_types())
        openapi = OpenAPICache(registry)
        objects = Objects(store, registry, self.clock, on_registry_change=openapi.invalidate)
        objects.validators = self.validators
        for (_ns, name), crd, _text in store.items(CRD_STORAGE):
            registry.set_crd(name, types_from_crd(crd))
        self._seed(objects, registry)
        handlers = Handlers(
            store, registry, objects, openapi, self.clock, self.token, self.settings, ""
        )
        handlers.audit_hooks = self.audit_hooks
        handlers.users = self.users
        app = web.Application(client_max_size=self.settings.max_body_bytes + 1)
        app.router.add_route("*", "/{tail:.*}", handlers.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        site = web.SockSite(runner, sock, ssl_context=server_context(cert, key))
        await site.start()
        self._runner = runner
        self._handlers = handlers
        self.port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"https://{host}:{self.port}"
        handlers.address = f"{self.host}:{self.port}"
        self._write_kubeconfig()
        log.info("API server listening on %s (kubeconfig %s)", self.url, self.kubeconfig_path)

    def _seed(self, objects: Objects, registry: Registry) -> None:
        ns_type = registry.get("", "v1", "namespaces")
        crd_type = registry.get(kinds.CRD_GROUP, "v1", "customresourcedefinitions")
        assert ns_type is not None and crd_type is not None
        # what the server writes itself has no owner: the first apply of it takes its fields
        opts = WriteOptions(field_validation="Ignore", field_manager="modelscale", track=False)
        for ns in INITIAL_NAMESPACES:
            if self.store.get(NS_STORAGE, "", ns) is None:
                objects.create(ns_type, "", {"metadata": {"name": ns}}, opts)
        for path in sorted(PROJECT_CRDS_DIR.glob("*.yaml")):
            for crd in load_crd_file(path):
                if self.store.get(CRD_STORAGE, "", crd["metadata"]["name"]) is None:
                    objects.create(crd_type, "", crd, opts)
        for path in self.extra_crds:
            for crd in load_crd_file(path):
                name = crd["metadata"]["name"]
                current = self.store.get(CRD_STORAGE, "", name)
                if current is None:
                    objects.create(crd_type, "", crd, opts)
                else:
                    body = dict(crd)
                    body["metadata"] = {
                        **crd.get("metadata", {}),
                        "resourceVersion": current["metadata"]["resourceVersion"],
                    }
                    objects.update(crd_type, "", name, body, opts)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "modelscale",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(
                            self.ca_path.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "modelscale", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "modelscale",
                    "context": {
                        "cluster": "modelscale",
                        "user": "modelscale",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "modelscale",
            "preferences": {},
        }
        _write_private(self.kubeconfig_path, yaml.safe_dump(config, sort_keys=False))

    async def stop(self) -> None:
        if self._handlers is not None:
            self._handlers.stopping.set()
        if self._runner is not None:
            await asyncio.sleep(0)
            await self._runner.cleanup()
            self._runner = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
