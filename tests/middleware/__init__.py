"""Real CORS middleware as its users configure it, each served by its own framework's server for the browser suite
(tests/browser/test_middleware_browser.py): Starlette/FastAPI ``CORSMiddleware`` under uvicorn, flask-cors and
django-cors-headers under werkzeug's WSGI server, Express ``cors`` under node (``express/``).

Every server answers https on 127.0.0.1 with a self-signed certificate, mounts one configured app per scenario
prefix (``/s/<scenario id>``), and reports each request it receives, before the app sees it, to the wire URL it is
given (the browser suite's backend logs it like a request to itself, so the harness checks read one wire).
"""
