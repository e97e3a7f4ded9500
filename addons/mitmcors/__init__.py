"""mitmcors: browser-accurate CORS verdicts and CORS header rewriting for mitmproxy."""

__version__ = "0.1.0"
