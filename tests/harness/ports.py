"""Free loopback ports, waiting until a process listens on one, and stopping it again."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from typing import Any

# Below Linux's ephemeral range (32768-60999): the kernel never hands these out as the source port of an
# outgoing connection, so a port chosen here is still free when a slow server (Django) binds it a second later.
_PORTS = range(20000, 32000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    for _ in range(100):
        port = random.choice(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(
    port: int, proc: subprocess.Popen[Any] | None = None, *, what: str = "server", timeout: float = 30.0
) -> None:
    """Return once something accepts connections on 127.0.0.1:`port`.

    Raises:
        RuntimeError: `proc` exited first, or nothing listened within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port} within {timeout:g} s") from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """Terminate `proc` and wait for it; kill it if it ignores that for `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
