"""Everything the addon writes about a judged flow: the annotation, the comment and marker, the log line,
the report line and the summary at exit."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from mitmproxy import http

from mitmcors.annotation import MAX_REQUEST_IDS, CorsAnnotation, render
from mitmcors.evaluator import Kind
from mitmcors.redact import redact_url
from mitmcors.report import Report, Summary
from mitmcors.state import FlowState

logger = logging.getLogger(__name__)

BLOCKED_MARKER = ":no_entry:"
# Allowed as seen, blocked if the request was credentialed (`credentials: 'include'` with no cookie stored yet,
# e.g. a login): the wire cannot tell which, so the flow is flagged for a look.
CREDENTIALS_MARKER = ":warning:"
LOG_CHOICES = ("all", "blocked", "off")  # "blocked" also logs the credentials-dependent flows
FAIL_ON_CHOICES = ("", "blocked", "ambiguous")
# A passing preflight's report line waits up to REPORT_HOLD seconds for the request it announces (browsers
# send it within milliseconds), so that the line lists it in `request_ids`; held lines are flushed every
# FLUSH_INTERVAL seconds. A report line is therefore written at most REPORT_LATENCY seconds after its flow.
REPORT_HOLD = 1.5
FLUSH_INTERVAL = 0.5
REPORT_LATENCY = REPORT_HOLD + FLUSH_INTERVAL


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str, limit: int = 300) -> str:
    """One log line's worth of `text`: control characters (a newline from the wire would forge a second log
    line) escaped, and at most `limit` characters."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Output:
    """Publishes judged flows. Holds the report file, the summary and the preflight lines on hold."""

    def __init__(self) -> None:
        self.report: Report | None = None
        self.summary = Summary()
        self.log_mode = "all"
        self.log_level = logging.INFO  # the lowest level anyone displays (see CorsAddon.configure)
        self._held: dict[str, tuple[float, FlowState]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def open_report(self, spec: str) -> None:
        """Write the report to `spec` (`+path` appends); "" turns it off. Raises OSError."""
        self.close_report()
        if spec:
            self.report = Report(spec)

    def close_report(self) -> None:
        if self.report is not None:
            self.report.close()
            self.report = None

    def done(self, finding_counts: dict[str, int] | None = None) -> None:
        """The proxy stops: write every held line, the summary (log and file), and close the report."""
        self.flush(None)
        self.summary.findings = dict(finding_counts or {})
        if self.summary.kinds:
            logger.info(self.summary.line())
        if self.report is not None:
            path = self.report.path.with_name(self.report.path.name + ".summary.json")
            try:
                path.write_text(json.dumps(self.summary.as_dict(), indent=2) + "\n")
            except OSError as e:
                logger.warning("mitmcors: cannot write the summary %s: %s", path, e)
        self.close_report()

    # -- per flow --------------------------------------------------------------------------------

    def publish(self, f: http.HTTPFlow, state: FlowState, now: float, again: bool = False) -> CorsAnnotation:
        """A flow was judged: annotate, comment, mark, count, log and report it. `again`: the flow was
        published before and is judged anew (a never-sent request whose preflight turned up later): its count,
        and its report line if still held, are replaced."""
        previous = f.metadata.get("cors") or {}
        if again and previous:
            self.summary.add(previous, -1)
            self._held.pop(state.flow_id, None)
        annotation = render(state)
        f.metadata["cors"] = annotation
        cross_origin = annotation["kind"] in (Kind.PREFLIGHT, Kind.ACTUAL)
        if cross_origin and (not f.comment or f.comment == previous.get("message")):
            f.comment = annotation["message"]
        if annotation["verdict"] == "blocked":
            f.marked = BLOCKED_MARKER
        elif annotation["credentials_dependent"]:
            f.marked = CREDENTIALS_MARKER
        elif f.marked in (BLOCKED_MARKER, CREDENTIALS_MARKER):
            f.marked = ""
        self.summary.add(annotation)
        if cross_origin:
            self._log(state, annotation)
        if self.report is not None:
            self.flush(now)
            if state.verdict is not None and (
                (state.verdict.preflight is not None and not state.verdict.blocked)
                or (state.browser_failed and state.stopped_by is None)  # its preflight may come after it
            ):
                earlier = self._held.pop(state.flow_id, None)
                if earlier is not None:  # the same flow again (a replay): its first line is not lost
                    self._write(earlier[1])
                self._held[state.flow_id] = (now + REPORT_HOLD, state)
            else:
                self._write(state, annotation)
        return annotation

    def covered(self, preflight: FlowState, request_id: str, judged_anew: bool = False) -> None:
        """A request was let through by `preflight`: list it there (annotation and held report line).
        `judged_anew`: what the preflight's annotation says changed too (its credentials mode became known)."""
        preflight.requests_covered += 1
        if preflight.requests_covered <= MAX_REQUEST_IDS:
            preflight.request_ids.append(request_id)
        if preflight.verdict is not None:
            shown = preflight.metadata.get("cors")
            if judged_anew or not isinstance(shown, dict) or shown.get("kind") != "preflight":
                preflight.metadata["cors"] = render(preflight)
            else:  # only its links grew (a page re-using a cached preflight does this on every request)
                shown["request_ids"] = list(preflight.request_ids)
                shown["requests_covered"] = preflight.requests_covered
        held = self._held.pop(preflight.flow_id, None)
        if held is not None:
            self._write(held[1])

    def tick(self, now: float) -> None:
        """Periodically: re-create a report file deleted under us, and write held lines whose wait is over."""
        if self.report is not None and self.report.check():
            logger.warning("mitmcors: the cors_report file %s was removed; writing a new one", self.report.path)
        self.flush(now)

    def flush(self, now: float | None) -> None:
        """Write held preflight lines whose wait is over (all of them when `now` is None)."""
        if not self._held:
            return
        for flow_id, (deadline, state) in list(self._held.items()):
            if now is None or deadline <= now:
                del self._held[flow_id]
                self._write(state)

    # -- writers ---------------------------------------------------------------------------------

    def _write(self, state: FlowState, annotation: CorsAnnotation | None = None) -> None:
        if self.report is None:
            return
        line: dict[str, Any] = {
            "flow_id": state.flow_id,
            "method": state.request.method,
            "url": redact_url(state.url),
            "timestamp": state.timestamp,
            **(annotation or render(state)),
        }
        try:
            self.report.write(line)
        except (OSError, ValueError) as e:
            logger.warning("mitmcors: cannot write to cors_report: %s", e)

    def failing(self, fail_on: str) -> int:
        """How many flows make `cors_fail_on` fail the run: blocked ones, and with "ambiguous" also those that
        are blocked only if credentialed."""
        if not fail_on:
            return 0
        d = self.summary.as_dict()
        return int(d["blocked"]) + (int(d["credentials_dependent"]) if fail_on == "ambiguous" else 0)

    def _log(self, state: FlowState, a: CorsAnnotation) -> None:
        blocked = a["verdict"] == "blocked"
        flagged = blocked or a["credentials_dependent"]
        if (logging.WARNING if flagged else logging.INFO) < self.log_level:
            return  # nobody would see it (e.g. mitmdump -q): skip the formatting and the log fan-out
        if self.log_mode == "off" or (self.log_mode == "blocked" and not flagged):
            return
        what = "preflight" if a["kind"] == Kind.PREFLIGHT else printable(state.request.method, 20)
        head = (
            f"CORS {'BLOCKED' if blocked else 'allowed'} {what} {printable(redact_url(state.url))} "
            f"from {printable(a['origin'])}"
        )
        if blocked:
            assert state.verdict is not None
            fix = state.fix.describe() if state.fix is not None else state.verdict.outcome.fix
            detail = f"{a['reason'] or 'no CORS reason'} (Firefox: {a['firefox_reason'] or 'no CORS reason'})"
            logger.warning(printable(f"{head}: {detail}" + (f" — fix: {fix}" if fix else ""), 2000))
            return
        extra = []
        if a["preflight_id"]:
            extra.append("cached preflight" if a.get("preflight_cached") else "after preflight")
        if a["rule"]:
            up = a["upstream"]
            server = (up["reason"] or up["verdict"]) if up else None
            extra.append(f"rule {a['rule']!r}; the server alone: {server or 'not asked'}")
        extra += [printable(w, 120) for w in a["warnings"]]
        if a["credentials_dependent"] and a["if_credentials"]:
            alternative = a["if_credentials"]["reason"] or a["if_credentials"]["firefox_reason"]
            extra.insert(0, f"BLOCKED if the page asked for credentials ('include'): {alternative}")
            logger.warning(printable(head + f" ({'; '.join(extra)})", 2000))
            return
        logger.info(printable(head + (f" ({'; '.join(extra)})" if extra else ""), 2000))
