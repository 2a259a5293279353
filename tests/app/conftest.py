import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def tenant(make_tenant):  # type: ignore[no-untyped-def]
    _, key = make_tenant()
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def other_tenant(make_tenant):  # type: ignore[no-untyped-def]
    _, key = make_tenant("other")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """The API on a real uvicorn server in this process (lifespan included), for tests that
    need real HTTP: concurrency, fuzzing. Yields its base URL."""
    from app.kit.http_limits import HeaderLimitedHttpTools
    from app.main import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            http=HeaderLimitedHttpTools,  # as `loraplex up` runs it
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
