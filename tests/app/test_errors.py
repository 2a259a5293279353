def test_unknown_api_route_is_openai_404(client, tenant):
    r = client.get("/v1/nothing-here", headers=tenant)
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_malformed_json_body_is_400(client, tenant):
    r = client.post(
        "/v1/fine_tuning/jobs",
        headers={**tenant, "content-type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_models_lists_base_model(client, tenant):
    data = client.get("/v1/models", headers=tenant).json()["data"]
    assert "SmolLM2-135M-Instruct" in [m["id"] for m in data]


def test_unknown_model_for_chat_is_404(client, tenant):
    r = client.post(
        "/v1/chat/completions",
        headers=tenant,
        json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
