from collections.abc import Iterator

import pytest
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
