"""A loopback stand-in for the Hugging Face Hub's HTTP API: what huggingface_hub 2.x calls to create a
repo, commit regular (non-LFS) files and download them, and nothing more. Served on 127.0.0.1 by a test.

Endpoints (see shared/notes/timm-and-hub.md): ``GET /api/whoami-v2``, ``POST /api/repos/create``,
``POST /api/validate-yaml``, ``POST /api/models/{ns}/{name}/preupload/{rev}`` (regular upload mode, the
stored file's git oid so unchanged files are left out), ``POST /api/models/{ns}/{name}/commit/{rev}``
(NDJSON, base64 contents), ``GET /api/models/{ns}/{name}/revision/{rev}`` and
``HEAD``/``GET /{ns}/{name}/resolve/{rev}/{path}``.
"""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandIn:
    """``with HubStandIn(tokens={"tok": ("user", ["org"])}) as hub:`` serves at ``hub.url``; ``hub.repos``
    maps ``ns/name`` to ``{"files": {path: bytes}, "commits": [oid, ...]}``."""

    def __init__(self, tokens):
        self.tokens, self.repos, self.requests = tokens, {}, []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body=b"", headers=None, head=False):
                if isinstance(body, (dict, list)):
                    body, headers = json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _user(self):
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return hub.tokens.get(token)

            def _body(self):
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self, head=False):
                hub.requests.append(("GET" if not head else "HEAD", self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:2] == ["api", "whoami-v2"]:
                    user = self._user()
                    if user is None:
                        return self._send(401, {"error": "Invalid credentials"})
                    return self._send(200, {"type": "user", "name": user[0], "orgs": [{"name": o} for o in user[1]]})
                if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
                    repo = hub.repos.get(f"{parts[2]}/{parts[3]}")
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    return self._send(200, {"id": f"{parts[2]}/{parts[3]}", "sha": repo["commits"][-1],
                                            "siblings": [{"rfilename": p} for p in sorted(repo["files"])]})
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo = hub.repos.get(f"{parts[0]}/{parts[1]}")
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"},
                                          head)
                    data = repo["files"].get("/".join(parts[4:]))
                    if data is None:
                        return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}, head)
                    return self._send(200, data, {"X-Repo-Commit": repo["commits"][-1], "ETag": f'"{git_oid(data)}"',
                                                  "Content-Type": "application/octet-stream"}, head)
                return self._send(404, {"error": f"not served by the stand-in: {self.path}"})

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_POST(self):
                hub.requests.append(("POST", self.path))
                parts, body = self.path.split("?")[0].strip("/").split("/"), self._body()
                user = self._user()
                if user is None:
                    return self._send(401, {"error": "Invalid credentials"})
                if parts == ["api", "validate-yaml"]:
                    return self._send(200, {"errors": [], "warnings": []})
                if parts == ["api", "repos", "create"]:
                    request = json.loads(body)
                    ns = request.get("organization") or user[0]
                    if ns != user[0] and ns not in user[1]:
                        return self._send(403, {"error": f"You don't have the rights to create a model under {ns}"})
                    repo_id = f"{ns}/{request['name']}"
                    if repo_id in hub.repos:
                        return self._send(409, {"error": "You already created this model repo", "url": f"{hub.url}/{repo_id}"})
                    hub.repos[repo_id] = {"files": {}, "commits": [git_oid(repo_id.encode())]}
                    return self._send(200, {"url": f"{hub.url}/{repo_id}"})
                repo_id = "/".join(parts[2:4])
                repo = hub.repos.get(repo_id)
                if parts[:2] != ["api", "models"] or repo is None:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                         "oid": git_oid(repo["files"][f["path"]]) if f["path"] in repo["files"] else None}
                        for f in files]})
                if parts[4] == "commit":
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            repo["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    oid = hashlib.sha1(json.dumps(sorted((p, git_oid(d)) for p, d in repo["files"].items()))
                                       .encode() + repo["commits"][-1].encode()).hexdigest()
                    repo["commits"].append(oid)
                    return self._send(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid})
                return self._send(404, {"error": f"not served by the stand-in: {self.path}"})

        return Handler
