"""How replica processes are started and watched: through the zygote, or one interpreter each.

``ZygoteLauncher`` (the default) asks the warm zygote to fork a replica: start-to-ready is the
model load and server start only. ``ExecLauncher`` runs ``python -m
autoscaler.runtime.replica_main`` per replica, paying ``import kserve`` each time; it needs no
helper process and is the baseline the cold-start benchmark compares against.

``FunctionLauncher`` runs a local function's own command (``ReplicaSpec.command``, from its
Procfile) with exec in its directory, with the container's env plus ``PORT`` (a free loopback
port) and ``LISTEN_HOST=127.0.0.1``; ``http_proxy`` points at the one-machine ingress so the
cluster addresses in a manifest (``http://iris-predictor.default.svc.cluster.local``) reach the
right revision, as cluster DNS would. Readiness is the replica's health probe, not a line on stdout.

All hand back a ``ReplicaProcess``: its pid, its loopback port, a future for its exit code, and
``send_signal``. Replicas forked by the zygote are not our children, so their exit is reported by
the zygote; either way ``exited`` resolves exactly once.

A launch can be given up on (cancelled) while the replica loads its model, as a Pod is deleted
while its container starts: the child it was starting is stopped as a container is, SIGTERM at
once and SIGKILL after ``term_timeout_s`` (``terminate``), and the cancelled ``launch`` returns
once that child is gone. A zygote fork asked for and not reported yet is waited for and stopped
the same way: no child of a launch given up on is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
TERM_TIMEOUT_S = 10.0  # SIGTERM to SIGKILL, unless the caller says


class ReplicaStartError(RuntimeError):
    """A replica process exited or reported failure before it was serving."""


@dataclass
class ReplicaProcess:
    pid: int
    port: int
    exited: asyncio.Future[int] = field(repr=False)

    def send_signal(self, sig: int) -> None:
        if self.exited.done():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    @property
    def running(self) -> bool:
        return not self.exited.done()


async def terminate(proc: ReplicaProcess, term_timeout_s: float) -> None:
    """Stop ``proc`` as Kubernetes stops a container: SIGTERM, SIGKILL after ``term_timeout_s``;
    return once it is gone. Cancelled while waiting, it kills at once (and is still cancelled)."""
    try:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.exited), term_timeout_s)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            await asyncio.shield(proc.exited)
    except asyncio.CancelledError:
        proc.send_signal(signal.SIGKILL)
        raise


class Launcher(Protocol):
    async def start(self) -> None: ...

    async def launch(
        self,
        spec: ReplicaSpec,
        log_path: str | None = None,
        *,
        term_timeout_s: float = TERM_TIMEOUT_S,
    ) -> ReplicaProcess:
        """Start a replica of ``spec``; cancelled, stop the child it was starting (``terminate``
        with ``term_timeout_s``) before it ends."""
        ...

    async def close(self) -> None: ...


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Replicas must not inherit a test runner's or an IDE's idea of warnings as errors.
    env.pop("PYTHONWARNINGS", None)
    return env


class ExecLauncher:
    """One fresh interpreter per replica."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._procs: set[asyncio.subprocess.Process] = set()

    async def start(self) -> None:
        return None

    async def launch(
        self,
        spec: ReplicaSpec,
        log_path: str | None = None,
        *,
        term_timeout_s: float = TERM_TIMEOUT_S,
    ) -> ReplicaProcess:
        cmd = [self.python, "-m", "autoscaler.runtime.replica_main", "--spec", spec.to_json()]
        cmd.append("--die-with-parent")
        if log_path:
            cmd += ["--log", log_path]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env=_child_env(),
        )
        exited = _watch_exit(proc, self._procs)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            raise ReplicaStartError(
                f"replica of {spec.key} not bound within {START_TIMEOUT_S}s"
            ) from None
        except asyncio.CancelledError:  # given up on while it loads its model
            await terminate(ReplicaProcess(pid=proc.pid, port=0, exited=exited), term_timeout_s)
            raise
        if not line:
            code = await exited
            raise ReplicaStartError(f"replica of {spec.key} exited with {code} before serving")
        event = json.loads(line)
        if event.get("event") != "bound":
            raise ReplicaStartError(f"replica of {spec.key} failed: {event.get('error')}")
        return ReplicaProcess(pid=proc.pid, port=int(event["port"]), exited=exited)

    async def close(self) -> None:
        await _kill_all(self._procs)


class ZygoteLauncher:
    """Forks replicas from a warm zygote process (see ``autoscaler.runtime.zygote``)."""

    def __init__(
        self,
        preload: Sequence[str] = (),
        python: str = sys.executable,
        log_path: str | None = None,
    ) -> None:
        self.preload = tuple(preload)
        self.python = python
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tokens = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._token_pid: dict[str, int] = {}
        # token -> its fork's pid, once the zygote reports it (None: the zygote died)
        self._spawn_waiters: dict[str, asyncio.Future[int | None]] = {}
        self._abandoned: set[str] = set()  # given up on before their fork was reported
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early_exits: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running zygote's pid (None before start, after close, or once it died)."""
        return None if self._proc is None else self._proc.pid

    async def start(self) -> None:
        self._closed = False
        await self._ensure_zygote()

    async def _ensure_zygote(self) -> None:
        async with self._start_lock:
            if self._proc is None:
                await self._start_zygote()

    async def _start_zygote(self) -> None:
        cmd = [self.python, "-m", "autoscaler.runtime.zygote"]
        for name in self.preload:
            cmd += ["--preload", name]
        stderr: Any = asyncio.subprocess.DEVNULL
        if self.log_path:
            stderr = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=_child_env(),
                limit=1 << 20,
            )
        finally:
            if self.log_path:
                stderr.close()
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
            ok = bool(line) and json.loads(line).get("event") == "ready"
        except (TimeoutError, ValueError) as exc:
            line, ok = repr(exc).encode(), False
        except BaseException:
            await _kill_and_wait(proc)
            raise
        if not ok:
            await _kill_and_wait(proc)
            raise ReplicaStartError(f"zygote did not start (got {line!r})")
        self._proc = proc
        self._reader = asyncio.get_running_loop().create_task(self._read(proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        stdout = proc.stdout  # close() drops self._proc while this task drains the pipe
        try:
            while True:
                line = await stdout.readline()
                if not line:
                    break
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                self._dispatch(event)
        except Exception:
            log.exception("reading the zygote's events failed")
        finally:
            died = self._zygote_gone(proc)
        if died:
            # Reap it (its stdout is closed: it is exiting) so the log can say how it ended.
            code: int | None = None
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(proc.wait(), 5)
            log.warning(
                "zygote %d exited (%s); the next replica start restarts it",
                proc.pid,
                "still exiting" if code is None else f"returncode {code}",
            )

    def _zygote_gone(self, proc: asyncio.subprocess.Process) -> bool:
        """Settle everything that waited on ``proc``; True when it died (was not closed)."""
        # Its children died with it (PR_SET_PDEATHSIG).
        for fut in list(self._exits.values()):
            if not fut.done():
                fut.set_result(-signal.SIGKILL)
        self._exits.clear()
        self._early_exits.clear()
        self._abandoned.clear()
        for pending in self._pending.values():
            if not pending.done():
                pending.set_exception(ReplicaStartError("zygote exited"))
        for waiter in self._spawn_waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        if self._proc is not proc:
            return False  # closed on purpose
        self._proc = None  # the next launch starts a new one
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # its stdout closed but it lingers: make sure it goes
        return not self._closed

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        token = event.get("token")
        if kind == "spawned" and token in self._pending:
            pid = int(event["pid"])
            self._token_pid[token] = pid
            waiter = self._spawn_waiters.get(token)
            if waiter is not None and not waiter.done():
                waiter.set_result(pid)
        elif kind == "spawned" and token in self._abandoned:
            # its launch was given up on before the fork was reported: it must not run
            self._abandoned.discard(token)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(event["pid"]), signal.SIGKILL)
        elif kind in ("bound", "failed") and token in self._pending:
            fut = self._pending.pop(token)
            if not fut.done():
                fut.set_result(event)
        elif kind == "exited":
            pid = int(event["pid"])
            code = int(event["returncode"])
            exit_fut = self._exits.pop(pid, None)
            if exit_fut is not None:
                if not exit_fut.done():
                    exit_fut.set_result(code)
                return
            for tok, tpid in self._token_pid.items():
                if tpid != pid:
                    continue
                self._early_exits[pid] = code  # for its launch (nobody else waits for it)
                pending = self._pending.get(tok)
                if pending is not None and not pending.done():
                    pending.set_result({"event": "failed", "error": f"exited with {code}"})

    async def launch(
        self,
        spec: ReplicaSpec,
        log_path: str | None = None,
        *,
        term_timeout_s: float = TERM_TIMEOUT_S,
    ) -> ReplicaProcess:
        if self._closed:
            raise ReplicaStartError(f"replica of {spec.key}: the launcher is closed")
        await self._ensure_zygote()  # (re)starts the zygote when there is none (it died)
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise ReplicaStartError(f"replica of {spec.key}: the zygote is not running")
        token = f"t{next(self._tokens)}"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[token] = fut
        self._spawn_waiters[token] = loop.create_future()
        request = {
            "op": "spawn",
            "token": token,
            "spec": json.loads(spec.to_json()),
            "log": log_path,
        }
        asked = False
        try:
            try:
                async with self._lock:
                    proc.stdin.write((json.dumps(request) + "\n").encode())
                    asked = True
                    await proc.stdin.drain()
            except Exception as exc:  # the pipe of a zygote that died (transports differ in what)
                raise ReplicaStartError(
                    f"replica of {spec.key}: could not ask the zygote: {type(exc).__name__}: {exc}"
                ) from exc
            event = await asyncio.wait_for(fut, START_TIMEOUT_S)
        except asyncio.CancelledError:  # given up on (deleted, scaled down, closing) while loading
            if asked:
                await self._give_up(token, term_timeout_s)
            raise
        except TimeoutError:
            self._kill_spawned(token)
            raise ReplicaStartError(
                f"replica of {spec.key} not bound within {START_TIMEOUT_S}s"
            ) from None
        finally:
            self._pending.pop(token, None)
            self._token_pid.pop(token, None)
            self._spawn_waiters.pop(token, None)
        if event.get("event") != "bound":
            raise ReplicaStartError(f"replica of {spec.key} failed: {event.get('error')}")
        pid = int(event["pid"])
        exited: asyncio.Future[int] = loop.create_future()
        if pid in self._early_exits:
            exited.set_result(self._early_exits.pop(pid))
        elif self._proc is not proc:  # the zygote died just after it bound: so did the replica
            exited.set_result(-signal.SIGKILL)
        else:
            self._exits[pid] = exited
        return ReplicaProcess(pid=pid, port=int(event["port"]), exited=exited)

    async def _give_up(self, token: str, term_timeout_s: float) -> None:
        """Stop the child asked for with ``token``, its launch given up on: SIGTERM, SIGKILL after
        ``term_timeout_s``; return once it is gone. A fork the zygote has not reported yet is
        waited for within that time, and killed when it is reported if it comes later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + term_timeout_s
        spawned = self._spawn_waiters[token]
        try:
            pid = await asyncio.wait_for(asyncio.shield(spawned), term_timeout_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            pid = spawned.result() if spawned.done() else None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            elif not spawned.done():
                self._abandoned.add(token)  # killed when the zygote reports it
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if pid is None:  # the zygote died, and its children with it
            return
        exited = self._exits.get(pid)
        if exited is None:
            exited = loop.create_future()
            if pid in self._early_exits:
                exited.set_result(self._early_exits.pop(pid))
            else:
                self._exits[pid] = exited  # the zygote reports its exit
        await terminate(
            ReplicaProcess(pid=pid, port=0, exited=exited), max(0.0, deadline - loop.time())
        )

    def _kill_spawned(self, token: str) -> None:
        pid = self._token_pid.get(token)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def close(self) -> None:
        self._closed = True
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        # Bound replicas and those still starting (loading their model: pid from "spawned").
        for pid in {*self._exits, *self._token_pid.values()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def _watch_exit(
    proc: asyncio.subprocess.Process, procs: set[asyncio.subprocess.Process]
) -> asyncio.Future[int]:
    """A future that resolves once, with the exit code, when ``proc`` ends (it leaves ``procs``)."""
    procs.add(proc)
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()

    async def watch() -> None:
        code = await proc.wait()
        procs.discard(proc)
        if not exited.done():
            exited.set_result(code)

    watcher = loop.create_task(watch())
    exited.add_done_callback(lambda _: watcher)  # keep a reference to the watcher
    return exited


async def _kill_and_wait(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def _kill_all(procs: set[asyncio.subprocess.Process]) -> None:
    for proc in list(procs):
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    procs.clear()


def free_loopback_port() -> int:
    """A port nothing listens on now; the function binds it itself a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    from autoscaler.runtime.zygote import die_with_parent

    die_with_parent()


class FunctionLauncher:
    """Runs local functions (``PredictorKind.FUNCTION``) as their own processes."""

    def __init__(self, proxy_url: str | None = None) -> None:
        self.proxy_url = proxy_url  # the ingress, for the function's outgoing cluster calls
        self._procs: set[asyncio.subprocess.Process] = set()

    async def start(self) -> None:
        return None

    def environment(self, spec: ReplicaSpec, port: int) -> dict[str, str]:
        """What the function process sees: ours, the container's env, then the local overrides."""
        env = {**_child_env(), **spec.env_dict()}
        env.update({"PORT": str(port), "LISTEN_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
        env["K_SERVICE"] = spec.model_name
        env["K_REVISION"] = spec.revision
        if self.proxy_url:
            for name in ("http_proxy", "HTTP_PROXY"):
                env[name] = self.proxy_url
            for name in ("no_proxy", "NO_PROXY"):
                env[name] = "127.0.0.1,localhost"
        return env

    async def launch(
        self,
        spec: ReplicaSpec,
        log_path: str | None = None,
        *,
        term_timeout_s: float = TERM_TIMEOUT_S,
    ) -> ReplicaProcess:
        # The process is handed back as soon as it runs (its load is waited for by its health
        # probe); one being spawned when cancelled is killed by asyncio's subprocess transport.
        if spec.predictor is not PredictorKind.FUNCTION:
            raise ReplicaStartError(f"{spec.key}: not a function replica ({spec.predictor})")
        port = free_loopback_port()
        out = open(log_path or os.devnull, "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.command,
                cwd=spec.working_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=self.environment(spec, port),
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise ReplicaStartError(f"function replica of {spec.key}: {exc}") from exc
        finally:
            out.close()
        exited = _watch_exit(proc, self._procs)
        return ReplicaProcess(pid=proc.pid, port=port, exited=exited)

    async def close(self) -> None:
        await _kill_all(self._procs)
