"""The installed package runs mitmproxy's tools with the addon, without a checkout's addons/cors.py (#10).

`python -m mitmcors` from the test virtualenv, and the README's installs from a fresh machine: `uv tool install`
of this repository (then one `mitmcors mitmdump …` command judges a capture), and `uv tool install mitmproxy
--with-executables-from "mitmcors @ <repo>"`. Each uv install goes into temporary tool and bin directories, from a
copy of the working tree without its build leftovers (as a fresh clone has it); the download cache lives in the
test virtualenv (`<venv>/uv-cache`), so only the first run fetches mitmproxy from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from mitmproxy import io

from tests.harness.mitmdump import REPO
from tests.hostile import HostileFlow

pytestmark = pytest.mark.e2e

RULES = REPO / "rules"
UV_TIMEOUT = 300  # a cold cache downloads mitmproxy and its dependencies (about 10 s here)
RUN_TIMEOUT = 60


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved capture of one cross-origin GET whose response lacks Access-Control-Allow-Origin."""
    path = tmp_path_factory.mktemp("capture") / "one.mitm"
    blocked = HostileFlow(
        b"GET",
        b"http://app.localhost:5173",
        ((b"Sec-Fetch-Mode", b"cors"),),
        200,
        (),
        b"OK",
        None,
        1.0,
        b"/x",
        True,
        False,
    )
    with path.open("wb") as f:
        io.FlowWriter(f).add(blocked.build())
    return path


def judge(command: Sequence[str | Path], capture: Path, confdir: Path, workdir: Path) -> tuple[dict, str]:
    """Run `<command> -n -r <capture> --set confdir=… --set cors_report=…`: its one report line and its output."""
    report = workdir / "report.jsonl"
    args = [*command, "-n", "-r", capture, "--set", f"confdir={confdir}", "--set", f"cors_report={report}"]
    done = run(args, workdir)
    (line,) = [json.loads(x) for x in report.read_text().splitlines()]
    return line, done.stdout


def run(args: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command outside the test virtualenv (no PYTHONPATH, no VIRTUAL_ENV) and require success."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_python_m_mitmcors_runs_mitmdump_with_the_addon(tmp_path: Path, confdir: Path, capture: Path) -> None:
    """`python -m mitmcors mitmdump -nr capture …` judges the capture: the script comes from the package."""
    line, _ = judge([sys.executable, "-m", "mitmcors", "mitmdump"], capture, confdir, tmp_path)
    assert (line["verdict"], line["reason"]) == ("blocked", "MissingAllowOriginHeader")


def test_script_path_is_printed() -> None:
    """`python -m mitmcors --script` prints the addon script inside the package, for mitmproxy's -s."""
    out = subprocess.run([sys.executable, "-m", "mitmcors", "--script"], capture_output=True, text=True, cwd=REPO)
    path = Path(out.stdout.strip())
    assert path.name == "script.py" and path.exists()
    assert "addons = [CorsAddon()]" in path.read_text()


def test_examples_in_a_checkout_are_the_rules_directory() -> None:
    """From a checkout (an editable install), `python -m mitmcors --examples` prints the top-level rules/."""
    out = subprocess.run([sys.executable, "-m", "mitmcors", "--examples"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == RULES


# -- installs without a checkout: uv tool install ------------------------------------------------------------------


def uv_bin() -> str:
    """uv's binary from the `uv` wheel of the test extra; skips when that is not installed."""
    uv = pytest.importorskip("uv", reason="uv is not installed: it comes with the test extra, pip install -e '.[test]'")
    try:
        return str(uv.find_uv_bin())
    except FileNotFoundError as e:
        pytest.skip(f"the uv package is installed without its binary: {e}")


def checkout_copy(dst: Path) -> Path:
    """The working tree as a fresh clone has it: a uv build writes build/ and *.egg-info into its source, and a
    stale build/lib would reach the wheel."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules"
    )
    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    return dst


def uv_tool_install(root: Path, *args: str) -> Path:
    """`uv tool install --python <this Python> ARGS`, tool and bin directories under root: the bin directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"UV_TOOL_DIR": str(root / "tools"), "UV_TOOL_BIN_DIR": str(root / "bin"), "UV_PYTHON_DOWNLOADS": "never"}
    env["UV_NO_PROGRESS"] = "1"
    if sys.prefix != sys.base_prefix:  # keep the download cache with the test virtualenv; else uv's default cache
        env["UV_CACHE_DIR"] = str(Path(sys.prefix) / "uv-cache")
    # --compile-bytecode: the .pyc are written once here, not at each command's first run (about 2 s each)
    command = [uv_bin(), "tool", "install", "--compile-bytecode", "--python", sys.executable, *args]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=root, env=env, timeout=UV_TIMEOUT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return root / "bin"


@pytest.fixture(scope="module")
def mitmcors_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv tool install <checkout>`: the bin directory holding `mitmcors` (mitmproxy comes as a dependency)."""
    uv_bin()
    root = tmp_path_factory.mktemp("uv-tool")
    return uv_tool_install(root, str(checkout_copy(root / "mitmcors")))


@pytest.fixture(scope="module")
def mitmproxy_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv tool install mitmproxy --with-executables-from "mitmcors @ <checkout>"`: the bin directory."""
    uv_bin()
    root = tmp_path_factory.mktemp("uv-mitmproxy")
    source = checkout_copy(root / "mitmcors")
    return uv_tool_install(root, "mitmproxy", "--with-executables-from", f"mitmcors @ {source.as_uri()}")


def test_uv_tool_install_then_one_command_judges_a_capture(
    mitmcors_tool: Path, tmp_path: Path, confdir: Path, capture: Path
) -> None:
    """`uv tool install <repo>`, then `mitmcors mitmdump -nr capture …` judges its cross-origin flow, with the
    script from the installed package (not the checkout)."""
    assert sorted(p.name for p in mitmcors_tool.iterdir()) == ["mitmcors"]
    line, out = judge([mitmcors_tool / "mitmcors", "mitmdump"], capture, confdir, tmp_path)
    assert (line["verdict"], line["reason"]) == ("blocked", "MissingAllowOriginHeader")
    tools = mitmcors_tool.parent / "tools"
    assert f"Loading script {tools}" in out


@pytest.fixture(scope="module")
def examples(mitmcors_tool: Path) -> Path:
    """What the installed `mitmcors --examples` prints."""
    return Path(run([mitmcors_tool / "mitmcors", "--examples"], mitmcors_tool).stdout.strip())


def test_installed_examples_are_the_repository_rules(mitmcors_tool: Path, examples: Path) -> None:
    """`mitmcors --examples` prints the installed copy of rules/: every file, byte for byte."""
    assert examples.is_relative_to(mitmcors_tool.parent / "tools")
    shipped = sorted(p.name for p in RULES.iterdir() if p.suffix in (".yaml", ".json"))
    assert "dev.yaml" in shipped
    assert sorted(p.name for p in examples.iterdir()) == shipped
    for name in shipped:
        assert (examples / name).read_bytes() == (RULES / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(p.name for p in RULES.glob("*.yaml")))
def test_installed_example_loads_as_cors_rules(
    mitmcors_tool: Path, examples: Path, tmp_path: Path, confdir: Path, capture: Path, name: str
) -> None:
    """`mitmcors mitmdump --set cors_rules="$(mitmcors --examples)/<name>"` loads it (an invalid file exits 1)."""
    rules = f"cors_rules={examples / name}"
    _, out = judge([mitmcors_tool / "mitmcors", "mitmdump", "--set", rules], capture, confdir, tmp_path)
    assert f"rule(s) loaded from {examples / name}" in out


def test_uv_tool_install_mitmproxy_with_executables_from_mitmcors(
    mitmproxy_tool: Path, tmp_path: Path, confdir: Path, capture: Path
) -> None:
    """`uv tool install mitmproxy --with-executables-from "mitmcors @ <repo>"` puts `mitmcors` beside mitmproxy's
    own commands: `mitmcors mitmdump …` is the one command, and `mitmdump -s "$(mitmcors --script)"` works too."""
    assert sorted(p.name for p in mitmproxy_tool.iterdir()) == ["mitmcors", "mitmdump", "mitmproxy", "mitmweb"]
    line, _ = judge([mitmproxy_tool / "mitmcors", "mitmdump"], capture, confdir, tmp_path)
    assert (line["verdict"], line["reason"]) == ("blocked", "MissingAllowOriginHeader")

    script = run([mitmproxy_tool / "mitmcors", "--script"], tmp_path).stdout.strip()
    assert Path(script).is_relative_to(mitmproxy_tool.parent / "tools" / "mitmproxy")
    (tmp_path / "report.jsonl").unlink()
    line, _ = judge([mitmproxy_tool / "mitmdump", "-s", script], capture, confdir, tmp_path)
    assert (line["verdict"], line["reason"]) == ("blocked", "MissingAllowOriginHeader")


def test_options_lists_the_addon_options() -> None:
    """`mitmcors mitmdump --options` lists mitmcors's options with mitmproxy's, on mitmproxy 11 too (whose own
    `--options` dumps before any script is loaded)."""
    done = subprocess.run(
        [sys.executable, "-m", "mitmcors", "mitmdump", "--options"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {line.split(":", 1)[0] for line in done.stdout.splitlines() if line.startswith("cors_")}
    assert {"cors_rules", "cors_report", "cors_log", "cors_fail_on", "cors_suggest"} <= listed, done.stdout[-2000:]
    assert "listen_port:" in done.stdout  # mitmproxy's own options are still there
