"""A minimal test double of the Hugging Face Hub HTTP API, served on 127.0.0.1.

It stands in for the real Hub service (https://huggingface.co) in tests, which run without
network. It implements only the endpoints that huggingface_hub's ``HfApi.create_repo``,
``create_branch``, ``upload_folder`` (regular uploads: pre-upload + NDJSON commit, with Xet
disabled) and ``hf_hub_download`` (HEAD/GET of ``/{repo}/resolve/{revision}/{file}``) call, with
the headers the client relies on (``X-Repo-Commit``, ``ETag``, ``X-Error-Code``). Repositories
live in memory; every request is recorded in ``HubDouble.requests`` for assertions.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/branch/(?P<rev>[^/]+)$"), "branch"),
    ("HEAD", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("GET", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


class HubDouble:
    """The in-memory Hub: ``repos[repo_id] = {"private", "branches": {name: sha}, "commits": {sha: files}}``."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "HubDouble":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at branch ``revision``."""
        repo = self.repos[repo_id]
        return repo["commits"][repo["branches"][revision]]


class _Handler(BaseHTTPRequestHandler):
    hub: HubDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes | dict = b"", headers: dict | None = None, head: bool = False) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, head: bool = False, **headers) -> None:
        self._send(status, {"error": code}, {"X-Error-Code": code, **headers}, head=head)

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        body = self._body() if method == "POST" else b""
        record = {"method": method, "path": unquote(path), "authorization": self.headers.get("authorization"),
                  "body": body}
        self.hub.requests.append(record)
        for verb, pattern, name in _ROUTES:
            match = pattern.match(path) if verb == method else None
            if match:
                args = {k: unquote(v) for k, v in match.groupdict().items()}
                with self.hub.lock:
                    return getattr(self, name)(body=body, head=method == "HEAD", **args)
        self._send(404, {"error": f"the Hub test double does not implement {method} {path}"}, head=method == "HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- endpoints -------------------------------------------------------------------------------
    def create_repo(self, body: bytes, head: bool) -> None:
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.hub.repos:
            return self._error(409, "RepoAlreadyExists")
        sha = hashlib.sha1(repo_id.encode()).hexdigest()
        self.hub.repos[repo_id] = {"private": payload.get("visibility") == "private", "branches": {"main": sha},
                                   "commits": {sha: {}}}
        self._send(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def validate_yaml(self, body: bytes, head: bool) -> None:
        self._send(200, {"errors": [], "warnings": []})

    def _branch(self, repo: str, rev: str, head: bool = False) -> str | None:
        if repo not in self.hub.repos:
            self._error(404, "RepoNotFound", head=head)
            return None
        sha = self.hub.repos[repo]["branches"].get(rev, rev if rev in self.hub.repos[repo]["commits"] else None)
        if sha is None:
            self._error(404, "RevisionNotFound", head=head)
        return sha

    def preupload(self, repo: str, rev: str, body: bytes, head: bool) -> None:
        if self._branch(repo, rev) is not None:
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                     for f in json.loads(body)["files"]]
            self._send(200, {"files": files})

    def branch(self, repo: str, rev: str, body: bytes, head: bool) -> None:
        start = self._branch(repo, json.loads(body or b"{}").get("startingPoint") or "main")
        if start is not None:
            if rev in self.hub.repos[repo]["branches"]:
                return self._error(409, "BranchAlreadyExists")
            self.hub.repos[repo]["branches"][rev] = start
            self._send(200, {})

    def commit(self, repo: str, rev: str, body: bytes, head: bool) -> None:
        parent = self._branch(repo, rev)
        if parent is None:
            return
        files = dict(self.hub.repos[repo]["commits"][parent])
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
            elif item["key"] != "header":
                return self._send(400, {"error": f"the Hub test double does not support {item['key']!r}"})
        sha = hashlib.sha1(parent.encode() + json.dumps(sorted((k, hashlib.sha256(v).hexdigest())
                                                               for k, v in files.items())).encode()).hexdigest()
        self.hub.repos[repo]["commits"][sha] = files
        self.hub.repos[repo]["branches"][rev] = sha
        self._send(200, {"commitUrl": f"{self.hub.url}/{repo}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None})

    def resolve(self, repo: str, rev: str, path: str, body: bytes, head: bool) -> None:
        sha = self._branch(repo, rev, head=head)
        if sha is None:
            return
        data = self.hub.repos[repo]["commits"][sha].get(path)
        if data is None:
            return self._error(404, "EntryNotFound", head=head, **{"X-Repo-Commit": sha})
        etag = hashlib.sha256(data).hexdigest()
        self._send(200, data, {"ETag": f'"{etag}"', "X-Repo-Commit": sha,
                               "Content-Type": "application/octet-stream"}, head=head)
