"""`radio24` — the station's command line.

radio24 run                 run the whole station (what `make run` calls)
radio24 migrate             apply database migrations
radio24 prompts check [DIR] validate the producers' prompt files
radio24 media make [DIR]    synthesise the default station's music, idents and bed
radio24 producer add NAME   create a producer (asks for the password)
radio24 part NAME           run one part in the foreground (used by `radio24 run`)
"""

from __future__ import annotations

import argparse
import sys

from radio24 import station


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="radio24", description="radio24 — a 24-hour AI radio")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the whole station on this machine")
    sub.add_parser("migrate", help="apply database migrations")
    part = sub.add_parser("part", help="run one part of the station in the foreground")
    part.add_argument("name", choices=sorted(station.PARTS))
    prompts = sub.add_parser("prompts", help="producers' prompt files")
    prompts_sub = prompts.add_subparsers(dest="action", required=True)
    check = prompts_sub.add_parser("check", help="validate a prompts folder")
    check.add_argument("dir", nargs="?", default=None)
    media = sub.add_parser("media", help="the station's own sounds")
    media_sub = media.add_subparsers(dest="action", required=True)
    make = media_sub.add_parser("make", help="synthesise prompts/media (music, idents, bed)")
    make.add_argument("dir", nargs="?", default="prompts/media")
    producer = sub.add_parser("producer", help="manage producers")
    producer_sub = producer.add_subparsers(dest="action", required=True)
    add = producer_sub.add_parser("add", help="create a producer")
    add.add_argument("name")
    add.add_argument("--role", choices=["producer", "admin"], default="producer")

    args = parser.parse_args(argv)
    if args.command == "run":
        return station.run()
    if args.command == "part":
        return station.run_part(args.name)
    if args.command == "migrate":
        return station.migrate()
    if args.command == "prompts":
        from programme.check import check_main

        return check_main([args.dir] if args.dir else [])
    if args.command == "media":
        from radio24.media_make import main as make_media

        return make_media([args.dir])
    if args.command == "producer":
        from api.producers import add_producer_cli

        return add_producer_cli(args.name, args.role)
    return 2


if __name__ == "__main__":
    sys.exit(main())
