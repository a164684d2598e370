"""A local stand-in for Zenodo: record JSON and file downloads on 127.0.0.1, with injectable faults.

Only what the download stage relies on: ``GET /api/records/<id>`` answers the record shape of Zenodo's REST API
(``files: [{key, size, checksum: "md5:...", links: {self}}]``) and ``GET /files/<id>/<key>`` serves the bytes with
``Range`` support. Per-file faults reproduce what real transfers meet: a dropped connection (clean close or reset)
mid-file, error statuses before success, a server that ignores ``Range``, a corrupted byte, a stall.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Served:
    """One file of a record and the faults to inject (each fault fires once, on the first request it applies to)."""

    data: bytes
    checksum: str | None = None  # default: the md5 of ``data``
    drop_after: int | None = None  # close the connection after this many body bytes
    reset: bool = False  # drop with a TCP reset instead of a clean close
    fail_with: list[int] = field(default_factory=list)  # statuses answered, in order, before serving
    ignore_range: bool = False  # always answer 200 with the whole file
    corrupt_at: int | None = None  # flip this byte in what is served (the record keeps the true checksum)
    stall_s: float = 0.0  # wait this long after sending ``stall_after`` body bytes
    stall_after: int = 0

    def __post_init__(self) -> None:
        if self.checksum is None:
            self.checksum = "md5:" + hashlib.md5(self.data).hexdigest()


class ZenodoServer:
    """``with ZenodoServer() as server:`` runs it in a thread; ``server.api_url`` is the API base to use."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Served]] = {}
        self.api_fail_with: list[int] = []  # statuses the record API answers, in order, before the record
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header) of every request
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.zenodo = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def add_record(self, record_id: str, files: dict[str, bytes | Served]) -> None:
        self.records[record_id] = {
            name: served if isinstance(served, Served) else Served(served) for name, served in files.items()
        }

    def file_url(self, record_id: str, name: str) -> str:
        return f"{self.base_url}/files/{record_id}/{name}"

    def record_json(self, record_id: str) -> dict[str, Any]:
        files = [
            {
                "id": f"{record_id}-{index}",
                "key": name,
                "size": len(served.data),
                "checksum": served.checksum,
                "links": {"self": self.file_url(record_id, name)},
            }
            for index, (name, served) in enumerate(self.records[record_id].items())
        ]
        return {"id": int(record_id), "metadata": {"title": f"record {record_id}"}, "files": files}

    def log(self, path: str, range_header: str | None) -> None:
        with self._lock:
            self.requests.append((path, range_header))

    def __enter__(self) -> ZenodoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    zenodo: ZenodoServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are the point of some tests; keep the output clean


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        zenodo = self.server.zenodo
        zenodo.log(self.path, self.headers.get("Range"))
        if match := re.fullmatch(r"/api/records/(\d+)", self.path):
            if zenodo.api_fail_with:
                self._fail(zenodo.api_fail_with.pop(0))
                return
            if match[1] not in zenodo.records:
                self.send_error(404, "record not found")
                return
            self._send(200, json.dumps(zenodo.record_json(match[1])).encode(), "application/json")
            return
        match = re.fullmatch(r"/files/(\d+)/([^/]+)", self.path)
        served = zenodo.records.get(match[1], {}).get(match[2]) if match else None
        if served is None:
            self.send_error(404, "file not found")
            return
        self._serve_file(served)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fail(self, status: int) -> None:
        """An error status as Zenodo sends it when overloaded or rate-limiting: with ``Retry-After``."""
        body = b'{"status": %d}' % status
        self.send_response(status)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve_file(self, served: Served) -> None:
        if served.fail_with:
            self._fail(served.fail_with.pop(0))
            return
        data = bytearray(served.data)
        if served.corrupt_at is not None:
            data[served.corrupt_at] ^= 0xFF
        start, status = 0, 200
        requested = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if requested and not served.ignore_range:
            start, status = int(requested[1]), 206
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        body = bytes(data[start:])
        if served.stall_s:
            stall, served.stall_s = served.stall_s, 0.0
            self.wfile.write(body[: served.stall_after])
            self.wfile.flush()
            time.sleep(stall)
            body = body[served.stall_after :]
        if served.drop_after is not None:
            count, served.drop_after = served.drop_after, None
            self.wfile.write(body[:count])
            self.wfile.flush()
            self._drop(reset=served.reset)
            return
        self.wfile.write(body)

    def _drop(self, *, reset: bool) -> None:
        self.close_connection = True
        if reset:
            # Linger 0: close() sends a TCP reset, the client sees ConnectionResetError.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
