"""Talking to a Kubernetes API with the official client: informers, retries, leader election,
and the tuner's controller. The same code runs in a cluster and against one-machine mode's
embedded API server.

- ``controller``: ``Controller`` (``tick(now_s)``, ``run()``, ``stop()``), the driver;
  ``reconciler``: one model per tick; ``model``: plan, memory, conditions (pure);
  ``world``: serving revisions and values in force (pure); ``apply``: the three ways to write;
  ``scaler_status``: the ModelScaler status (pure); ``notify``: Events and CloudEvents;
  ``telemetry``: Prometheus metrics and health endpoints; ``jsonlog``: JSON-lines logs;
  ``settings``, ``kubeconfig``, ``endpoints``.
- ``informer``, ``leader``, ``retry``: list+watch caches, Lease election, backoff.
- Commands: ``cli`` (``modelscale controller``), ``explain``, ``status``.

Nothing is re-exported here, so a command's ``--help`` does not import the Kubernetes client.
"""
