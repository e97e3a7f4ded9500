"""A real ``mitmdump -s addons/cors.py`` in a subprocess: start it on a free port and wait until it listens,
send requests through it, read its output and its report, stop it the way a user does (SIGINT), kill it.

No mitmproxy import: the suites see only what a user of the addon sees.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.harness.backend import Backend, HeaderLines
from tests.harness.client import Reply, send
from tests.harness.ports import free_port, wait_listening
from tests.harness.report import REPORT_WAIT, Report

REPO = Path(__file__).resolve().parents[2]
# The addon under test; CORS_ADDON points the suites at another copy (e.g. a mutated one).
ADDON = Path(os.environ.get("CORS_ADDON") or REPO / "addons" / "cors.py")
MITMDUMP = Path(sys.executable).with_name("mitmdump")
# The browser suite's mitmdump addon: test host names to the backend, and a control endpoint (its docstring).
HARNESS_ADDON = REPO / "tests" / "browser" / "harness_addon.py"


@dataclass
class Mitmdump:
    """``mitmdump --listen-port <free> --set confdir=… -s <scripts> --set cors_report=… <args>``, run in the
    repository, its stdout and stderr in ``<workdir>/<name>.stdout`` / ``.stderr``.

    ``scripts`` are loaded in order (``()``: a plain mitmdump); ``write_report`` adds ``cors_report``;
    ``wrapper`` is a command mitmdump runs under (e.g. ``valgrind … python``); ``preexec_fn`` runs in the child
    before it starts (e.g. CPU pinning).
    """

    workdir: Path
    args: Sequence[str] = ()
    name: str = "mitmdump"
    confdir: Path | None = None
    scripts: Sequence[Path] = (ADDON,)
    write_report: bool = True
    wrapper: Sequence[str] = ()
    preexec_fn: Callable[[], None] | None = None
    start_timeout: float = 30.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy's URL, for browsers and HTTP clients."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def report(self) -> Report:
        return Report(self.workdir / f"{self.name}.report.jsonl")

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"{self.name}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"{self.name}.stderr"

    def command(self) -> list[str]:
        listen = ["--listen-host", "127.0.0.1", "--listen-port", str(self.port)]
        report = ["--set", f"cors_report={self.report.path}"] if self.write_report else []
        return [*self.wrapper, *mitmdump_args(self.workdir, self.confdir, self.scripts, listen), *report, *self.args]

    def start(self) -> Mitmdump:
        """Start mitmdump and return once it listens.

        Raises:
            RuntimeError: it exited first or did not listen in time (with its output).
        """
        assert MITMDUMP.exists(), f"mitmdump not found next to {sys.executable}"
        for script in self.scripts:
            assert script.exists(), f"script missing: {script}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        command = self.command()
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=env,
                preexec_fn=self.preexec_fn,
            )
        try:
            wait_listening(self.port, self.proc, what=f"mitmdump ({self.name})", timeout=self.start_timeout)
        except RuntimeError as e:
            self.kill()
            raise RuntimeError(f"{e}:\n{' '.join(command)}\n{self.output()}") from None
        return self

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        """Ask mitmdump to exit the way a user does (Ctrl-C / SIGTERM) and wait; returns its exit status.

        Raises:
            RuntimeError: it ignored the signal for `timeout` seconds (it is killed).
        """
        assert self.proc is not None, "mitmdump was never started"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"mitmdump ({self.name}) ignored signal {sig}:\n{self.output()}") from None
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Mitmdump:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.kill()

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def output(self) -> str:
        """Everything it printed: stdout, then stderr."""
        return self.stdout() + self.stderr()

    def mark(self) -> tuple[int, int]:
        """A position in the output, for `output_since`."""
        return self.stdout_path.stat().st_size, self.stderr_path.stat().st_size

    def output_since(self, mark: tuple[int, int]) -> str:
        """What mitmdump printed (stdout, then stderr) after `mark`."""
        texts = []
        for path, offset in zip((self.stdout_path, self.stderr_path), mark, strict=True):
            with path.open("rb") as f:
                f.seek(offset)
                texts.append(f.read().decode("utf-8", "replace"))
        return "".join(texts)

    def send(self, method: str, url: str, headers: HeaderLines = (), body: bytes | None = None) -> Reply:
        return send(self.port, method, url, headers, body)

    def lines_for(self, path: str, count: int, timeout: float = REPORT_WAIT) -> list[dict[str, Any]]:
        """The report lines of flows to `path`, waiting until there are `count` of them."""
        return self.report.lines_for(path, count, timeout)


def mitmdump_args(workdir: Path, confdir: Path | None, scripts: Sequence[Path], extra: Sequence[str]) -> list[str]:
    """The command line shared by every mitmdump of the suites: own confdir (its CA is made once, outside the
    user's home), the scripts, then ``extra``."""
    loaded = [arg for script in scripts for arg in ("-s", str(script))]
    return [str(MITMDUMP), *extra, "--set", f"confdir={confdir or workdir / 'conf'}", *loaded]


def read_back(
    source: Path, workdir: Path, confdir: Path, name: str, extra: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], str]:
    """``mitmdump -n -r <source> -s addons/cors.py --set cors_report=…``: the report lines and the output.

    Raises:
        AssertionError: mitmdump exited with an error.
    """
    report = Report(workdir / f"{name}.report.jsonl")
    args = [
        *mitmdump_args(workdir, confdir, (ADDON,), ["-n", "-r", str(source)]),
        "--set",
        f"cors_report={report.path}",
    ]
    args += extra
    done = subprocess.run(args, capture_output=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL, check=False)
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, f"{' '.join(args)} exited with {done.returncode}:\n{output}"
    return report.lines(), output


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def browser_mitmdump(backend: Backend, work: Path, *extra: str, name: str = "mitmdump") -> Mitmdump:
    """A mitmdump (not started yet) with the CORS addon and the browser suite's harness addon routing the test
    host names to `backend`, plus ``extra`` arguments (e.g. ``--set cors_rules=…``), in ``work``."""
    assert backend.https_port is not None
    args = [
        "--set",
        "ssl_insecure=true",
        "--set",
        f"harness_http_port={backend.http_port}",
        "--set",
        f"harness_https_port={backend.https_port}",
        *extra,
    ]
    return Mitmdump(work, args, name=name, scripts=(ADDON, HARNESS_ADDON))
