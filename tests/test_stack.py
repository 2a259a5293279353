import socket

import pytest

from app.config import Settings
from app.stack import Stack


def test_a_taken_port_is_refused_instead_of_shadowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        stack = Stack(Settings(LORAPLEX_API_PORT=port))  # type: ignore[call-arg]
        with pytest.raises(RuntimeError, match="already in use"):
            stack.start_api()
    assert stack.processes == {}
