"""
Servers that the fault tests own, so they can stop and restart them without touching anyone
else's: a Redis server and a PostgreSQL cluster, each on a free loopback port in a temporary
directory, started as subprocesses of their own session and always killed at the end.

Never the machine's shared PostgreSQL (5432) or Redis (6379): other people's work runs on them.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from glob import glob
from pathlib import Path

START_TIMEOUT = 30  # seconds; a cold PostgreSQL start on a busy 2-core machine takes 1-3 s


def free_port():
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready in {timeout} s")


def _port_open(port):
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class RedisServer:
    """`redis-server` on a free port with nothing persisted: a stop loses every key, as a
    crashed or restarted Redis without persistence does."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="zoomadmin-faults-redis-"))
        self.log_path = self.directory / "redis.log"
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        if self.running:
            raise RuntimeError("redis-server is already running")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait(self.ping, START_TIMEOUT, f"redis-server on port {self.port}")
        return self

    def ping(self):
        import redis

        if not self.running:
            raise RuntimeError(f"redis-server exited:\n{self.log()[-2000:]}")
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return client.ping()
        except redis.RedisError:
            return False
        finally:
            client.close()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """Stop it now (SIGKILL): clients see connections reset, then refused."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.process = None

    def log(self):
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_bin_dir():
    """The newest PostgreSQL server binaries installed (Debian: /usr/lib/postgresql/N/bin)."""
    candidates = sorted(
        glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """A throw-away PostgreSQL cluster: initdb in a temporary directory, trust authentication,
    listening on 127.0.0.1 at a free port. PostgreSQL refuses to run as root, so as root its
    commands run as the `postgres` OS user (runuser)."""

    def __init__(self, port=None):
        self.bin = postgres_bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="zoomadmin-faults-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")

    def _run(self, *command, timeout=60):
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run(
            [*prefix, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            stdin=subprocess.DEVNULL,
        )

    def init(self):
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            timeout=120,
        )
        return self

    def start(self):
        # fsync off: the machine does not crash in these tests, only PostgreSQL, and the OS
        # keeps what was written. synchronous_commit stays on: a crash ("immediate" stop) must
        # not lose a committed transaction, or a finished action would come back unfinished.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c max_connections=60 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT),
            "start",
            timeout=START_TIMEOUT + 10,
        )
        _wait(lambda: _port_open(self.port), START_TIMEOUT, f"PostgreSQL on port {self.port}")
        return self

    def stop(self, mode="fast"):
        """pg_ctl stop: "fast" disconnects every client and shuts down cleanly; "immediate"
        is a crash (recovery at the next start)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
                timeout=40,
            )

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    @property
    def running(self):
        return (self.data / "postmaster.pid").exists()

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        self._run(
            str(self.bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f'CREATE DATABASE "{name}"',
        )

    def log(self):
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def cleanup(self):
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class TcpProxy:
    """A TCP relay on a free loopback port to TARGET_PORT: one process's path to a server, so a
    test can cut that path alone (a partition) while every other process still reaches the
    server. `stop()` resets the connections through it and refuses new ones."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.lock = threading.Lock()
        self.cut = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def url(self, scheme="redis", path="/0"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.cut:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True, name="tcp-proxy-pump"
                ).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self):
        with self.lock:
            self.cut = True
            sockets, self.sockets = self.sockets, []
        # shutdown wakes the accept() blocked in the other thread; close alone may not
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
