"""The test harness shared by the end-to-end suite, the browser suite and the benchmarks.

- ``ports``: free loopback ports, waiting until something listens.
- ``backend``: the one scriptable local HTTP(S) backend (routes per path and method, exact header lines, request log).
- ``client``: requests through a proxy with exactly the header lines a browser sends.
- ``mitmdump``: a real ``mitmdump -s addons/cors.py`` subprocess (start, wait, output, report, SIGINT, kill).
- ``report``: reading ``cors_report`` lines; ``REPORT_WAIT``, how long to wait for them.
- ``browser``: one browser-suite scenario in headless Chromium (CDP recorder, page helpers, results).
- ``chromium``: what Chromium did with each flow, and each check of the addon's report against it.
- ``corpus``: the recorded browser corpus (``tests/corpus/chromium.json``): build, scrub, load, save, compare.

Nothing here imports mitmproxy: the suites see only what a user of the addon sees.
"""
