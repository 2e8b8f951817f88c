"""Trace readers: Azure Functions 2019, Azure LLM inference 2023 and plain CSV, to a Workload."""

from autoscaler.sim.traces.azure_functions import read_azure_functions
from autoscaler.sim.traces.azure_llm import llm_service_s, read_azure_llm
from autoscaler.sim.traces.csv_trace import read_csv_trace
from autoscaler.sim.traces.workload import ModelTrace, TraceError, TraceSlice, Workload

FORMATS = ("azure-functions", "azure-llm", "csv")

__all__ = [
    "FORMATS",
    "ModelTrace",
    "TraceError",
    "TraceSlice",
    "Workload",
    "llm_service_s",
    "read_azure_functions",
    "read_azure_llm",
    "read_csv_trace",
]
