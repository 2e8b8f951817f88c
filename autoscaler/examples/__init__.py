"""Example models for the one-machine demo and the tests.

- ``build``: trains the scikit-learn iris classifier and writes ``<out>/iris/model.joblib``.
- ``capacity``: ``CapacityLimitedModel``, a ``kserve.Model`` that behaves like a model bound to a
  device with a fixed number of parallel slots (the "GPU-bound model").
"""
