"""Which Kubernetes API the commands talk to: a kubeconfig or the in-cluster service account.

The default kubeconfig is ``$KUBECONFIG``, then ``.data/kubeconfig`` in the current directory
(what ``modelscale up`` writes), then ``~/.kube/config``; inside a pod with none of these, the
in-cluster configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_kubeconfig(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> Path | None:
    env = os.environ if env is None else env
    explicit = env.get("KUBECONFIG")
    if explicit:
        return Path(explicit.split(os.pathsep)[0])
    local = (cwd or Path.cwd()) / ".data" / "kubeconfig"
    if local.is_file():
        return local
    user = (home or Path.home()) / ".kube" / "config"
    if user.is_file():
        return user
    return None


class NoKubeconfig(RuntimeError):
    """Neither a kubeconfig nor an in-cluster service account was found."""


def api_client(kubeconfig: str | Path | None = None) -> Any:
    """A configured ``kubernetes.client.ApiClient``."""
    from kubernetes import client, config

    path = Path(kubeconfig) if kubeconfig else default_kubeconfig()
    configuration = client.Configuration()
    if path is not None:
        if not path.is_file():
            raise NoKubeconfig(f"kubeconfig {path} does not exist")
        config.load_kube_config(config_file=str(path), client_configuration=configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        raise NoKubeconfig(
            "no kubeconfig: set --kubeconfig or $KUBECONFIG, run `modelscale up` here "
            "(it writes .data/kubeconfig), or create ~/.kube/config"
        )
    return client.ApiClient(configuration)


def own_namespace(default: str = "default") -> str:
    """The namespace this pod runs in, when in a cluster; else ``default``."""
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or default
    except OSError:
        return default
