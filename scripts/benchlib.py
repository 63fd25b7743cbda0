"""Shared by the benchmark scripts: an `openduck` process on a free loopback
port, started until its /health answers, and stopped with SIGTERM."""
import os
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OpenDuckProcess:
    """`openduck --data-dir DATA ARGS --listen 127.0.0.1:<free port>` (pinned to
    `core` with taskset if given), its output in `log_path`."""

    def __init__(self, bin_path, data, args, log_path, env=None, core=None):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        pin = ["taskset", "-c", str(core)] if core is not None else []
        self.proc = subprocess.Popen([*pin, bin_path, "--data-dir", str(data), *args, "--listen", f"127.0.0.1:{self.port}"],
                                     env=env or dict(os.environ), stdout=self.log, stderr=self.log)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{self.endpoint}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise SystemExit(f"openduck {' '.join(map(str, args))} did not start; see {log_path}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
