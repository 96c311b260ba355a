import pytest


@pytest.mark.django_db
def test_healthz_answers_while_the_process_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_answers_200_when_redis_is_writable(client, redis_client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["ok"] is True
    assert redis_client.exists("aws:health:probe")


@pytest.mark.django_db
def test_readyz_answers_503_with_a_reason_when_redis_is_stopped(client, redis_server):
    redis_server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["reason"].startswith("redis unreachable")


@pytest.mark.django_db
def test_readyz_answers_503_when_redis_is_read_only(client, redis_client):
    redis_client.config_set("min-replicas-to-write", 1)  # a primary without replicas refuses writes
    try:
        response = client.get("/readyz")
    finally:
        redis_client.config_set("min-replicas-to-write", 0)
    assert response.status_code == 503


@pytest.mark.django_db
def test_readyz_warns_when_redis_may_evict_mappings(client, redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        body = client.get("/readyz").json()
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert body["status"] == "ok"
    assert "allkeys-lru" in body["checks"]["redis"]["warnings"][0]
