"""The fake W&B itself: it must answer as reference/wandb.md says W&B does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from action import queries
from harness.fake_wandb import FakeArtifact, FakeWandb, md5_b64
from harness.fake_wandb.server import byte_range
from tests.action.harness import API_KEY


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _gql(
    http: requests.Session,
    fake: FakeWandb,
    op: str,
    query: str,
    key: str = API_KEY,
    **variables: Any,
) -> requests.Response:
    body = {"operationName": op, "query": query, "variables": variables}
    return http.post(f"{fake.url}/graphql", json=body, auth=("api", key), timeout=10)


def test_membership_query(http: requests.Session, fake: FakeWandb, artifact: FakeArtifact) -> None:
    answer = _gql(
        http,
        fake,
        "ArtifactMembership",
        queries.ARTIFACT_MEMBERSHIP,
        entityName="acme",
        projectName="churn",
        name="churn-model:production",
    ).json()
    member = answer["data"]["project"]["artifactCollectionMembership"]
    assert member["versionIndex"] == 0
    assert [a["alias"] for a in member["aliases"]] == ["production", "latest"]
    assert member["artifactCollection"]["project"]["entity"]["name"] == "acme"
    node = member["artifact"]
    assert node["id"] == artifact.id and node["state"] == "COMMITTED"
    assert node["size"] == artifact.size and node["fileCount"] == 5
    assert node["metadata"] == '{"accuracy": 0.93, "framework": "sklearn"}'


def test_unknown_names_resolve_to_null(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    missing = _gql(
        http,
        fake,
        "ArtifactMembership",
        queries.ARTIFACT_MEMBERSHIP,
        entityName="acme",
        projectName="churn",
        name="churn-model:nope",
    ).json()
    assert missing == {"data": {"project": {"artifactCollectionMembership": None}}}
    no_project = _gql(
        http,
        fake,
        "ArtifactByName",
        queries.ARTIFACT_BY_NAME,
        entityName="acme",
        projectName="nope",
        name="churn-model:v0",
    ).json()
    assert no_project == {"data": {"project": None}}


def test_legacy_server_refuses_membership_fields(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.legacy = True
    response = _gql(
        http,
        fake,
        "ArtifactMembership",
        queries.ARTIFACT_MEMBERSHIP,
        entityName="acme",
        projectName="churn",
        name="churn-model:v0",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["message"].startswith(
        "Cannot query field 'artifactCollectionMembership' on type 'Project'."
    )
    ok = _gql(
        http,
        fake,
        "ArtifactFileUrls",
        queries.ARTIFACT_FILES,
        id=artifact.id,
        cursor=None,
        perPage=2,
    ).json()
    assert len(ok["data"]["artifact"]["files"]["edges"]) == 2


def test_wrong_key_is_401(http: requests.Session, fake: FakeWandb) -> None:
    response = _gql(http, fake, "ArtifactById", queries.ARTIFACT_BY_ID, key="wrong", id="x")
    assert response.status_code == 401


def test_file_pages_and_signed_urls(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    fake.page_size = 2
    names, cursor = [], None
    while True:
        conn = _gql(
            http,
            fake,
            "MembershipFileUrls",
            queries.MEMBERSHIP_FILES,
            entityName="acme",
            projectName="churn",
            collectionName="churn-model",
            alias="v0",
            cursor=cursor,
            perPage=5000,
        ).json()["data"]["project"]["artifactCollection"]["artifactMembership"]["files"]
        for edge in conn["edges"]:
            names.append(edge["node"]["name"])
            body = http.get(edge["node"]["directUrl"], timeout=10).content
            assert md5_b64(body) == next(
                f.digest for f in artifact.files if f.path == names[-1]
            ) or (
                names[-1] == "model/config.json"  # the XXH128 entry
            )
        cursor = conn["pageInfo"]["endCursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
    assert sorted(names) == sorted(f.path for f in artifact.files)
    assert len(fake.seen("graphql")) == 3


def _direct_url(fake: FakeWandb, artifact: FakeArtifact, path: str) -> str:
    return fake.file_url(next(f for f in artifact.files if f.path == path))


def test_storage_refusals(http: requests.Session, fake: FakeWandb, artifact: FakeArtifact) -> None:
    url = _direct_url(fake, artifact, "README.md")
    assert http.get(url, timeout=10).content == b"# churn model\n"
    assert http.get(url, auth=("api", API_KEY), timeout=10).status_code == 400
    assert http.get(url.replace("sig=", "sig=0"), timeout=10).status_code == 403
    fake.expire("README.md")
    assert http.get(_direct_url(fake, artifact, "README.md"), timeout=10).status_code == 403
    assert http.get(url, timeout=10).status_code == 200  # issued before: still valid
    fake.refuse("README.md")
    assert http.get(url, timeout=10).status_code == 403


def test_download_handler_needs_the_key(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    f = next(f for f in artifact.files if f.path == "README.md")
    url = f"{fake.url}/artifactsV2/default/acme/churn/churn-model/{f.birth_id}/{f.hex}/README.md"
    assert http.get(url, timeout=10).status_code == 401
    assert http.get(url, auth=("api", "wrong"), timeout=10).status_code == 401
    assert http.get(url, auth=("api", API_KEY), timeout=10).content == b"# churn model\n"
    other = url.replace("/churn-model/", "/other/")
    assert http.get(other, auth=("api", API_KEY), timeout=10).status_code == 404


def test_injected_failures_and_corruption(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    url = _direct_url(fake, artifact, "README.md")
    fake.fail("storage", 503, 0)
    assert http.get(url, timeout=10).status_code == 503
    with pytest.raises(requests.ConnectionError):
        http.get(url, timeout=10)
    fake.corrupt("README.md")
    body = http.get(url, timeout=10).content
    assert len(body) == 14 and body != b"# churn model\n"


def test_registry_org_entity(http: requests.Session, fake: FakeWandb) -> None:
    fake.store.org_of["acme"] = ("Acme", "acme-org")
    fake.store.add_artifact("acme", "p", "c", {"a": b"a"})
    data = _gql(http, fake, "OrgEntity", queries.ORG_ENTITY, entityName="acme").json()["data"]
    assert data["entity"]["organization"]["orgEntity"]["name"] == "acme-org"
    none = _gql(http, fake, "OrgEntity", queries.ORG_ENTITY, entityName="ghost").json()["data"]
    assert none == {"entity": None}


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        ("", 10, None),
        ("bytes=2-5", 10, (2, 4)),
        ("bytes=2-", 10, (2, 8)),
        ("bytes=8-99", 10, (8, 2)),
        ("bytes=-3", 10, (7, 3)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=10-12", 10, (10, 0)),  # starts past the end: 416
        ("bytes=-0", 10, (10, 0)),
        ("bytes=0-0", 0, (0, 0)),  # nothing to send from an empty object: 416
        ("bytes=5-2", 10, None),  # invalid: ignored
        ("bytes=0-1,4-5", 10, None),  # several ranges: the whole body
        ("items=0-1", 10, None),
    ],
)
def test_byte_range(header: str, size: int, span: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == span


def test_storage_serves_ranges(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    url = _direct_url(fake, artifact, "README.md")  # b"# churn model\n", 14 bytes
    whole = http.get(url, timeout=10)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    part = http.get(url, headers={"Range": "bytes=2-6"}, timeout=10)
    assert part.status_code == 206 and part.content == b"churn"
    assert part.headers["Content-Range"] == "bytes 2-6/14"
    past = http.get(url, headers={"Range": "bytes=14-"}, timeout=10)
    assert past.status_code == 416 and past.headers["Content-Range"] == "bytes */14"
    fake.skew("README.md")
    skewed = http.get(url, headers={"Range": "bytes=2-6"}, timeout=10)
    assert skewed.content == b"churn" and skewed.headers["Content-Range"] == "bytes 3-7/14"
    fake.ranges = False
    ignored = http.get(url, headers={"Range": "bytes=2-6"}, timeout=10)
    assert ignored.status_code == 200 and ignored.content == b"# churn model\n"
    assert "Accept-Ranges" not in ignored.headers


def test_a_cut_range_sends_half_of_it(
    http: requests.Session, fake: FakeWandb, artifact: FakeArtifact
) -> None:
    url = _direct_url(fake, artifact, "model/weights.bin")
    fake.cut("model/weights.bin")
    with (
        http.get(url, headers={"Range": "bytes=0-999"}, stream=True, timeout=10) as response,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        assert response.status_code == 206
        response.content  # noqa: B018 -- reading the body is what fails
    assert fake.seen("storage")[-1].range == "bytes=0-999"
