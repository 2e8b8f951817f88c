"""``APIServer``: the embedded Kubernetes-compatible API server's lifecycle.

The server speaks HTTPS with a self-signed certificate (see ``tls``): Kubernetes clients send
a bearer token only over TLS. Start locks ``data_dir`` (an exclusive ``flock`` on
``data_dir/lock``, which holds the owner's pid: one server per data dir, a second one gets
``DataDirInUse``), opens the store in ``data_dir`` (``store.db``), creates or reads the bearer token
(``data_dir/token``, mode 0600), registers the stored CRDs, creates the project's CRDs from
``autoscaler/apiserver/crds`` when they are not there yet, applies ``extra_crds`` (create or
replace), creates the usual namespaces, serves HTTP on ``host:port`` (port 0 picks a free one)
and writes ``data_dir/kubeconfig`` (mode 0600) for kubectl and the kubernetes client, last, once
everything else started (``start(write_kubeconfig=False)`` leaves that to the caller).
``record_requests()`` (or ``audit_hooks``) sees every authenticated request as RBAC would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import errno
import fcntl
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
from autoscaler.apiserver.objects import (
    CRD_STORAGE,
    NAMESPACE_NAME_LABEL,
    NS_STORAGE,
    Objects,
    WriteOptions,
)
from autoscaler.apiserver.openapi import OpenAPICache
from autoscaler.apiserver.podlog import LogSource
from autoscaler.apiserver.registry import Registry, types_from_crd
from autoscaler.apiserver.store import Store
from autoscaler.apiserver.tls import ensure_certificate, server_context
from autoscaler.clock import Clock, SystemClock

log = logging.getLogger(__name__)

PROJECT_CRDS_DIR = Path(__file__).resolve().parent / "crds"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class DataDirInUse(RuntimeError):
    """Another server (``modelscale up`` or ``modelscale server``) has the data dir open."""


def lock_data_dir(data_dir: Path) -> int:
    """An exclusive lock on ``data_dir/lock`` (held until the fd is closed, or the process ends).

    Raises ``DataDirInUse`` naming the dir and the pid that holds it.
    """
    path = data_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        raise DataDirInUse(f"data dir {data_dir} is in use by pid {holder}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


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
        self._lock_fd: int | None = None
        self.validators: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {}
        # Called with every authenticated request (the same list object the handlers read).
        self.audit_hooks: list[AuditHook] = []
        # Further bearer tokens, each naming a user for the request log (no authorization).
        self.users: dict[str, str] = {}
        # Where a Pod's container logs are (what runs the Pods says; None: every log is empty).
        self.log_source: LogSource | None = None

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

    async def start(self, *, write_kubeconfig: bool = True) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_data_dir(self.data_dir)
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        if write_kubeconfig:
            self.write_kubeconfig()
        log.info("API server listening on %s (kubeconfig %s)", self.url, self.kubeconfig_path)

    async def _start(self) -> None:
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
        handlers.log_source = self._log_path
        app = web.Application(client_max_size=self.settings.max_body_bytes + 1)
        app.router.add_route("*", "/{tail:.*}", handlers.handle)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"API server: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        site = web.SockSite(runner, sock, ssl_context=server_context(cert, key))
        await site.start()
        self._handlers = handlers
        self.port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"https://{host}:{self.port}"
        handlers.address = f"{self.host}:{self.port}"

    def _seed(self, objects: Objects, registry: Registry) -> None:
        ns_type = registry.get("", "v1", "namespaces")
        crd_type = registry.get(kinds.CRD_GROUP, "v1", "customresourcedefinitions")
        assert ns_type is not None and crd_type is not None
        # what the server writes itself has no owner: the first apply of it takes its fields
        opts = WriteOptions(field_validation="Ignore", field_manager="modelscale", track=False)
        for ns in INITIAL_NAMESPACES:
            if self.store.get(NS_STORAGE, "", ns) is None:
                objects.create(ns_type, "", {"metadata": {"name": ns}}, opts)
        # namespaces stored before the server labelled them get kubernetes.io/metadata.name
        for (_, name), stored, _text in list(self.store.items(NS_STORAGE)):
            if (stored["metadata"].get("labels") or {}).get(NAMESPACE_NAME_LABEL) != name:
                objects.update(ns_type, "", name, copy.deepcopy(stored), opts)
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

    def _log_path(self, namespace: str, pod: str, container: str, run: int) -> Path | None:
        source = self.log_source
        return None if source is None else source(namespace, pod, container, run)

    def write_kubeconfig(self) -> None:
        _write_private(self.kubeconfig_path, yaml.safe_dump(self.kubeconfig(), sort_keys=False))

    def kubeconfig(self) -> dict[str, Any]:
        """The kubeconfig of this server (what ``write_kubeconfig`` writes)."""
        return {
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
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
