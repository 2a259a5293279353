"""Private Postgres and Redis servers that a test may stop and start at will. The machine's
own servers are shared with everything else running on it and are never restarted; these
live in a temporary directory, listen on free ports, and are always torn down."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"


def _pg_bin() -> Path:
    """LORAPLEX_TEST_PG_BIN, else the newest Debian-packaged server (Debian keeps initdb and
    pg_ctl off PATH, in /usr/lib/postgresql/<version>/bin)."""
    if os.environ.get("LORAPLEX_TEST_PG_BIN"):
        return Path(os.environ["LORAPLEX_TEST_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path(shutil.which("initdb") or "initdb").parent


PG_BIN = _pg_bin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout}s")
        time.sleep(0.1)


@dataclass
class PostgresServer:
    """A throw-away cluster (trust auth, no fsync) in `root`; `stop()` is a fast shutdown,
    which ends every client connection as a real restart does."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_USER)
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", PG_USER]
        done = subprocess.run(
            _as_postgres([*initdb, "--auth=trust", "--no-sync"]), capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "log")]
        subprocess.run(_as_postgres([*pg_ctl, "-o", options, "-w", "start"]), check=True)
        _wait(lambda: _listening(self.port), 30, f"postgres not listening on {self.port}")

    def stop(self) -> None:
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(pg_ctl), check=False, capture_output=True)

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@dataclass
class RedisServer:
    """Keeps nothing on disk, like the production default: a restart loses every key, the
    broker's queued task messages included."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _wait(lambda: _listening(self.port), 30, f"redis not listening on {self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # SIGTERM: with --save "" nothing is written; all is lost
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def private_servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    """A running Postgres and Redis of the caller's own, stopped and deleted on exit."""
    root = Path(tempfile.mkdtemp(prefix="loraplex-faults-"))
    root.chmod(0o755)  # the postgres user must reach its data directory inside
    postgres, redis = PostgresServer(root / "postgres"), RedisServer(root / "redis")
    try:
        postgres.init()
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
