"""Storage URLs as shown: every credential hidden, the rest kept so a user can tell which
database it is. Exact expected forms, and a property over any secret."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.store.urls import default_storage_url, raw_userinfo, redact, scrub

S = "hunter2"

REDACTED = [
    (f"postgresql://tune:{S}@db.example:5432/tune", "postgresql://tune:***@db.example:5432/tune"),
    (f"postgresql+psycopg://tune:{S}@db/tune?connect_timeout=1", "postgresql+psycopg://tune:***@db/tune?connect_timeout=1"),
    (f"postgresql://tune@db/tune?password={S}&sslmode=require", "postgresql://tune@db/tune?password=***&sslmode=require"),
    (f"postgresql://tune@db/tune?sslpassword={S}", "postgresql://tune@db/tune?sslpassword=***"),
    (f"mysql://tune@db/tune?passwd={S}", "mysql://tune@db/tune?passwd=***"),
    (f"postgresql://tune@db/tune?api_token={S}&application_name=tune",
     "postgresql://tune@db/tune?api_token=***&application_name=tune"),
    (f"postgresql://tune@db/tune?options=-c%20password%3D{S}", "postgresql://tune@db/tune?options=***"),
    (f"postgresql://tune@db/tune?dsn=password%3D{S}", "postgresql://tune@db/tune?dsn=***"),
    # An unescaped '@' in the password: a parser would cut it there and take the rest for the host.
    (f"postgresql://tune:{S}@x@db:5432/tune", "postgresql://tune:***@db:5432/***"),
    (f"postgresql://tune@team:{S}@db/tune", "postgresql://tune:***@db/***"),
    ("postgresql://tune@db/tune", "postgresql://tune@db/tune"),  # nothing secret: shown whole
    ("sqlite:////tmp/results/tune.db", "sqlite:////tmp/results/tune.db"),
    (f"postgresql://tune:{S}@db:notaport/tune", "postgresql://***"),  # unparseable: the scheme alone
    ("results/tune.db", "results/tune.db"),  # no URL and no ':' or '@' to hold a password: a path, shown
    (f"tune:{S}@db", "***"),  # no URL, but a user and password may be in it
    # Values of any other query key may carry a credential: a driver's own `pw`, pyodbc's whole connection string.
    (f"postgresql://tune@db/tune?pw={S}&sslmode=require", "postgresql://tune@db/tune?pw=***&sslmode=require"),
    (f"mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BUID%3Dbob%3BPWD%3D{S}", "mssql+pyodbc:///?odbc_connect=***"),
    ("postgresql://tune@local\x1bhost/db", "postgresql://tune@local\\x1bhost/db"),  # escapes as text
]


@pytest.mark.parametrize("url, shown", REDACTED, ids=[r[1] for r in REDACTED])
def test_a_url_is_shown_with_its_credentials_hidden_and_the_rest_kept(url, shown):
    assert redact(url) == shown


@pytest.mark.parametrize("url, userinfo", [
    ("postgresql://a:b@h/db", "a:b"), ("postgresql://a:b@c@h/db", "a:b@c"), ("postgresql://h/db?x=a@b", None),
    ("postgresql://h/db", None), ("no scheme a@b", None),
])
def test_the_userinfo_is_what_stands_before_the_last_at_of_the_authority(url, userinfo):
    assert raw_userinfo(url) == userinfo


def test_an_error_message_loses_every_secret_of_its_url_written_plain_or_escaped():
    url = f"postgresql://tune:p%40ss{S}@db/tune?password={S}x&token=t0k3n"
    text = f"could not connect to {url}: password p@ss{S} refused (p%40ss{S}); token t0k3n; {S}x"
    scrubbed = scrub(text, url)
    assert S not in scrubbed and "t0k3n" not in scrubbed and "p@ss" not in scrubbed and "p%40ss" not in scrubbed
    assert scrubbed.startswith("could not connect to ") and "refused" in scrubbed
    assert scrub("no secret here", "postgresql://tune@db/tune") == "no secret here"
    assert scrub(f"bad {S}:notaport", f"postgresql://tune:{S}@db:notaport/x") == f"bad {S}:notaport"  # nothing parsed
    assert S not in scrub(f"bad postgresql://tune:{S}@db:notaport/x", f"postgresql://tune:{S}@db:notaport/x")


def test_the_default_storage_is_the_results_folders_sqlite_file(tmp_path):
    assert default_storage_url(tmp_path / "r") == f"sqlite:///{(tmp_path / 'r' / 'tune.db').resolve()}"
    assert default_storage_url(Path("rel")).startswith("sqlite:////")


SECRETS = st.text(alphabet=string.ascii_letters + string.digits + "!$%^*()-_=+[]{};:,.<>~@", min_size=6, max_size=20)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(secret=SECRETS, key=st.sampled_from(["password", "sslpassword", "passwd", "api_token", "secret", "apikey"]),
       where=st.sampled_from(["password", "query", "both"]))
def test_no_secret_survives_redact_or_scrub(secret, key, where):
    from urllib.parse import quote

    user = f"tune:{quote(secret, safe='')}@" if where != "query" else "tune@"
    query = f"?{key}={quote(secret, safe='')}" if where != "password" else ""
    url = f"postgresql://{user}db.example:5432/tune{query}"
    shown = redact(url)
    assert secret not in shown and quote(secret, safe="") not in shown and "db.example" in shown
    message = scrub(f"connection to {url} failed for {secret}", url)
    assert secret not in message and quote(secret, safe="") not in message


@pytest.mark.parametrize("password, message, kept", [
    ("e", "(psycopg.OperationalError) connection failed: password e refused", "connection failed"),
    ("on", "connection to server on socket failed; password: on", "connection to server"),
    ("db", "database db_main unreachable; password db refused", "database db_main unreachable"),
])
def test_a_short_password_is_hidden_as_a_word_and_the_message_left_whole(password, message, kept):
    """A one-letter password "e" turned the message into "(psycopg.Op***rationalError) conn***ction"."""
    url = f"postgresql://tune:{password}@127.0.0.1:1/db"
    scrubbed = scrub(f"{message} ({url})", url)
    assert kept in scrubbed and f" {password} " not in f" {scrubbed} ".replace("(", " ").replace(")", " "), scrubbed
    assert "***" in scrubbed
