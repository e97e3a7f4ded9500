"""mitmcors: see, explain and fix CORS in mitmproxy.

    mitmproxy -s addons/cors.py [--set cors_rules=rules/dev.yaml] [--set cors_report=cors.jsonl]

This file is the entry point only; the code lives in the `mitmcors` package next to it.
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:  # mitmproxy adds it only while the script loads; keep it for lazy imports
    sys.path.insert(0, _here)

from mitmcors.addon import CorsAddon  # noqa: E402

addons = [CorsAddon()]
