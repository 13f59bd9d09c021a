"""scripts/run.sh (what `make run` runs): starting, stopping and watching the two servers.

The servers are stand-ins (OPENCHAT_BACKEND_CMD / OPENCHAT_FRONTEND_CMD): a small HTTP server
that answers every GET (so /healthz and the frontend's / answer), writes its pid to a file and
starts a child process, as npm starts node and uvicorn may start workers. Every process carries
a marker unique to the test in its command line, so the test can tell that none is left.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RUN_SH = ROOT / "scripts" / "run.sh"


def make_run_prefix() -> list[str]:
    """What the Makefile's `run` recipe puts before `bash scripts/run.sh` (it must restore SIGINT)."""
    recipe = re.search(r"^\t@(.*?)\s*bash scripts/run\.sh ", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile's run recipe no longer calls scripts/run.sh"
    return recipe.group(1).split()


STAND_IN = """
import http.server, os, signal, subprocess, sys, time
role, marker = sys.argv[1], sys.argv[2]
if os.environ.get("STAND_IN_IGNORE_TERM") == role:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child too
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", f"{marker}-{role}-child"])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
        self.wfile.flush()
        if self.path.startswith("/exit/"):
            os._exit(int(self.path.rsplit("/", 1)[1]))  # the child is left behind, as with a crash

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
with open(f"{role}.pid.tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(f"{role}.pid.tmp", f"{role}.pid")
server.serve_forever()
"""

DEADLINE = 20.0  # generous: each step normally takes well under a second


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class Run:
    """One run of scripts/run.sh with stand-in servers."""

    tmp: Path
    marker: str = field(default_factory=lambda: f"runsh-test-{uuid.uuid4().hex[:12]}")
    proc: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=lambda: {"backend": free_port(), "frontend": free_port()})

    @property
    def log(self) -> Path:
        return self.tmp / "run.log"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, *, backend_cmd: str | None = None, env: dict[str, str] | None = None) -> None:
        backend_dir, frontend_dir = self.tmp / "backend", self.tmp / "frontend"
        backend_dir.mkdir()
        frontend_dir.mkdir()
        server = self.tmp / "stand_in.py"
        server.write_text(STAND_IN)
        full_env = {
            **os.environ,
            "OPENCHAT_BACKEND_CMD": backend_cmd or f"exec {sys.executable} {server} backend {self.marker}",
            "OPENCHAT_FRONTEND_CMD": f"exec {sys.executable} {server} frontend {self.marker}",
            **(env or {}),
        }
        ports = self.ports
        args = [*make_run_prefix(), "bash", str(RUN_SH), str(backend_dir), str(ports["backend"])]
        args += [str(frontend_dir), str(ports["frontend"])]
        with self.log.open("wb") as log:
            # A session of its own, like the foreground process group Ctrl-C reaches in a terminal;
            # started as `make run` starts it, from a parent that ignores SIGINT (as a job started
            # in the background does): Ctrl-C must still stop it.
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                start_new_session=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
            )

    def wait_for_output(self, text: str) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + DEADLINE
        while text not in self.output():
            if self.proc.poll() is not None and text not in self.output():
                pytest.fail(f"run.sh exited ({self.proc.returncode}) before printing {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"run.sh did not print {text!r} within {DEADLINE} s:\n{self.output()}")
            time.sleep(0.05)

    def server_pids(self, role: str) -> tuple[int, int]:
        """(stand-in pid, its child's pid) once the stand-in listens."""
        pid_file = self.tmp / role / f"{role}.pid"  # written in its working directory
        deadline = time.monotonic() + DEADLINE
        while not pid_file.exists():
            assert time.monotonic() < deadline, f"the {role} stand-in did not start:\n{self.output()}"
            time.sleep(0.05)
        server, child = pid_file.read_text().split()
        return int(server), int(child)

    def wait_exit(self) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run.sh did not exit within {DEADLINE} s:\n{self.output()}")

    def cleanup(self) -> None:
        """Whatever the test did: nothing it started stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in marked_processes(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(tmp_path)
    try:
        yield r
    finally:
        r.cleanup()


def assert_nothing_left(run: Run) -> None:
    left = marked_processes(run.marker)
    assert not left, f"processes left running: {left}\n{run.output()}"


def start_and_wait_ready(run: Run, env: dict[str, str] | None = None) -> None:
    run.start(env=env)
    run.wait_for_output("OpenChat is ready at http://localhost:")
    assert len(marked_processes(run.marker)) == 4  # two stand-ins and their children


def test_ctrl_c_stops_both_servers_and_exits_0(run: Run) -> None:
    start_and_wait_ready(run)
    assert run.proc is not None
    os.killpg(run.proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    assert run.wait_exit() == 0, run.output()
    assert "SIGINT: stopping the backend and the frontend" in run.output()
    assert_nothing_left(run)


def test_sigterm_stops_both_servers_and_exits_0(run: Run) -> None:
    start_and_wait_ready(run)
    assert run.proc is not None
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait_exit() == 0, run.output()
    assert_nothing_left(run)


def test_backend_killed_by_a_signal_stops_the_frontend(run: Run) -> None:
    start_and_wait_ready(run)
    backend, _ = run.server_pids("backend")
    os.kill(backend, signal.SIGSEGV)
    assert run.wait_exit() == 1, run.output()
    assert "backend stopped (killed by SIGSEGV); stopping the frontend" in run.output()
    assert_nothing_left(run)


def test_frontend_killed_stops_the_backend(run: Run) -> None:
    start_and_wait_ready(run)
    frontend, _ = run.server_pids("frontend")
    os.kill(frontend, signal.SIGKILL)
    assert run.wait_exit() == 1, run.output()
    assert "frontend stopped (killed by SIGKILL); stopping the backend" in run.output()
    assert_nothing_left(run)


def test_frontend_exit_status_is_reported_and_its_children_stopped(run: Run) -> None:
    start_and_wait_ready(run)
    run.server_pids("frontend")
    urllib.request.urlopen(f"http://127.0.0.1:{run.ports['frontend']}/exit/3", timeout=10).read()
    assert run.wait_exit() == 1, run.output()
    assert "frontend stopped (exit status 3); stopping the backend" in run.output()
    assert_nothing_left(run)  # the orphaned child of the frontend too


def test_backend_that_dies_before_answering_is_reported(run: Run) -> None:
    run.start(backend_cmd="exit 7")
    assert run.wait_exit() == 1, run.output()
    assert "backend stopped (exit status 7)" in run.output()
    assert "Starting the frontend" not in run.output()
    assert_nothing_left(run)


def test_a_server_ignoring_sigterm_is_killed_after_the_timeout(run: Run) -> None:
    start_and_wait_ready(run, env={"STAND_IN_IGNORE_TERM": "backend", "OPENCHAT_STOP_TIMEOUT": "1"})
    assert run.proc is not None
    started = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait_exit() == 0, run.output()
    assert time.monotonic() - started < 8
    assert "backend did not stop; killing it" in run.output()
    assert_nothing_left(run)


def test_servers_get_sigterm_if_the_script_is_killed(run: Run) -> None:
    start_and_wait_ready(run)
    assert run.proc is not None
    servers = [run.server_pids("backend")[0], run.server_pids("frontend")[0]]
    run.proc.kill()  # SIGKILL: no trap runs; the parent-death signal still reaches the servers
    run.proc.wait()
    deadline = time.monotonic() + DEADLINE
    while alive := [pid for pid in servers if pid in marked_processes(run.marker)]:
        assert time.monotonic() < deadline, f"still running: {alive}"
        time.sleep(0.05)


def test_a_port_in_use_is_reported_before_anything_starts(run: Run) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run.ports["frontend"] = busy.getsockname()[1]
        run.start()
        assert run.wait_exit() == 1, run.output()
    assert f"port {run.ports['frontend']} is already in use" in run.output()
    assert "Starting the backend" not in run.output()
    assert_nothing_left(run)
