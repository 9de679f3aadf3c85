"""Evaluate PII/secrets redaction: article regex vs vanilla Presidio vs guardstream's engine.

Generates a labelled set of customer messages from templates filled with Faker values
(several locales) plus benign look-alikes, runs the three systems side by side in the same
process, and prints a markdown table. Exit status 1 if guardstream's engine misses the goal.

Splits: ``dev`` templates + seeds were used while tuning the recognizers; ``test`` templates
and seeds were written up front and only run for the final numbers (held out).

    python scripts/eval_redact.py --split test            # the held-out numbers
    python scripts/eval_redact.py --split dev --show-leaks  # while tuning

A value "leaks" if its exact string survives in the output; for numbers (phones, cards,
SSNs, IBANs) also if its digit sequence survives in the output's digits.
Data: synthetic (Faker, MIT licence) + templates in this file (Apache-2.0, this project).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import string
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from faker import Faker

# --------------------------------------------------------------------------- templates
# Slots: {name} {email} {phone} {card} {ssn} {iban} {ipv4} {ipv6} {openai} {anthropic}
# {aws_akid} {aws_secret} {github} {slack} {stripe} {jwt} {pem} {password} {address}

DEV_TEMPLATES = [
    "Hi, my name is {name} and my email is {email}. Please call me at {phone}.",
    "Hello support, I'm {name}. My card {card} was charged twice, can you refund it?",
    "Please update my billing address to {address}. Thanks, {name}",
    "My SSN is {ssn}, I need it for the tax form.",
    "Transfer the refund to IBAN {iban} please.",
    "Our server at {ipv4} keeps timing out when I call your API.",
    "The IPv6 address {ipv6} is blocked by your firewall, can you whitelist it?",
    "I accidentally pasted my key {openai} in the chat, is that a problem?",
    "Here is my Anthropic key: {anthropic}",
    "aws_access_key_id = {aws_akid}\naws_secret_access_key = {aws_secret}",
    "My GitHub token {github} stopped working after the migration.",
    "The bot uses {slack} to post messages but gets not_authed.",
    "We configured Stripe with {stripe} and payments fail.",
    "Authorization: Bearer {jwt}",
    "Can you check why this key is rejected?\n{pem}",
    "my password is {password} and it does not let me log in",
    "login: {email}\npwd: {password}",
    "You can reach me on {phone} or write to {email}.",
    "Ship it to {name}, {address}.",
    "Card number {card}, exp 08/27, name on card {name}.",
    "Dear team, I moved to {address}, please update my records. Regards, {name}",
    "call me back at {phone} asap!!",
    "The login for {email} fails with password {password}",
    "Social security number: {ssn}. Date of birth not included.",
    "please send the invoice to {email} and cc {name}",
    "Connection from {ipv4} to {ipv6} dropped.",
    "OPENAI_API_KEY={openai}\nGITHUB_TOKEN={github}",
    "I paid with {card} but the order is still pending.",
    "IBAN: {iban} (account holder: {name})",
    "My phone number changed to {phone}.",
    "Our secret key is {aws_secret}, with access key {aws_akid}",
    "curl -H 'Authorization: Bearer {jwt}' https://api.example.com/v1/me",
    "{name} here. New password: {password}",
    "Use {stripe} for the test, and mail results to {email}",
    "Address: {address}\nPhone: {phone}",
    "I am {name}, and I live at {address}.",
    "slack token {slack} leaked in our logs, please revoke",
    "Can you whitelist {ipv4}? Thanks, {name}",
    # harder: weak or no cues, lower-case, several values, code and config contexts
    "{name} said the refund would arrive this week, it hasn't.",
    "I spoke with {name} yesterday about ticket 5531.",
    "{phone}",
    "numbers: {phone} / {phone}",
    "contact {name} ({email}, {phone}) for the handover",
    "{card}",
    "card: {card} cvv 123",
    "sending from {ipv4}, fallback {ipv4}",
    '{"user": "{email}", "password": "{password}"}',
    "DATABASE_URL=postgres://admin:{password}@db.internal:5432/app",
    "my pin and password: password={password}",
    "The package for {name} should go to {address} - she is not home before 6.",
    "new tenant {name}, moving into {address}",
    "SSN {ssn}, DOB 04/12/1987, phone {phone}",
    "pay to {iban} / BIC DEUTDEFF",
    "headers = {'x-api-key': '{openai}'}",
    "token={github}&user={email}",
    "key: {anthropic}\nregion: us-east-1",
]

TEST_TEMPLATES = [
    "Good morning, this is {name}. I can't access my account registered under {email}.",
    "Please charge my other card instead: {card}",
    "My passwd is {password} — I know I shouldn't share it.",
    "Could someone phone me? {phone} works best after 5pm.",
    "For the background check they need SSN {ssn}.",
    "Wire the money to {iban}, reference ACME-2291.",
    "Requests from {ipv4} are rate limited even though we're on the pro plan.",
    'export OPENAI_API_KEY="{openai}"',
    "ANTHROPIC_API_KEY: {anthropic}",
    "[default]\naws_access_key_id={aws_akid}\naws_secret_access_key={aws_secret}",
    "git clone https://{github}@github.com/acme/app.git fails",
    "Webhook token: {slack}",
    "stripe.api_key = '{stripe}'",
    "The cookie contains {jwt} — is that normal?",
    "{pem}\nthis is the deploy key from the server",
    "Password: {password}",
    "My new address is {address}. My mobile is {phone}.",
    "Send the replacement to {name} at {address}",
    "Hi there, {name} from accounting. Email me at {email} or ring {phone}.",
    "The credit card ending ... actually full number {card}, CVV withheld.",
    "Our VPN gateway is {ipv6}.",
    "Kind regards,\n{name}\n{phone}",
    "pls reset pw for {email}, current pw {password}",
    "Account holder: {name}, IBAN {iban}",
    "I gave my SSN ({ssn}) to the agent on the phone.",
    "Mr. {name} asked us to update the delivery address to {address}.",
    "Token {github} and key {openai} are both in the .env file.",
    "I'm {name}; you can text me at {phone}.",
]

DEV_BENIGN = [
    "We upgraded from version {version} to {version2} and the build broke.",
    "The meeting is on {date} at {time}.",
    "My order #{order} hasn't arrived yet.",
    "See the docs at {url} for details.",
    "The total was ${price} including tax.",
    "Tracking number {tracking} shows no movement since Monday.",
    "def add(a, b):\n    return a + b  # returns {int1}",
    "If x = {int1} and y = {int2}, then x * y = {prod}.",
    "My password is not working, can you help me reset it?",
    "I forgot my password, where is the reset link?",
    "Commit {sha} introduced the regression.",
    "Ticket {ticket} was closed without a fix.",
    "Invoice {invoice} for {date} is attached.",
    "Please compare plans: basic costs {price} and pro costs {price2} per month.",
    "pip install requests=={version} fails on Python 3.11.",
    "The request id was {uuid}.",
    "Error at line {int1}: unexpected token.",
    "Set timeout=30 and retries=5 in config.yaml.",
    "Our office is closed on {date}.",
    "Run `docker run -p 8080:80 nginx:{version}` and open localhost:8080.",
    "The API returns 429 after {int1} requests per minute.",
    "Temperature was 23.5 degrees and humidity 61%.",
    "Chapter 3.2.1 explains the theorem.",
    "Order number {order10} was charged {price}.",
    "Apple Pay did not work on my iPhone 15 Pro.",
    "I talked to Customer Service and they told me to write here.",
    "Thanks, Support Team! Have a nice day.",
    "Is the Berlin office open on Easter Monday?",
    "Python 3.12 and Django 5.0 are supported since {date}.",
    "My SSN card was lost, what should I do?",
    "Call us at the number on the back of your card.",
    "The function returns -1 when the index {int1} is out of range.",
    "Model GPT-4o costs {price} per 1M tokens.",
    "Use port 5432 and host localhost for the database.",
    "Your coupon code is SPRING{int1}.",
    "Room 204, building B, is where the workshop happens.",
]

TEST_BENIGN = [
    "Release {version} fixes the memory leak reported in {version2}.",
    "Delivery scheduled for {date}, between {time} and 18:00.",
    "Where is my order {order}? It's been two weeks.",
    "Our status page is {url}.",
    "Subtotal: {price} USD, shipping {price2} USD.",
    "The parcel {tracking} is stuck at the depot.",
    "for i in range({int1}):\n    print(i ** 2)",
    "Solve {int1} + {int2} = ? I get {prod}.",
    "The password field is required but I can't see it.",
    "Is my password stored encrypted?",
    "git revert {sha}",
    "Case {ticket} is still open.",
    "npm install lodash@{version}",
    "Session {uuid} expired.",
    "My account number is {order10} and I want to close it.",
    "Firmware v{version4} is available.",
]


# --------------------------------------------------------------------------- values

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "en_CA", "en_AU", "nl_NL"]
ADDRESS_LOCALES = ["en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]
_HONORIFIC = re.compile(r"^(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof|Univ\.Prof|Dipl\.-Ing)\.?\s+)+")


@dataclass
class Sample:
    text: str
    values: list[tuple[str, str]] = field(default_factory=list)  # (kind, value)
    benign: bool = False


class Gen:
    """All random values for one split come from one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed + i)

    def f(self, locales: list[str] | None = None) -> Faker:
        return self.fakers[self.rng.choice(locales or LOCALES)]

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # --- PII values
    def name(self) -> str:
        f = self.f()
        return _HONORIFIC.sub("", f"{f.first_name()} {f.last_name()}").strip()

    def email(self) -> str:
        f = self.f()
        return self.rng.choice([f.email, f.free_email, f.company_email, f.safe_email])()

    def phone(self) -> str:
        return str(self.f().phone_number())

    def card(self) -> str:
        kind = self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb", "visa"])
        digits = self.fakers["en_US"].credit_card_number(card_type=kind)
        style = self.rng.choice(["plain", "space4", "dash4", "amex", "space4"])
        if style == "plain":
            return digits
        if style == "amex" and len(digits) == 15:
            return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
        sep = "-" if style == "dash4" else " "
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def ssn(self) -> str:
        v = str(self.fakers["en_US"].ssn())
        return v.replace("-", " ") if self.rng.random() < 0.15 else v

    def iban(self) -> str:
        loc = self.rng.choice(["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT"])
        v = str(self.fakers[loc].iban())
        if self.rng.random() < 0.5:
            v = " ".join(v[i : i + 4] for i in range(0, len(v), 4))
        return v

    def ipv4(self) -> str:
        f = self.fakers["en_US"]
        return str(self.rng.choice([f.ipv4_public, f.ipv4_private, f.ipv4])())

    def ipv6(self) -> str:
        v = str(self.fakers["en_US"].ipv6())
        return v

    def openai(self) -> str:
        an = string.ascii_letters + string.digits
        if self.rng.random() < 0.5:
            return "sk-" + self.s(an, 20) + "T3BlbkFJ" + self.s(an, 20)
        return "sk-proj-" + self.s(an + "_-", 74) + "T3BlbkFJ" + self.s(an + "_-", 74)

    def anthropic(self) -> str:
        return "sk-ant-api03-" + self.s(string.ascii_letters + string.digits + "_-", 93) + "AA"

    def aws_akid(self) -> str:
        return self.rng.choice(["AKIA", "ASIA"]) + self.s(string.ascii_uppercase + "234567", 16)

    def aws_secret(self) -> str:
        return self.s(string.ascii_letters + string.digits + "/+", 40)

    def github(self) -> str:
        an = string.ascii_letters + string.digits
        if self.rng.random() < 0.3:
            return "github_pat_" + self.s(an, 22) + "_" + self.s(an, 59)
        return self.rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + self.s(an, 36)

    def slack(self) -> str:
        p = self.rng.choice(["xoxb", "xoxp", "xoxa", "xoxs"])
        return f"{p}-{self.s(string.digits, 11)}-{self.s(string.digits, 13)}-" + self.s(
            string.ascii_letters + string.digits, 24
        )

    def stripe(self) -> str:
        p = self.rng.choice(["sk_live_", "rk_live_", "pk_live_", "sk_test_"])
        return p + self.s(string.ascii_letters + string.digits, self.rng.choice([24, 34, 99]))

    def jwt(self) -> str:
        def b64(obj: object) -> str:
            raw = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        head = b64({"alg": self.rng.choice(["HS256", "RS256"]), "typ": "JWT"})
        body = b64({"sub": self.s(string.digits, 8), "iat": self.rng.randint(10**9, 2 * 10**9)})
        sig = b64(bytes(self.rng.getrandbits(8) for _ in range(32)))
        return f"{head}.{body}.{sig}"

    def pem(self) -> str:
        kind = self.rng.choice(["RSA ", "", "EC ", "OPENSSH "])
        lines = [
            self.s(string.ascii_letters + string.digits + "+/", 64)
            for _ in range(self.rng.randint(3, 8))
        ]
        return (
            f"-----BEGIN {kind}PRIVATE KEY-----\n"
            + "\n".join(lines)
            + (f"\n-----END {kind}PRIVATE KEY-----")
        )

    def password(self) -> str:
        f = self.fakers["en_US"]
        r = self.rng.random()
        if r < 0.6:
            return str(f.password(length=self.rng.randint(8, 16)))
        if r < 0.85:
            return str(f.password(length=self.rng.randint(8, 14), special_chars=False))
        return f.word() + str(self.rng.randint(10, 9999)) + self.rng.choice(["!", "?", "#", ""])

    def address(self) -> tuple[str, str]:
        f = self.f(ADDRESS_LOCALES)
        street = str(f.street_address()).replace("\n", ", ").strip()
        city = str(f.city())
        pc = str(f.postcode())
        full = self.rng.choice([street, f"{street}, {city}", f"{street}, {pc} {city}"])
        return full, street

    # --- benign values
    def benign(self, slot: str) -> str:
        r = self.rng
        if slot in ("version", "version2"):
            return f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 40)}"
        if slot == "version4":
            return f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}.{r.randint(100, 9999)}"
        if slot == "date":
            day = self.fakers["en_US"].date_object()
            return r.choice(
                [
                    day.isoformat(),
                    day.strftime("%m/%d/%Y"),
                    day.strftime("%d.%m.%Y"),
                    day.strftime("%B %d, %Y"),
                ]
            )
        if slot == "time":
            return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        if slot == "order":
            return str(r.randint(10_000, 99_999_999))
        if slot == "order10":
            return str(r.randint(1_000_000_000, 9_999_999_999))
        if slot == "url":
            return r.choice(
                [
                    "https://docs.python.org/3/library/re.html",
                    "https://example.com/help/article/123",
                    "https://status.openai.com",
                    "www.wikipedia.org/wiki/Luhn_algorithm",
                    f"https://github.com/acme/app/issues/{r.randint(1, 9999)}",
                ]
            )
        if slot in ("price", "price2"):
            return f"{r.randint(1, 5000):,}.{r.randint(0, 99):02d}"
        if slot == "tracking":
            while True:
                d = "".join(r.choice(string.digits) for _ in range(r.choice([12, 16, 20, 22])))
                if not _luhn(d):
                    return r.choice([d, "1Z" + self.s(string.ascii_uppercase + string.digits, 16)])
        if slot in ("int1", "int2"):
            return str(r.randint(2, 999))
        if slot == "sha":
            return self.s("0123456789abcdef", r.choice([7, 40]))
        if slot == "ticket":
            return r.choice(["#", "TCK-", "JIRA-"]) + str(r.randint(100, 99999))
        if slot == "invoice":
            return "INV-" + str(r.randint(2019, 2026)) + "-" + str(r.randint(1000, 9999))
        if slot == "uuid":
            return str(self.fakers["en_US"].uuid4())
        raise KeyError(slot)


def _luhn(d: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch) * (2 if i % 2 else 1)
        total += x - 9 if x > 9 else x
    return total % 10 == 0


_SLOT = re.compile(r"\{(\w+)\}")


def build_set(split: str, n_pii: int, n_benign: int, seed: int | None = None) -> list[Sample]:
    seed = {"dev": 1000, "test": 9000}[split] if seed is None else seed
    pii_t = DEV_TEMPLATES if split == "dev" else TEST_TEMPLATES
    ben_t = DEV_BENIGN if split == "dev" else TEST_BENIGN
    g = Gen(seed)
    out: list[Sample] = []
    for i in range(n_pii):
        tpl = pii_t[i % len(pii_t)]
        values: list[tuple[str, str]] = []

        def fill(m: re.Match[str], values: list[tuple[str, str]] = values) -> str:
            slot = m.group(1)
            if slot == "address":
                full, street = g.address()
                values.append(("address", street))
                return full
            v = getattr(g, slot)()
            values.append((slot, v))
            return str(v)

        out.append(Sample(_SLOT.sub(fill, tpl), values))
    for i in range(n_benign):
        tpl = ben_t[i % len(ben_t)]
        cache: dict[str, str] = {}

        def fill_b(m: re.Match[str], cache: dict[str, str] = cache) -> str:
            slot = m.group(1)
            if slot == "prod":
                return str(int(cache["int1"]) * int(cache["int2"]))
            cache[slot] = g.benign(slot)
            return cache[slot]

        out.append(Sample(_SLOT.sub(fill_b, tpl), benign=True))
    return out


# --------------------------------------------------------------------------- systems


class ArticleRegex:
    """The article's PIIDetector, PATTERNS copied verbatim (the baseline)."""

    PATTERNS: ClassVar[dict[str, str]] = {
        "ssn": r"\b\d{3}-\d{2}-\d{4}\b",
        "credit_card": r"\b(?:\d{4}[-\s]?){3}\d{4}\b",
        "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b",
        "phone_us": r"\b(?:\+1[-.\s]?)?\(?\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}\b",
        "ip_address": r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
        "aws_key": r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        "api_key_generic": r"\b(?:sk-|pk_|rk_)[a-zA-Z0-9]{20,}\b",
        "date_of_birth": r"\b(?:0[1-9]|1[0-2])/(?:0[1-9]|[12]\d|3[01])/(?:19|20)\d{2}\b",
    }

    def redact(self, text: str) -> str:
        matches = []
        for pii_type, pattern in self.PATTERNS.items():
            for m in re.finditer(pattern, text):
                matches.append((m.start(), m.end(), pii_type))
        matches.sort(key=lambda m: m[0], reverse=True)
        for start, end, pii_type in matches:
            text = text[:start] + f"[{pii_type.upper()}_REDACTED]" + text[end:]
        return text


class VanillaPresidio:
    """AnalyzerEngine defaults (all recognizers, all entities) + AnonymizerEngine."""

    def __init__(self) -> None:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        from guardstream.detectors.pii.offline import (
            SPACY_MODEL_PACKAGE,
            install_offline_tldextract,
        )

        install_offline_tldextract()  # same no-network condition for both
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": SPACY_MODEL_PACKAGE}],
            }
        )
        self.analyzer = AnalyzerEngine(nlp_engine=provider.create_engine())
        self.anonymizer = AnonymizerEngine()

    def redact(self, text: str) -> str:
        results = self.analyzer.analyze(text=text, language="en")
        out = self.anonymizer.anonymize(text=text, analyzer_results=results)  # type: ignore[arg-type]
        return str(out.text)


class Guardstream:
    def __init__(self) -> None:
        from guardstream.detectors.pii import PiiEngine

        self.engine = PiiEngine()

    def redact(self, text: str) -> str:
        return self.engine.redact(text).text

    def batch_rate(self, texts: list[str], size: int = 8) -> float:
        """texts/s with ``redact_many`` over batches of ``size`` (one request's messages)."""
        t0 = time.perf_counter()
        for i in range(0, len(texts), size):
            self.engine.redact_many(texts[i : i + size])
        return len(texts) / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- scoring

NUMERIC = {"phone", "card", "ssn", "iban"}
STRUCTURED_KINDS = [
    "email",
    "phone",
    "card",
    "ssn",
    "iban",
    "ipv4",
    "ipv6",
    "openai",
    "anthropic",
    "aws_akid",
    "aws_secret",
    "github",
    "slack",
    "stripe",
    "jwt",
    "pem",
    "password",
]


def leaked(kind: str, value: str, output: str) -> bool:
    if kind == "pem":
        body = [ln for ln in value.splitlines() if not ln.startswith("-----")]
        return any(ln in output for ln in body)
    if value in output:
        return True
    if kind in NUMERIC:
        core = re.split(r"(?i)\s*(?:x|ext\.?)\s*\d+$", value)[0]
        digits = re.sub(r"\D", "", core)
        if kind == "iban":
            digits = re.sub(r"\s", "", value)
            return digits in re.sub(r"\s", "", output)
        return len(digits) >= 6 and digits in re.sub(r"\D", "", output)
    return False


@dataclass
class Score:
    leaks: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    benign_altered: int = 0
    benign_total: int = 0
    seconds: float = 0.0
    texts: int = 0
    examples: list[str] = field(default_factory=list)

    def rate(self, kinds: list[str]) -> float:
        leak = sum(self.leaks[k][0] for k in kinds)
        total = sum(self.leaks[k][1] for k in kinds)
        return leak / total if total else 0.0


def run_interleaved(
    systems: dict[str, Callable[[str], str]], samples: list[Sample], block: int = 25
) -> dict[str, tuple[list[str], float]]:
    """Outputs and seconds per system, timed in alternating blocks of texts.

    The machine is shared: running one system after the other lets a burst of load
    from elsewhere land on one of them only. Alternating small blocks spreads it evenly.
    """
    outputs: dict[str, list[str]] = {k: [] for k in systems}
    seconds: dict[str, float] = dict.fromkeys(systems, 0.0)
    for i in range(0, len(samples), block):
        chunk = samples[i : i + block]
        for label, fn in systems.items():
            t0 = time.perf_counter()
            outputs[label].extend(fn(s.text) for s in chunk)
            seconds[label] += time.perf_counter() - t0
    return {k: (outputs[k], seconds[k]) for k in systems}


def score(samples: list[Sample], outputs: list[str], seconds: float, show: bool) -> Score:
    sc = Score()
    sc.seconds = seconds
    sc.texts = len(samples)
    for s, out in zip(samples, outputs, strict=True):
        if s.benign:
            sc.benign_total += 1
            if out != s.text:
                sc.benign_altered += 1
                if show:
                    sc.examples.append(f"BENIGN {s.text!r} -> {out!r}")
            continue
        for kind, value in s.values:
            if kind in ("name", "address"):
                hit = value in out
            else:
                hit = leaked(kind, value, out)
            sc.leaks[kind][1] += 1
            if hit:
                sc.leaks[kind][0] += 1
                if show:
                    sc.examples.append(f"LEAK {kind}: {value!r} in {out!r}")
    return sc


GOAL = {"structured": 0.01, "name": 0.05, "address": 0.05, "benign": 0.05, "speedup": 3.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "test"], default="test")
    ap.add_argument("--n-pii", type=int, default=600)
    ap.add_argument("--n-benign", type=int, default=300)
    ap.add_argument("--show-leaks", action="store_true")
    ap.add_argument("--seed", type=int, help="value seed (default: 1000 dev, 9000 test)")
    ap.add_argument("--only", choices=["regex", "vanilla", "guardstream"], action="append")
    args = ap.parse_args(argv)

    samples = build_set(args.split, args.n_pii, args.n_benign, args.seed)
    systems: dict[str, Callable[[], Callable[[str], str]]] = {
        "article regex": lambda: ArticleRegex().redact,
        "vanilla Presidio": lambda: VanillaPresidio().redact,
        "guardstream": lambda: Guardstream().redact,
    }
    short = {"article regex": "regex", "vanilla Presidio": "vanilla", "guardstream": "guardstream"}
    built: dict[str, Callable[[str], str]] = {}
    gs: Guardstream | None = None
    for label, make in systems.items():
        if args.only and short[label] not in args.only:
            continue
        fn = make()
        fn("warm up: John Smith, john@example.com")
        built[label] = fn
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, Guardstream):
            gs = owner
    results = run_interleaved(built, samples)
    scores = {
        label: score(samples, out, secs, args.show_leaks and label == "guardstream")
        for label, (out, secs) in results.items()
    }
    batch_rate = gs.batch_rate([s.text for s in samples]) if gs is not None else None

    n_struct = sum(1 for s in samples for k, _ in s.values if k in STRUCTURED_KINDS)
    print(
        f"\nSplit `{args.split}`: {len(samples)} texts "
        f"({sum(not s.benign for s in samples)} with PII, {n_struct} structured values; "
        f"{sum(s.benign for s in samples)} benign look-alikes)\n"
    )
    labels = list(scores)
    print("| metric | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))

    def row(name: str, vals: list[str]) -> None:
        print(f"| {name} | " + " | ".join(vals) + " |")

    row("structured values leaked", [f"{scores[x].rate(STRUCTURED_KINDS):.1%}" for x in labels])
    for k in STRUCTURED_KINDS:
        if any(scores[x].leaks[k][1] for x in labels):
            row(f"&nbsp;&nbsp;{k}", [f"{scores[x].rate([k]):.1%}" for x in labels])
    row("person names leaked", [f"{scores[x].rate(['name']):.1%}" for x in labels])
    row("street addresses leaked", [f"{scores[x].rate(['address']):.1%}" for x in labels])
    row(
        "benign texts altered",
        [f"{scores[x].benign_altered / max(1, scores[x].benign_total):.1%}" for x in labels],
    )
    row("texts/s (1 core)", [f"{scores[x].texts / scores[x].seconds:.0f}" for x in labels])
    if batch_rate is not None:
        row(
            "texts/s, `redact_many` batches of 8",
            ["n/a" if x != "guardstream" else f"{batch_rate:.0f}" for x in labels],
        )

    failed = False
    if "guardstream" in scores:
        g = scores["guardstream"]
        if g.examples:
            print("\n" + "\n".join(g.examples[:80]), file=sys.stderr)
        checks = {
            "structured": g.rate(STRUCTURED_KINDS) <= GOAL["structured"],
            "name": g.rate(["name"]) <= GOAL["name"],
            "address": g.rate(["address"]) <= GOAL["address"],
            "benign": g.benign_altered / max(1, g.benign_total) <= GOAL["benign"],
        }
        if "vanilla Presidio" in scores:
            v = scores["vanilla Presidio"]
            speed = (g.texts / g.seconds) / (v.texts / v.seconds)
            print(f"\nspeed-up over vanilla Presidio: {speed:.1f}x")
            checks["speedup"] = speed >= GOAL["speedup"]
        missed = [k for k, ok in checks.items() if not ok]
        print("goal: " + ("met" if not missed else "MISSED: " + ", ".join(missed)))
        failed = bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
