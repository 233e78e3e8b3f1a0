def test_root_lists_endpoints(api_client):
    body = api_client.get("/").json()
    assert body["endpoints"]["tenants"] == "/api/v2/tenants"
