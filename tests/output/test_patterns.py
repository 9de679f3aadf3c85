"""Table tests for the pattern filters: leaks are caught (exact region), clean text is not."""

from __future__ import annotations

import pytest

from guardstream.output import (
    find_connection_strings,
    find_file_paths,
    find_internal_urls,
    find_private_ips,
    is_internal_host,
    is_placeholder_secret,
    is_private_address,
)


def _found(spans: list, text: str) -> list[str]:
    return [text[s.start:s.end] for s in spans]


@pytest.mark.parametrize(("text", "leak"), [
    ("Open http://localhost:8080/admin to see it.", "http://localhost:8080/admin"),
    ("The API is https://billing.internal/v2/invoices.", "https://billing.internal/v2/invoices"),
    ("Jenkins: http://jenkins.build.corp:8080/job/deploy", "http://jenkins.build.corp:8080/job/deploy"),
    ("See (http://wiki.lan/Onboarding) for details", "http://wiki.lan/Onboarding"),
    ("grafana at http://10.0.4.12:3000/d/abc", "http://10.0.4.12:3000/d/abc"),
    ("try http://192.168.1.20/", "http://192.168.1.20/"),
    ("IPv6 loopback http://[::1]:9000/metrics", "http://[::1]:9000/metrics"),
    ("ULA host http://[fd12:3456:789a::1]/x", "http://[fd12:3456:789a::1]/x"),
    ("the db is db01.prod.internal and more", "db01.prod.internal"),
    ("connect to pg.internal:5432 now", "pg.internal:5432"),
    ("printer at printer.office.lan", "printer.office.lan"),
    ("nas.local/share is mounted", "nas.local/share"),
    ("run curl localhost:9200/_cat/indices", "localhost:9200/_cat/indices"),
    ("**http://vault.corp/ui**", "http://vault.corp/ui"),
    ("router.home.arpa:443 answers", "router.home.arpa:443"),
])
def test_internal_urls_caught(text: str, leak: str) -> None:
    assert _found(find_internal_urls(text), text) == [leak]


@pytest.mark.parametrize("text", [
    "Read https://docs.python.org/3/library/re.html first.",
    "See https://example.com/api and http://api.example.test/v1.",
    "Use `threading.local()` or threading.local for per-thread data.",
    "In docker-compose the web service calls http://api:8000/health.",
    "```python\nimport requests\nr = requests.get('https://api.github.com/repos')\n```",
    "The price is 10.50 and the ratio is 3.14.",
    "Mail bob@corp.internal is handled by the PII filter, not here.",
    "ssh pi@raspberrypi.local",
    "mDNS names end in .local, like your-printer.",
])
def test_internal_urls_clean(text: str) -> None:
    assert find_internal_urls(text) == []


def test_allowed_hosts_exempt_exact_and_suffix() -> None:
    text = "http://localhost:3000 and https://git.corp/x and localhost:8080"
    assert _found(find_internal_urls(text, ["localhost"]), text) == ["https://git.corp/x"]
    assert _found(find_internal_urls(text, [".corp", "localhost"]), text) == []


@pytest.mark.parametrize(("text", "leak"), [
    ("The primary is 10.0.3.7.", "10.0.3.7"),
    ("redis on 172.20.1.5:6379", "172.20.1.5:6379"),
    ("gateway 192.168.0.1 then", "192.168.0.1"),
    ("loopback 127.0.0.1 only", "127.0.0.1"),
    ("CGNAT 100.64.12.9 here", "100.64.12.9"),
    ("link-local 169.254.169.254 metadata", "169.254.169.254"),
    ("v6 fe80::1%eth0 on the lan", "fe80::1%eth0"),
    ("ULA fd00:ab:cd::42 there", "fd00:ab:cd::42"),
    ("loopback ::1 too", "::1"),
    ("mapped ::ffff:10.1.2.3 addr", "10.1.2.3"),  # the embedded IPv4 is what matters
])
def test_private_ips_caught(text: str, leak: str) -> None:
    assert _found(find_private_ips(text), text) == [leak]


@pytest.mark.parametrize("text", [
    "Google DNS is 8.8.8.8 and Cloudflare 1.1.1.1.",
    "Documentation uses 192.0.2.10, 198.51.100.7 and 203.0.113.99, or 2001:db8::1.",
    "Private ranges are 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16.",
    "Bind to 0.0.0.0 to listen on every interface, or ::.",
    "Upgrade to version 10.2.3.4 of the firmware.",
    "It costs 1,234.56 dollars; pi is 3.14159.",
    "Reverse a list with xs[::-1] or take every item with xs[::1].",
    "std::vector<int> v; the time is 12:30:45.",
    "Version string 1.2.3.4.5 is not an address.",
])
def test_private_ips_clean(text: str) -> None:
    assert find_private_ips(text) == []


@pytest.mark.parametrize(("text", "leak"), [
    ("Config is in /home/jsmith/app/.env.", "/home/jsmith/app/.env"),
    ("see /Users/maria/Library/Keychains", "/Users/maria/Library/Keychains"),
    ("root's key /root/.ssh/id_rsa", "/root/.ssh/id_rsa"),
    ("secrets at /etc/acme-prod/db.key now", "/etc/acme-prod/db.key"),
    ("data in /var/lib/payments/ledger.db", "/var/lib/payments/ledger.db"),
    ("backups: /srv/backups/2024", "/srv/backups/2024"),
    ("cat /etc/shadow", "/etc/shadow"),
    (r"open C:\Users\jsmith\Desktop\keys.txt please", r"C:\Users\jsmith\Desktop\keys.txt"),
    (r'path = "C:\\Users\\jsmith\\AppData"', r"C:\\Users\\jsmith\\AppData"),
    (r"share \\fileserver01\hr\salaries.xlsx here", r"\\fileserver01\hr\salaries.xlsx"),
])
def test_file_paths_caught(text: str, leak: str) -> None:
    assert _found(find_file_paths(text), text) == [leak]


@pytest.mark.parametrize("text", [
    "Edit /etc/nginx/nginx.conf and reload; logs go to /var/log/nginx/error.log.",
    "Add the host to /etc/hosts.",
    "Clone into /home/user/projects or ~/.ssh/config.",
    r"Install into C:\Users\YourName\AppData\Local.",
    "The API path is /api/v1/users and https://host.example.com/var/x.",
    "A fraction: 3/4, a date 2024/01/02, a regex /^abc$/.",
    "```bash\ncd /tmp && ls -la\n```",
    "Python's `os.path.join('a', 'b')` and the `/usr/bin/env` shebang.",
    r"In a regex, \\d+\\s matches digits then a space.",
])
def test_file_paths_clean(text: str) -> None:
    assert find_file_paths(text) == []


@pytest.mark.parametrize(("text", "leak"), [
    ("DATABASE_URL=postgres://app:Xk29_pQ@db.prod.internal:5432/app",
     "postgres://app:Xk29_pQ@db.prod.internal:5432/app"),
    ("redis://:s3cretRedis@cache:6379/0 works", "redis://:s3cretRedis@cache:6379/0"),
    ("mongodb+srv://admin:hunter2x@cluster0.mongodb.net/test",
     "mongodb+srv://admin:hunter2x@cluster0.mongodb.net/test"),
    ("git clone https://bot:ghp_abc123@github.com/org/repo.git",
     "https://bot:ghp_abc123@github.com/org/repo.git"),
    ("Server=db01;Database=pay;User Id=sa;Password=Hunter2!x;",
     "Server=db01;Database=pay;User Id=sa;Password=Hunter2!x"),
])
def test_connection_strings_caught(text: str, leak: str) -> None:
    assert _found(find_connection_strings(text), text) == [leak]


@pytest.mark.parametrize("text", [
    "Use postgres://user:password@localhost:5432/mydb as a template.",
    "postgres://admin:${DB_PASSWORD}@db:5432/app",
    "mysql://root:<password>@127.0.0.1/app",
    "amqp://guest:****@rabbit/",
    "postgres://app@db.internal/app has no password.",
    "https://docs.python.org/3/",
    "Server=db01;Database=pay;User Id=sa;Password=your_password;",
    "a=1; b=2; c=3;",
])
def test_connection_strings_clean(text: str) -> None:
    assert find_connection_strings(text) == []


@pytest.mark.parametrize(("host", "internal"), [
    ("localhost", True), ("LOCALHOST.", True), ("api.internal", True), ("x.corp", True),
    ("10.1.1.1", True), ("[fd00::1]", True), ("docs.python.org", False),
    ("example.com", False), ("8.8.8.8", False), ("192.0.2.1", False), ("corp", False),
])
def test_is_internal_host(host: str, internal: bool) -> None:
    assert is_internal_host(host) is internal


@pytest.mark.parametrize(("value", "private"), [
    ("10.255.0.1", True), ("172.31.255.255", True), ("172.32.0.1", False),
    ("0.0.0.0", False), ("::", False),  # noqa: S104 - values classified, not bound
    ("2001:db8::5", False), ("fc00::1", True),
    ("not-an-ip", False),
])
def test_is_private_address(value: str, private: bool) -> None:
    assert is_private_address(value) is private


@pytest.mark.parametrize(("value", "placeholder"), [
    ("password", True), ("${DB_PASS}", True), ("<secret>", True), ("****", True),
    ("%PASSWORD%", True), ("{{ vault_pw }}", True), ("Xk29_pQ", False), ("hunter2x", False),
])
def test_is_placeholder_secret(value: str, placeholder: bool) -> None:
    assert is_placeholder_secret(value) is placeholder
