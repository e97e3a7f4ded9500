"""Run mitmproxy's tools with mitmcors loaded, for installs without a checkout (`uv tool install`, `pipx`).

mitmcors [mitmproxy|mitmdump|mitmweb] [ARGS ...]    # or: python -m mitmcors ...; no tool named: mitmproxy
mitmcors --script                                   # the path to pass to mitmproxy's -s
mitmcors --examples                                 # the directory holding the example rule files
mitmcors --help                                     # this text
mitmcors mitmdump --options                         # mitmproxy's options with mitmcors's (also on mitmproxy 11)

The example rule files (dev.yaml, staging-cookies.yaml, reproduce-prod-bug.yaml, and schema.json for editors)
are the checkout's rules/, shipped inside the package; copy one and edit it:

    cp "$(mitmcors --examples)/dev.yaml" rules.yaml
    mitmcors mitmdump --set cors_rules=rules.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

SCRIPT = Path(__file__).with_name("script.py")


def examples_dir() -> Path | None:
    """Where the example rule files are: mitmcors/examples/ in an installed wheel (pyproject.toml maps the
    top-level rules/ there), the checkout's rules/ when the package runs from a checkout (editable install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples", here.parent.parent / "rules"):
        if any(candidate.glob("*.yaml")):
            return candidate
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--script"]:
        print(SCRIPT)
        return 0
    if args[:1] == ["--examples"]:
        examples = examples_dir()
        if examples is None:
            print("mitmcors: the example rule files are not installed", file=sys.stderr)
            return 1
        print(examples)
        return 0
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    from mitmproxy.tools import main as tools  # here, not above: --script and --examples answer without mitmproxy

    from mitmcors.addon import TOOLS

    tool = args.pop(0) if args and args[0] in TOOLS else "mitmproxy"

    if "--options" in args:
        _list_addon_options()
    sys.argv = [tool, "-s", str(SCRIPT), *args]
    result: int | None = getattr(tools, tool)()
    return result or 0


def _list_addon_options() -> None:
    """`--options` lists a script's options from mitmproxy 12 on; mitmproxy 11 dumps them before any script is
    loaded. For this process only, register the addon's options just before mitmproxy dumps them."""
    from types import SimpleNamespace
    from typing import Any

    from mitmproxy import addonmanager, optmanager

    from mitmcors.addon import CorsAddon

    dump = optmanager.dump_defaults

    def dump_with_addon(opts: Any, out: Any) -> None:
        if "cors_rules" not in opts:
            CorsAddon().load(addonmanager.Loader(SimpleNamespace(options=opts)))  # type: ignore[no-untyped-call]
        dump(opts, out)

    optmanager.dump_defaults = dump_with_addon


if __name__ == "__main__":
    sys.exit(main())
