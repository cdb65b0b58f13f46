import httpx


async def test_health_answers_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "Healthy"}
