"""Talking to a Kubernetes API with the official client: informers, retries, leader election,
and the tuner's controller. The same code runs in a cluster and against one-machine mode's
embedded API server."""
