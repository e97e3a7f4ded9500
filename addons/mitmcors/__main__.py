"""Run mitmproxy's tools with mitmcors loaded, for installs without a checkout (`uv tool install`, `pipx`).

mitmcors [mitmproxy|mitmdump|mitmweb] [ARGS ...]    # or: python -m mitmcors ...
mitmcors --script                                   # the path to pass to mitmproxy's -s
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mitmcors.addon import TOOLS

SCRIPT = Path(__file__).with_name("script.py")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--script"]:
        print(SCRIPT)
        return 0
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    tool = args.pop(0) if args and args[0] in TOOLS else "mitmproxy"
    from mitmproxy.tools import main as tools

    sys.argv = [tool, "-s", str(SCRIPT), *args]
    result: int | None = getattr(tools, tool)()
    return result or 0


if __name__ == "__main__":
    sys.exit(main())
