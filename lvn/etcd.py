"""etcd v3 through its JSON gateway, with the standard library only.

The servers' shared state (docs/servers.md) lives in etcd.  The gateway
(``POST /v3/kv/range``, ``/v3/kv/txn``, ...) is part of every etcd 3.4+
member, speaks JSON with base64 keys and values, and needs nothing but
``http.client`` here.  The clients on PyPI cost more than this file
(docs/servers.md): etcd3 (last release 2020) brings grpcio and protobuf,
etcd3gw requests, futurist, pbr and setuptools; OpenWrt packages none.
Several endpoints (the members of a cluster) are tried in turn; an
endpoint that fails is tried last next time.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

from . import LvnError


class EtcdUnavailable(LvnError):
    """No endpoint answered (or each answered with an error)."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with ``prefix``."""
    raw = prefix.encode()
    return (raw[:-1] + bytes([raw[-1] + 1])).decode()


def _kv(d: dict[str, Any]) -> KeyValue:
    return KeyValue(_text(d["key"]), _text(d.get("value", "")),
                    int(d.get("create_revision", 0)), int(d.get("mod_revision", 0)))


# Compare and request builders for txn(): plain dicts in the gateway's JSON.
def absent(key: str) -> dict[str, Any]:
    """The key does not exist."""
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def unchanged(kv: KeyValue | None, key: str) -> dict[str, Any]:
    """The key is as read (``kv``), or still absent when ``kv`` is None."""
    if kv is None:
        return absent(key)
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL",
            "mod_revision": str(kv.mod_revision)}


def holds(key: str, value: str) -> dict[str, Any]:
    """The key exists and has ``value``."""
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def put(key: str, value: str, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def delete(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


class Etcd:
    def __init__(self, endpoints: list[str] | tuple[str, ...], timeout: float = 2.0) -> None:
        """``endpoints``: "http://host:port" of the cluster's members."""
        if not endpoints:
            raise LvnError("etcd: no endpoint configured")
        self.endpoints = [_endpoint(e) for e in endpoints]
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        errors = []
        for host, port in list(self.endpoints):
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            try:
                conn.request("POST", path, json.dumps(body),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status == 200:
                    answer = json.loads(data)
                    if isinstance(answer, dict):
                        return answer
                    errors.append(f"{host}:{port}: not a JSON object")
                else:
                    errors.append(f"{host}:{port}: HTTP {resp.status} {_message(data)}")
            except (OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{host}:{port}: {_reason(e)}")
            finally:
                conn.close()
            # this one failed: the next call tries the others first
            self.endpoints.append(self.endpoints.pop(0))
        raise EtcdUnavailable(f"etcd unreachable ({'; '.join(errors)})")

    def get(self, key: str) -> KeyValue | None:
        kvs = self._post("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> list[KeyValue]:
        answer = self._post("/v3/kv/range", {"key": _b64(prefix),
                                             "range_end": _b64(prefix_end(prefix))})
        return [_kv(d) for d in answer.get("kvs", [])]

    def put(self, key: str, value: str, lease: int = 0) -> None:
        """Write ``key``; with ``lease``, it goes when the lease expires."""
        self._post("/v3/kv/put", put(key, value, lease)["request_put"])

    def lease_grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds: its id."""
        answer = self._post("/v3/lease/grant", {"TTL": str(ttl)})
        try:
            return int(answer["ID"])
        except (KeyError, ValueError):
            raise EtcdUnavailable(f"etcd granted no lease ({str(answer)[:200]})") from None

    def lease_revoke(self, lease: int) -> None:
        """End ``lease`` now: its keys go."""
        self._post("/v3/lease/revoke", {"ID": str(lease)})

    def lease_keepalive(self, lease: int) -> int:
        """Renew ``lease``: the seconds it has now, 0 if it has expired."""
        result = self._post("/v3/lease/keepalive", {"ID": str(lease)}).get("result", {})
        try:
            return max(0, int(result.get("TTL", 0)))
        except (TypeError, ValueError, AttributeError):
            return 0

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]) -> bool:
        """Whether every comparison held (and ``success`` was applied)."""
        answer = self._post("/v3/kv/txn", {"compare": compare, "success": success})
        return bool(answer.get("succeeded", False))


def _endpoint(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url if "//" in url else f"http://{url}")
    if parsed.scheme != "http" or not parsed.hostname:
        raise LvnError(f"etcd endpoint {url!r}: expected http://host:port")
    try:
        return parsed.hostname, parsed.port or 2379
    except ValueError:
        raise LvnError(f"etcd endpoint {url!r}: bad port") from None


def _message(data: bytes) -> str:
    try:
        return str(json.loads(data).get("message", ""))[:200]
    except (ValueError, AttributeError):
        return data[:200].decode(errors="replace")


def _reason(e: Exception) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
