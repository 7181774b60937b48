"""`radio24 producer add NAME`: create a producer (or admin) from the command line.

The password comes from the terminal (asked twice, not echoed) or, when standard input is not a
terminal, from its first line, so it can be scripted: `echo "$PW" | radio24 producer add alice`.
It is stored only as an argon2 hash.
"""

from __future__ import annotations

import getpass
import sys

import psycopg

from api.moderation import clean_nickname
from api.passwords import hasher
from api.settings import ApiSettings
from core.settings import load
from db.queries import load as load_queries

MIN_PASSWORD = 10

people = load_queries("people.sql", driver="psycopg")  # synchronous, for the CLI


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _err(line: str) -> int:
    sys.stderr.write(f"radio24: {line}\n")
    return 1


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def add_producer_cli(name: str, role: str = "producer") -> int:
    if role not in ("producer", "admin"):
        return _err(f"role must be producer or admin, not {role!r}")
    try:
        name = clean_nickname(name)
    except ValueError as exc:
        return _err(f"invalid name: {exc}")
    password = _read_password()
    if password is None:
        return _err("the passwords differ")
    if len(password) < MIN_PASSWORD:
        return _err(f"password too short: at least {MIN_PASSWORD} characters")
    settings = load(ApiSettings)
    try:
        with psycopg.connect(settings.database_url.get_secret_value(), connect_timeout=5) as conn:
            row = people.insert_staff(
                conn, nickname=name, role=role, password_hash=hasher.hash(password)
            )
    except psycopg.errors.UndefinedTable:
        return _err("the database has no schema yet: run `radio24 migrate` first")
    except psycopg.OperationalError as exc:
        return _err(f"cannot reach the database: {str(exc).splitlines()[0]}")
    if row is None:
        return _err(f"a producer or admin named {name!r} already exists")
    _out(f"created {role} {name} ({row[0]})")
    return 0
