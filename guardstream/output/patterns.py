"""Pattern filters for what a model can leak about the operator's infrastructure.

Internal URLs and host names, private IP addresses, file system paths that name users or
machine layout, and connection strings with credentials. Every detector errs toward
leaving documentation-style text alone, because an answer that explains how to configure
nginx must survive the filter unchanged:

* documentation-reserved names and addresses (RFC 2606 / 6761 `example.com`, `*.test`,
  `*.example`; RFC 5737 / 3849 `192.0.2.0/24`, `2001:db8::/32`...) belong to nobody and are
  never findings;
* placeholder credentials (`user:password@`, `${DB_PASSWORD}`, `<password>`, `****`) are
  not secrets;
* home directories of generic users (`/home/user`, `C:\\Users\\YourName`) and a short list
  of conventional system paths (`/etc/nginx/`, `/var/log/`...) say nothing about the
  operator's machines;
* bare `*.local` / `*.lan` names need a port, a path or three labels (`threading.local` is
  Python, `printer.office.lan` is a host); single-label URL hosts (`http://web:8000`, as in
  docker-compose examples) are not flagged.

All patterns are linear-time (no nested quantifiers over the same characters).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from guardstream.output.spans import Span

__all__ = [
    "find_connection_strings",
    "find_file_paths",
    "find_internal_urls",
    "find_private_ips",
    "is_documentation_domain",
    "is_internal_host",
    "is_placeholder_secret",
    "is_private_address",
]

# ----------------------------------------------------------------------------- hosts

_DOC_DOMAINS = ("example.com", "example.net", "example.org")
_DOC_TLDS = ("example", "test", "invalid")
_INTERNAL_STRONG = ("internal", "corp", "intranet", "localdomain", "home.arpa", "localhost")
_INTERNAL_WEAK = ("local", "lan")

_PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "fc00::/7", "fe80::/10", "::1/128",
))
_DOC_NETS = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32",
))


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def is_documentation_domain(host: str) -> bool:
    """True for names reserved for documentation (RFC 2606 / 6761)."""
    host = _normal_host(host)
    return any(host == d or host.endswith("." + d) for d in _DOC_DOMAINS) or (
        host.rsplit(".", 1)[-1] in _DOC_TLDS
    )


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidate = _normal_host(text).split("%", 1)[0]  # IPv6 zone id (fe80::1%eth0)
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_private_address(text: str) -> bool:
    """True for an IP literal in a private, loopback, link-local, CGNAT or ULA range.

    Documentation ranges (which Python's `is_private` includes) and the unspecified address
    (`0.0.0.0`, `::`: a bind-all, not a host) are not private here.
    """
    address = _parse_ip(text)
    if address is None:
        return False
    if any(address in net for net in _DOC_NETS):
        return False
    return any(address.version == net.version and address in net for net in _PRIVATE_NETS)


def _allowed(host: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def is_internal_host(host: str, allowed: Iterable[str] = ()) -> bool:
    """True for a host that only resolves inside someone's network.

    localhost, `*.internal`, `*.corp`, `*.local`, `*.lan`, `*.intranet`, `*.home.arpa` and
    private IP literals; never a name in `allowed` (exact, or `.suffix`).
    """
    host = _normal_host(host)
    if not host or _allowed(host, allowed):
        return False
    if _parse_ip(host) is not None:
        return is_private_address(host)
    if host == "localhost":
        return True
    return any(host.endswith("." + tld) for tld in (*_INTERNAL_STRONG, *_INTERNAL_WEAK))


# ----------------------------------------------------------------------------- secrets

_PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "pw", "secret", "changeme", "yourpassword",
    "your_password", "your-password", "mypassword", "my_password", "my-password",
    "dbpassword", "db_password", "pass123", "password123", "token", "apikey", "api_key",
})
_PLACEHOLDER_SHAPES = re.compile(
    r"(?i)^(?:[<{\[(].*[>}\])]|\$\{?[A-Za-z_]\w*\}?|%[A-Za-z_]\w*%|[x*.•#]+|\.{3}|"
    r"your[_\-]?\w*|<%.*%>|\{\{.*\}\})$"
)


def is_placeholder_secret(value: str) -> bool:
    """True for credentials that documentation uses as stand-ins, not real secrets."""
    value = value.strip().strip("'\"`")
    return not value or value.lower() in _PLACEHOLDER_WORDS or bool(
        _PLACEHOLDER_SHAPES.match(value))


# ----------------------------------------------------------------------------- URLs

_URL = re.compile(r"(?i)(?<![\w+.\-])[a-z][a-z0-9+.\-]{0,20}://[^\s<>\"'`\\]+")
_TRAILING = ".,;:!?'\"*_]}>"


def _trim(text: str, start: int, end: int) -> int:
    """End of a URL/path without sentence punctuation or an unbalanced closing paren."""
    while end > start:
        char = text[end - 1]
        if char in _TRAILING:
            end -= 1
        elif char == ")" and text.count("(", start, end) < text.count(")", start, end):
            end -= 1
        else:
            break
    return end


def _urls(text: str) -> Iterator[tuple[int, int, str | None, str | None]]:
    """(start, end, host, password) of each scheme://... URL."""
    for m in _URL.finditer(text):
        end = _trim(text, m.start(), m.end())
        url = text[m.start():end]
        try:
            parts = urlsplit(url)
            host, password = parts.hostname, parts.password
        except ValueError:  # e.g. an unclosed IPv6 bracket: not a URL we can judge
            continue
        yield m.start(), end, host, password


_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_BARE_HOST = re.compile(
    r"(?i)(?<![\w.@/\-])((?:" + _LABEL + r"\.)+(?:internal|corp|intranet|localdomain|"
    r"localhost|local|lan|home\.arpa))(?![\w\-]|\.[a-z0-9])(:\d{1,5}(?!\d))?(/[^\s<>\"'`]*)?"
)
_BARE_LOCALHOST = re.compile(r"(?i)(?<![\w.@/\-])localhost:\d{1,5}(?!\d)(/[^\s<>\"'`]*)?")


def find_internal_urls(text: str, allowed_hosts: Iterable[str] = ()) -> list[Span]:
    """URLs and bare host names that point inside a private network."""
    allowed = tuple(allowed_hosts)
    spans: list[Span] = []
    covered: list[tuple[int, int]] = []
    for start, end, host, _ in _urls(text):
        covered.append((start, end))
        if host and is_internal_host(host, allowed):
            spans.append(Span("internal_urls", "INTERNAL_URL", start, end))
    for m in _BARE_HOST.finditer(text):
        if any(s <= m.start() < e for s, e in covered):
            continue
        host = m.group(1).lower()
        labels = host.count(".") + 1
        weak = host.rsplit(".", 1)[-1] in _INTERNAL_WEAK
        if weak and not (m.group(2) or m.group(3) or labels >= 3):
            continue
        if not is_internal_host(host, allowed):
            continue
        spans.append(Span("internal_urls", "INTERNAL_URL", m.start(),
                          _trim(text, m.start(), m.end())))
    if not _allowed("localhost", allowed):
        for m in _BARE_LOCALHOST.finditer(text):
            if not any(s <= m.start() < e for s, e in covered):
                spans.append(Span("internal_urls", "INTERNAL_URL", m.start(),
                                  _trim(text, m.start(), m.end())))
    return spans


# ----------------------------------------------------------------------------- IPs

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d|\w|/\d)(?::\d{1,5}(?!\d))?")
_IPV6 = re.compile(r"(?i)(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:%[\w.]+)?(?![\w:])")
_VERSION_CUE = re.compile(r"(?i)\b(?:version|ver|release|build|firmware)\s*[:#]?\s*$")


def find_private_ips(text: str, allowed_hosts: Iterable[str] = ()) -> list[Span]:
    """IP literals in private ranges, with their port (`10.0.3.7:5432`)."""
    allowed = tuple(allowed_hosts)
    spans: list[Span] = []
    for m in _IPV4.finditer(text):
        address = m.group(0).split(":", 1)[0]
        if _VERSION_CUE.search(text, max(0, m.start() - 24), m.start()):
            continue
        if is_private_address(address) and not _allowed(address, allowed):
            spans.append(Span("private_ips", "PRIVATE_IP", m.start(), m.end()))
    for m in _IPV6.finditer(text):
        value = m.group(0)
        if value == "::1" and text[m.start() - 1:m.start()] == "[" and not re.match(
                r"\]:\d", text[m.end():m.end() + 3]):
            continue  # a[::1] is a Python slice, not the loopback address
        if is_private_address(value) and not _allowed(_normal_host(value), allowed):
            spans.append(Span("private_ips", "PRIVATE_IP", m.start(), m.end()))
    return spans


# ----------------------------------------------------------------------------- paths

_GENERIC_USERS = frozenset({
    "user", "username", "yourname", "your_name", "your-name", "yourusername",
    "your_username", "your-username", "you", "me", "name", "someone", "example", "ubuntu",
    "ec2-user", "pi", "vagrant", "runner", "foo", "demo", "john.doe", "jdoe", "...",
})
_CONVENTIONAL = (
    "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/fstab", "/etc/os-release",
    "/etc/environment", "/etc/profile", "/etc/crontab", "/etc/cron.d/", "/etc/nginx/",
    "/etc/apache2/", "/etc/httpd/", "/etc/ssh/ssh_config", "/etc/ssh/sshd_config",
    "/etc/systemd/", "/etc/apt/", "/etc/yum.repos.d/", "/etc/docker/", "/etc/sysctl.conf",
    "/etc/locale", "/etc/timezone", "/etc/localtime", "/etc/bash.bashrc", "/etc/sudoers",
    "/var/log/", "/var/www/", "/var/run/docker.sock", "/var/lib/docker/",
    "/var/tmp",  # noqa: S108 - a path compared against, never written to
    "/opt/homebrew/", "/etc/letsencrypt/", "/etc/ssl/certs",
)
_PART = r"[\w.\-@+%~$]+"
_UNIX = re.compile(
    r"(?<![\w.~/\\\-:])/(home|Users|root|etc|var|srv|opt|mnt)((?:/" + _PART + r")+)/?"
)
_SEP = r"(?:\\{1,2}|/)"
_WINDOWS = re.compile(
    r"(?i)(?<![\w\\])[a-z]:" + _SEP + r"(?:users|documents and settings)" + _SEP
    + r"([^\\/\s\"'<>|?*:]+)((?:" + _SEP + r"[^\\/\s\"'<>|?*:]+)*)"
)
_UNC = re.compile(r"(?<![\w\\])\\\\[A-Za-z0-9][A-Za-z0-9.\-_]*\\[A-Za-z0-9.\-_$]+"
                  r"(?:\\[^\\\s\"'<>|?*]+)*")


def _generic_user(name: str) -> bool:
    name = name.strip().lower()
    return name in _GENERIC_USERS or name[:1] in "<{$%[" or name.startswith("your")


def find_file_paths(text: str) -> list[Span]:
    """Paths that name a user's home, or the operator's own layout under /etc, /var, /srv."""
    spans: list[Span] = []
    for m in _UNIX.finditer(text):
        end = _trim(text, m.start(), m.end())
        path = text[m.start():end]
        root, rest = m.group(1), m.group(2)
        if root in ("home", "Users"):
            if _generic_user(rest.split("/")[1]):
                continue
        elif root != "root" and any(path.startswith(c) or path == c.rstrip("/")
                                    for c in _CONVENTIONAL):
            continue
        spans.append(Span("file_paths", "FILE_PATH", m.start(), end))
    for m in _WINDOWS.finditer(text):
        if _generic_user(m.group(1)):
            continue
        spans.append(Span("file_paths", "FILE_PATH", m.start(), _trim(text, m.start(),
                                                                       m.end())))
    for m in _UNC.finditer(text):
        spans.append(Span("file_paths", "FILE_PATH", m.start(), _trim(text, m.start(),
                                                                       m.end())))
    return spans


# ----------------------------------------------------------------------------- credentials

_KV_RUN = re.compile(
    r"(?i)(?:[a-z][a-z0-9 _]{0,30}=[^;\r\n\"'`]*;[ \t]*){2,}(?:[a-z][a-z0-9 _]{0,30}="
    r"[^;\r\n\"'`\s]*)?"
)
_KV_PASSWORD = re.compile(r"(?i)(?:^|;)[ \t]*(?:password|pwd)[ \t]*=([^;]*)")
_KV_TARGET = re.compile(r"(?i)(?:^|;)[ \t]*(?:server|data source|host|address|addr|"
                        r"network address|uid|user id|user)[ \t]*=")


def find_connection_strings(text: str) -> list[Span]:
    """`scheme://user:pass@host` URLs and `Server=..;Password=..;` strings with a real
    (non-placeholder) password."""
    spans: list[Span] = []
    for start, end, _, password in _urls(text):
        if password is not None and not is_placeholder_secret(password):
            spans.append(Span("connection_strings", "CONNECTION_STRING", start, end))
    for m in _KV_RUN.finditer(text):
        run = m.group(0)
        secret = _KV_PASSWORD.search(run)
        if secret and _KV_TARGET.search(run) and not is_placeholder_secret(secret.group(1)):
            spans.append(Span("connection_strings", "CONNECTION_STRING", m.start(),
                              m.start() + len(run.rstrip("; \t"))))
    return spans
