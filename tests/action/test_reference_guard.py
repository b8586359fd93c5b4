"""References (and redirects from them) never reach loopback, private, link-local or
cloud-metadata addresses: refused before connecting, nothing written, `path` unchanged."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import urllib3.util.connection

from action.errors import InternalAddressError
from action.guard import MAX_REDIRECTS, GuardedAdapter, origin, refusal, vetted_address
from harness.fake_wandb import FakeArtifact, FakeWandb, md5_b64
from tests.action.harness import Run, Runner, failed_with, snapshot

DATA = b"what an internal service would answer\n"
TITLE = "title=Reference points at an internal address"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A safety net, not the behaviour under test: should the guard ever let one through,
    these tests fail here instead of reaching a real 169.254.169.254 or 10.0.0.1."""
    connect = urllib3.util.connection.create_connection

    def loopback_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address[0].strip("[]"), address[1]
        found = {str(a[4][0]) for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        if not all(ipaddress.ip_address(a).is_loopback for a in found):
            raise AssertionError(f"the test connected to {host} ({', '.join(sorted(found))})")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", loopback_connect)


class Trap(ThreadingHTTPServer):
    """An HTTP server on a loopback address the action must not reach. It would serve the
    very bytes the manifest expects, so a missing guard shows as a success; it counts
    every connection it accepts."""

    daemon_threads = True

    def __init__(self, host: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.connections = 0
        super().__init__((host, 0), _TrapHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _TrapHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(DATA)


@pytest.fixture
def trap() -> Iterator[Callable[[str], Trap]]:
    traps: list[Trap] = []

    def start(host: str) -> Trap:
        traps.append(Trap(host))
        return traps[-1]

    yield start
    for t in traps:
        t.close()


def _with_ref(fake: FakeWandb, url: str) -> FakeArtifact:
    refs = {"ext/w.bin": (url, md5_b64(DATA), len(DATA))}
    return fake.store.add_artifact(
        "acme", "churn", "churn-model", {"local.txt": b"local"}, aliases=("production",), refs=refs
    )


def _refused(runner: Runner, verify: str, *fragments: str) -> Run:
    """The run fails naming the cause, writes no output and leaves `path` as it was."""
    target = runner.default_target
    target.mkdir(parents=True)
    (target / "ext").mkdir()
    (target / "ext" / "w.bin").write_bytes(b"the previous run's file")
    before = snapshot(runner.workspace)
    run = runner.run(verify=verify)
    error = failed_with(run, TITLE, "ext/w.bin", "skip-references", *fragments)
    assert "Traceback" not in run.stdout
    assert run.output_text == ""
    assert snapshot(runner.workspace) == before, error
    return run


@pytest.mark.parametrize("verify", ["true", "false"])
@pytest.mark.parametrize(
    ("host", "listen", "shown"),
    [
        ("127.0.0.2", "127.0.0.2", "127.0.0.2, a loopback address"),
        ("[::1]", "::1", "::1, a loopback address"),
        # the W&B host of base-url, but another port: another service, not W&B
        ("127.0.0.1", "127.0.0.1", "127.0.0.1, a loopback address"),
        ("localhost", "127.0.0.1", "localhost (127.0.0.1), a loopback address"),
    ],
)
def test_reference_to_a_loopback_address_is_refused_before_connecting(
    runner: Runner, fake: FakeWandb, trap: Callable[[str], Trap], verify: str, host: str,
    listen: str, shown: str,
) -> None:  # fmt: skip
    server = trap(listen)
    _with_ref(fake, f"http://{host}:{server.port}/latest/meta-data/")
    _refused(runner, verify, shown)
    assert server.connections == 0


@pytest.mark.parametrize("verify", ["true", "false"])
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "a cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "a cloud metadata service"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
        ("http://10.0.0.1/w.bin", "10.0.0.1, a private address"),
        ("https://192.168.1.10/w.bin", "192.168.1.10, a private address"),
        ("http://172.16.0.1:8080/w.bin", "172.16.0.1, a private address"),
        ("http://[fc00::1]/w.bin", "fc00::1, a private address"),
        ("http://[fe80::1]/w.bin", "fe80::1, a link-local address"),
        ("http://169.254.1.1/w.bin", "169.254.1.1, a link-local address"),
        ("http://100.64.0.1/w.bin", "100.64.0.1, a shared or reserved address"),
        ("http://0.0.0.0/w.bin", "0.0.0.0, an unspecified address"),
        ("http://224.0.0.1/w.bin", "224.0.0.1, a multicast address"),
        ("http://[::ffff:10.0.0.1]/w.bin", "a private address"),
        ("http://[64:ff9b::a9fe:a9fe]/w.bin", "a cloud metadata address"),
        ("http://2130706433/w.bin", "2130706433 (127.0.0.1), a loopback address"),
    ],
)
def test_reference_to_an_internal_address_is_refused(
    runner: Runner, fake: FakeWandb, verify: str, url: str, shown: str
) -> None:
    _with_ref(fake, url)
    _refused(runner, verify, shown)


@pytest.mark.parametrize("verify", ["true", "false"])
@pytest.mark.parametrize("where", ["trap", "metadata"])
def test_redirect_to_an_internal_address_is_refused(
    runner: Runner, fake: FakeWandb, trap: Callable[[str], Trap], verify: str, where: str
) -> None:
    if where == "trap":
        server = trap("127.0.0.2")
        location, shown = f"http://127.0.0.2:{server.port}/w.bin", "127.0.0.2, a loopback"
    else:
        location, shown = "http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud"
    # the reference is on the W&B host itself (allowed); its server redirects inwards
    _with_ref(fake, fake.redirect("w.bin", location))
    _refused(runner, verify, shown, "or a redirect from it")
    assert len(fake.seen("external")) == 1  # the first hop, once: a refusal is not retried
    if where == "trap":
        assert server.connections == 0


def test_redirects_between_allowed_places_are_followed(runner: Runner, fake: FakeWandb) -> None:
    real = fake.external_url("real.bin", DATA)
    _with_ref(fake, fake.redirect("hop.bin", real))
    run = runner.run()
    assert run.code == 0, run.stdout
    assert (runner.default_target / "ext" / "w.bin").read_bytes() == DATA


def test_redirects_are_capped(runner: Runner, fake: FakeWandb) -> None:
    url = fake.redirect("loop.bin", f"{fake.url}/external/loop.bin")
    _with_ref(fake, url)
    failed_with(runner.run(), "title=Download failed", "ext/w.bin", "TooManyRedirects")
    assert len(fake.seen("external")) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1",
     "64:ff9b::808:808"],
)  # fmt: skip
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == ""


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::", "a loopback address"),  # 6to4 around 127.0.0.1
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("::7f00:1", "a reserved address"),  # IPv4-compatible, deprecated
        ("fec0::1", "a reserved address"),  # site-local, deprecated
        ("64:ff9b:1::a00:1", "a reserved address"),  # local-use NAT64
        ("198.18.0.1", "a private address"),
        ("255.255.255.255", "a private address"),
        ("ff02::1", "a multicast address"),
    ],
)
def test_other_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


def test_the_connection_goes_to_the_address_checked() -> None:
    """DNS rebinding: each connection resolves once and connects to what it checked."""
    answers = [["93.184.216.34"], ["127.0.0.1"]]
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers.pop(0)

    adapter = GuardedAdapter(origin("https://wandb.example.com"), resolver=resolver)
    request = requests.Request("GET", "https://files.example.net/a?sig=x").prepare()
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)
    assert host_params["host"] == "93.184.216.34"
    assert pool_kwargs.get("server_hostname") == "files.example.net"  # SNI, certificate
    with pytest.raises(InternalAddressError, match=r"files\.example\.net \(127\.0\.0\.1\)"):
        adapter.build_connection_pool_key_attributes(request, True)
    assert asked == [("files.example.net", 443)] * 2
    adapter.add_headers(request)
    assert request.headers["Host"] == "files.example.net"


def test_through_a_proxy_the_tunnel_goes_to_the_address_checked() -> None:
    seen: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as proxy:

        def answer() -> None:
            conn, _ = proxy.accept()
            with conn:
                seen.append(conn.recv(65536).split(b"\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        proxies = {"https": f"http://127.0.0.1:{proxy.getsockname()[1]}"}
        with requests.Session() as session, pytest.raises(requests.exceptions.ProxyError):
            adapter = GuardedAdapter(origin("https://wandb.example.com"), resolver=_public)
            session.mount("https://", adapter)
            session.get("https://files.example.net/a", proxies=proxies, timeout=10)
        thread.join()
    assert [line.rsplit(b" ", 1)[0] for line in seen] == [b"CONNECT 93.184.216.34:443"]


def test_the_wandb_host_is_trusted_even_when_private() -> None:
    adapter = GuardedAdapter(origin("http://wandb.corp:8080/"), resolver=_no_resolver)
    request = requests.Request("GET", "http://WANDB.corp:8080/files/a").prepare()
    host_params, _ = adapter.build_connection_pool_key_attributes(request, True)
    assert host_params["host"] == "wandb.corp"


def test_any_internal_answer_refuses_the_name() -> None:
    with pytest.raises(InternalAddressError, match=r"10\.1\.2\.3"):
        vetted_address("mixed.example", 80, lambda h, p: ["93.184.216.34", "10.1.2.3"])


def test_a_name_that_does_not_resolve_is_a_network_error() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(requests.ConnectionError, match="Name or service not known"):
        vetted_address("nowhere.example", 80, fail)


def _public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def _no_resolver(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolved {host}")
