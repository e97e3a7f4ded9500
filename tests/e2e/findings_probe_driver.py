"""mitmdump helper for test_e2e_findings_middleware.py, loaded with ``-s`` after addons/cors.py: runs
``cors.probe`` the way a user does (on flows they name), from the test's HTTP client.

* A request carrying ``X-Findings-Probe: 1`` is remembered; the header is removed in ``requestheaders``, before
  the CORS addon or the server sees it.
* ``http://findings.control/probe`` (answered here, never sent on): ``cors.probe`` on every remembered flow that
  has its response; the command's text is the answer.
* ``http://findings.control/results``: the CORS addon's probe results so far (``prober.results``) as JSON,
  ``{probed flow id: ProbeResult.as_dict()}``.
"""

from __future__ import annotations

import json
from typing import Any

from mitmproxy import ctx, exceptions, http

MARK = "X-Findings-Probe"
CONTROL_HOST = "findings.control"


class FindingsProbeDriver:
    def __init__(self) -> None:
        self.marked: list[http.HTTPFlow] = []

    def requestheaders(self, f: http.HTTPFlow) -> None:
        if MARK in f.request.headers:
            del f.request.headers[MARK]
            self.marked.append(f)

    def request(self, f: http.HTTPFlow) -> None:
        if f.request.pretty_host != CONTROL_HOST:
            return
        if f.request.path == "/probe":
            ready = [x for x in self.marked if x.response is not None]
            self.marked = [x for x in self.marked if x.response is None]
            try:
                text = str(ctx.master.commands.call("cors.probe", ready))
                status = 200
            except exceptions.CommandError as e:
                text, status = str(e), 409
            f.response = http.Response.make(status, text.encode(), {"Content-Type": "text/plain"})
        elif f.request.path == "/results":
            cors: Any = ctx.master.addons.get("corsaddon")  # type: ignore[no-untyped-call]
            body = json.dumps(dict(cors.prober.results.items()))
            f.response = http.Response.make(200, body.encode(), {"Content-Type": "application/json"})
        else:
            f.response = http.Response.make(404, b"", {})


addons = [FindingsProbeDriver()]
