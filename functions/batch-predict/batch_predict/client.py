"""The call to a KServe model server: one JSON POST with the standard library's HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InvalidModelUrl", "ModelAnswer", "ModelUnreachable", "post_json"]


@dataclass(frozen=True)
class ModelAnswer:
    status: int
    body: bytes


class ModelUnreachable(ConnectionError):
    """No HTTP answer: refused, unresolvable, reset or timed out."""

    def __init__(self, reason: str, *, timed_out: bool) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class InvalidModelUrl(ValueError):
    """The model's URL cannot be used at all (a host name with an empty or too long label,
    a malformed URL or header): a retry cannot help."""


def post_json(
    url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str], timeout_s: float
) -> ModelAnswer:
    """POST ``payload`` as JSON; the answer whatever its status, ``ModelUnreachable``, or
    ``InvalidModelUrl``."""
    try:
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return ModelAnswer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return ModelAnswer(exc.code, exc.read())
    except TimeoutError as exc:
        raise ModelUnreachable(
            f"no answer from {url} within {timeout_s} s", timed_out=True
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ValueError):
            raise InvalidModelUrl(f"cannot call {url}: {exc.reason}") from exc
        timed_out = isinstance(exc.reason, TimeoutError)
        raise ModelUnreachable(f"cannot reach {url}: {exc.reason}", timed_out=timed_out) from exc
    except OSError as exc:
        raise ModelUnreachable(f"cannot reach {url}: {exc}", timed_out=False) from exc
    except ValueError as exc:  # UnicodeError from the host name's IDNA encoding, InvalidURL
        raise InvalidModelUrl(f"cannot call {url}: {type(exc).__name__}: {exc}") from exc
