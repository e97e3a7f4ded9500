"""mitmproxy's console UI, driven the way a user drives it: the real ``mitmproxy -s addons/cors.py -r <capture>``
in a detached tmux session of a fixed size, keys sent with ``tmux send-keys``, the screen read with
``tmux capture-pane -p``.

- The blocked preflight's Response tab shows the "CORS" view on its own (``[m:auto]``): verdict, Chromium reason,
  the explanation, the complete fix.
- Any other flow shows it once picked in the view-mode menu (key ``m``). The menu's shortcut for "cors" differs
  between versions (mitmproxy 12 sorts the views by name: ``2``; mitmproxy 11 lists them as registered, the
  addon's last: ``l``), so the test reads it from the menu.
- ``:cors.explain @focus`` opens mitmproxy's "Data viewer" overlay with the explanation, one screen line per line.
  (The command returns one ``str``: the overlay holds one row whose cell contains the newlines; urwid draws each
  line of it on its own screen line, every one in the focused row's colours; a line wider than the overlay is cut
  into the next screen line mid-word.)

Every wait polls the screen with a timeout; each console is quit with ``q`` … ``y`` (its exit status checked) and
its tmux server killed in any case.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.e2e.ui_capture import BLOCKED_PREFLIGHT_PATH, CREDENTIALS_DEPENDENT_PATH, FLOW_ORDER, write_ui_capture
from tests.harness.mitmdump import ADDON, REPO
from tests.harness.ports import free_port

pytestmark = pytest.mark.e2e

MITMPROXY = Path(sys.executable).with_name("mitmproxy")
TMUX = "/usr/bin/tmux"
COLUMNS, ROWS = 200, 50
WAIT = 30.0
"""Seconds to wait for one change of the screen (the console's start included)."""
SETTLE = 0.2
"""Seconds a screen must stay unchanged to count as drawn."""

QUIT_PROMPT = "Quit (yes,no)?"
DATA_VIEWER = "Data viewer"
MENU_ENTRY = re.compile(r"│(\w)\) cors\s*│")
"""The view-mode menu's "cors" entry (the menu is titled "Set contentview..." on mitmproxy 12, "Mode" on 11)."""


class Console:
    """``mitmproxy`` in a detached tmux session (a private tmux server: ``tmux -L <unique>``), its exit status
    written to ``<workdir>/console.rc``, its stderr to ``<workdir>/console.stderr``."""

    def __init__(self, workdir: Path, confdir: Path, capture: Path) -> None:
        self.workdir = workdir
        self.socket = f"mitmcors-console-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.rc_path = workdir / "console.rc"
        self.stderr_path = workdir / "console.stderr"
        self.socket_path = ""
        self.command = [
            str(MITMPROXY),
            "--set",
            f"confdir={confdir}",
            "-s",
            str(ADDON),
            "-r",
            str(capture),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(free_port()),
        ]

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # a tmux around the test run is not ours
        return subprocess.run(
            [TMUX, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def start(self) -> Console:
        assert MITMPROXY.exists(), f"mitmproxy not found next to {sys.executable}"
        assert Path(TMUX).exists(), f"{TMUX} is missing: install Debian's tmux package"
        self.workdir.mkdir(parents=True, exist_ok=True)
        shell = (
            f"cd {shlex.quote(str(REPO))} && "
            f"env TERM=xterm-256color LANG=C.UTF-8 {shlex.join(self.command)} 2>{shlex.quote(str(self.stderr_path))}; "
            f"echo $? >{shlex.quote(str(self.rc_path))}"
        )
        # -f /dev/null: none of the user's tmux configuration; -u: UTF-8 whatever the locale of the test run.
        done = self.tmux(
            "-f", "/dev/null", "-u", "new-session", "-d", "-s", "console", "-x", str(COLUMNS), "-y", str(ROWS), shell
        )
        assert done.returncode == 0, f"tmux new-session failed: {done.stderr}"
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()
        return self

    def screen(self) -> str:
        """The pane's text now (empty once the session is gone)."""
        return self.tmux("capture-pane", "-p", "-t", "console").stdout

    def keys(self, *keys: str) -> None:
        """Press keys (tmux key names: ``Enter``, ``Tab``, ``Down``, ``q``…)."""
        done = self.tmux("send-keys", "-t", "console", *keys)
        assert done.returncode == 0, f"tmux send-keys {keys}: {done.stderr}"

    def type_text(self, text: str) -> None:
        """Type ``text`` literally."""
        done = self.tmux("send-keys", "-t", "console", "-l", text)
        assert done.returncode == 0, f"tmux send-keys -l {text!r}: {done.stderr}"

    def wait_for(self, what: str, ready: Callable[[str], bool], timeout: float = WAIT) -> str:
        """Poll the screen until ``ready(screen)`` and the screen stays the same for ``SETTLE`` seconds (a capture
        can catch urwid half-way through a redraw); returns that screen.

        Raises:
            AssertionError: not within ``timeout`` seconds (with the last screen and mitmproxy's stderr).
        """
        deadline = time.monotonic() + timeout
        settled = ""
        while True:
            text = self.screen()
            if ready(text):
                if text == settled:
                    return text
                settled = text
                time.sleep(SETTLE)
                continue
            settled = ""
            if self.rc_path.exists():
                raise AssertionError(f"mitmproxy exited while waiting for {what}:\n{self.diagnostics(text)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:g} s:\n{self.diagnostics(text)}")
            time.sleep(0.1)

    def diagnostics(self, text: str) -> str:
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- screen ---\n{text}\n--- mitmproxy stderr ---\n{stderr}"

    def quit(self) -> None:
        """``q`` back to the flow list, ``q``, ``y``: mitmproxy exits with status 0."""
        for _ in range(5):
            text = self.screen()
            if QUIT_PROMPT in text:
                break
            if flow_list_shown(text):
                self.keys("q")
                self.wait_for("the quit prompt", lambda s: QUIT_PROMPT in s)
                break
            self.keys("q")
            self.wait_for("a view to close", functools.partial(operator.ne, text))
        self.keys("y")
        deadline = time.monotonic() + WAIT
        while not (self.rc_path.exists() and self.rc_path.read_text().strip()):
            assert time.monotonic() < deadline, f"mitmproxy did not exit after q, y:\n{self.diagnostics(self.screen())}"
            time.sleep(0.1)
        code = self.rc_path.read_text().strip()
        assert code == "0", f"mitmproxy exited with {code}:\n{self.diagnostics('')}"

    def close(self) -> None:
        """Kill the tmux server (and with it mitmproxy, if still running); remove its socket, which tmux leaves
        behind in /tmp/tmux-<uid>/."""
        self.tmux("kill-server")
        if self.socket_path:
            Path(self.socket_path).unlink(missing_ok=True)

    def __enter__(self) -> Console:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def flow_list_shown(text: str) -> bool:
    lines = text.splitlines()
    return bool(lines) and lines[0].strip() == "Flows" and DATA_VIEWER not in text


def flow_rows(text: str) -> list[str]:
    """The flow list's rows (up to the first blank line)."""
    rows = []
    for line in text.splitlines()[1:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def focused_rows(text: str) -> list[str]:
    return [r for r in flow_rows(text) if r.startswith(">>")]


def all_flows_listed(text: str) -> bool:
    """Every flow of the capture listed, one of them focused (the console draws the rows of a capture it reads
    before it marks the focus)."""
    rows = flow_rows(text) if flow_list_shown(text) else []
    listed = len(rows) == len(FLOW_ORDER) and all(any(path in r for r in rows) for _, path in FLOW_ORDER)
    return listed and len(focused_rows(text)) == 1


def focused_row(text: str) -> str:
    focused = focused_rows(text)
    assert len(focused) == 1, text
    return focused[0]


def focus_flow(console: Console, path: str) -> None:
    """Move the flow list's focus (``>>``) to the row of ``path`` with the arrow keys."""
    text = console.wait_for("the flow list with every flow of the capture", all_flows_listed)
    rows = flow_rows(text)
    target = [i for i, r in enumerate(rows) if path in r]
    assert len(target) == 1, f"{path} in the flow list:\n{text}"
    current = rows.index(focused_row(text))
    steps = target[0] - current
    if steps:
        console.keys(*(["Down"] * steps if steps > 0 else ["Up"] * -steps))
    console.wait_for(f"the focus on {path}", lambda s: flow_list_shown(s) and any(path in r for r in focused_rows(s)))


def open_response(console: Console, path: str, showing: str) -> str:
    """Enter on the focused flow, Tab to its Response tab; returns the screen once it shows ``showing`` (the
    Request tab lists the request's Host header, the Response tab does not)."""
    console.keys("Enter")
    console.wait_for("the flow details", lambda s: s.startswith("Flow Details") and path in s)
    console.keys("Tab")
    return console.wait_for(f"the response tab showing {showing!r}", lambda s: "Host:" not in s and showing in s)


def section(text: str, start: str) -> list[str]:
    """The screen's lines from the first one starting with ``start``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    return lines[first:]


@pytest.fixture(scope="module")
def capture(confdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ui_capture(tmp_path_factory.mktemp("ui-console-capture"), confdir)


@pytest.fixture
def console(confdir: Path, capture: Path, tmp_path: Path) -> Iterator[Console]:
    with Console(tmp_path, confdir, capture) as c:
        yield c


def test_blocked_preflight_shows_the_cors_view(console: Console) -> None:
    """Flow list → the blocked preflight → Enter → Tab: its response is shown in the CORS view unasked, with the
    verdict, the Chromium reason and the explanation."""
    focus_flow(console, BLOCKED_PREFLIGHT_PATH)
    assert "OPT" in focused_row(console.screen())
    text = open_response(console, BLOCKED_PREFLIGHT_PATH, "Complete fix:")
    assert "404 Not Found" in text
    view = section(text, "CORS ")
    assert view[0].rstrip().endswith("[m:auto]"), text  # chosen automatically for a preflight's response
    head = "preflight: BLOCKED — Chromium PreflightMissingAllowOriginHeader, Firefox "
    assert view[1].startswith(head), text
    stripped = [line.strip() for line in view]
    assert "1. Classification: CORS preflight" in stripped, text
    verdict = "4. Verdict: BLOCKED — Chromium PreflightMissingAllowOriginHeader"
    assert any(line.startswith(verdict) for line in stripped), text
    assert "Complete fix:" in stripped, text
    console.quit()


def test_view_mode_menu_picks_cors_for_another_flow(console: Console) -> None:
    """The credentials-dependent GET is shown as JSON; ``m`` opens the view-mode menu, its "cors" entry (whatever
    its shortcut on this mitmproxy) switches to the CORS view: allowed, blocked if the page sends credentials."""
    focus_flow(console, CREDENTIALS_DEPENDENT_PATH)
    text = open_response(console, CREDENTIALS_DEPENDENT_PATH, '"items": []')
    assert "[m:auto]" in text and "CORS " not in text, text
    console.keys("m")
    menu = console.wait_for("the view-mode menu", lambda s: MENU_ENTRY.search(s) is not None)
    shortcut = MENU_ENTRY.findall(menu)
    assert len(shortcut) == 1, menu
    console.keys(shortcut[0])
    text = console.wait_for(
        "the CORS view", lambda s: "[m:cors]" in s and "With credentials" in s and MENU_ENTRY.search(s) is None
    )
    view = section(text, "CORS ")
    assert view[1].rstrip() == "actual: ALLOWED — blocked if the page sends credentials", text
    with_credentials = "With credentials: 'include': BLOCKED — Chromium WildcardOriginNotAllowed"
    assert any(line.strip().startswith(with_credentials) for line in view), text
    console.quit()


def test_explain_command_at_the_prompt(console: Console) -> None:
    """``:cors.explain @focus`` on the focused blocked preflight: the "Data viewer" overlay shows the explanation,
    each of its lines on a screen line of its own (in order)."""
    focus_flow(console, BLOCKED_PREFLIGHT_PATH)
    console.keys(":")
    console.wait_for("the command prompt", lambda s: any(line.rstrip() == ":" for line in s.splitlines()[-3:]))
    console.type_text("cors.explain @focus")
    console.wait_for("the typed command", lambda s: re.search(r"^: ?cors\.explain @focus\s*$", s, re.M) is not None)
    console.keys("Enter")
    text = console.wait_for("the data viewer", lambda s: DATA_VIEWER in s and "5. Preflight cache" in s)
    # The overlay's rows: the text between its box lines.
    rows = [m.group(1).rstrip() for m in re.finditer(r"│(.*?)│", text)]
    expected = [
        re.compile(rf"OPTIONS http://127\.0\.0\.1:\d+{re.escape(BLOCKED_PREFLIGHT_PATH)} → HTTP 404$"),
        re.compile(r"  1\. Classification: CORS preflight$"),
        re.compile(r"  3\. Response headers the browser checks:$"),
        re.compile(r"     access-control-allow-origin: \(absent\)$"),
        re.compile(r"  4\. Verdict: BLOCKED — Chromium PreflightMissingAllowOriginHeader, Firefox \w+$"),
    ]
    found = [[i for i, row in enumerate(rows) if pattern.match(row)] for pattern in expected]
    assert all(len(f) == 1 for f in found), "\n".join(rows)
    order = [f[0] for f in found]
    assert order == sorted(order), "\n".join(rows)  # in the explanation's order, each on its own line
    console.quit()
