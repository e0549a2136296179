"""Runs `dbt deps` when asked, then `dbt parse`, waits for the plugin's verdict on the manifest,
then runs the dbt command on the manifest already parsed: one Python start-up and one parse
instead of three and two.

Usage: python parse-then-run.py [--deps <json>] [--hold <json>] <parse args...> --then <command args...>
The plugin talks on file descriptor 3: this script writes "installed" once `dbt deps` (the
arguments --deps holds, as a JSON list) succeeded, then "parsed"; the plugin answers "go" or
"stop". Exit codes follow dbt's: 0 success, 1 failures, 2 error; 3 when the plugin said stop.

--hold (PostgreSQL, see warehouse/claims.ts): once dbt has parsed, and before the plugin checks the manifest,
a session of its own with dbt's rendered credentials takes a lock (writing "waiting" first when
another session holds it) and keeps it until this process exits; once the command has succeeded it
runs the `afterSuccess` statements there, and at the end, whatever happened, the `atEnd` ones
(writing "ended" once they ran): what the plugin's check set up for this build (strictIsolation's
role) is made and ended under the lock, so a build waiting for it never meets the other's.
"""
import json
import os
import socket
import sys

from dbt.adapters.contracts.connection import Connection
from dbt.adapters.factory import FACTORY
from dbt.cli.main import dbtRunner


def exit_code(result):
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def hold_session(hold, channel):
    """A session opened the way dbt's adapter opens its own, holding the lock `hold` names."""
    adapter = next(iter(FACTORY.adapters.values()))
    credentials = adapter.config.credentials
    connection = Connection(type=credentials.type, name="nx_dbt_isolated_hold", credentials=credentials)
    # The plugin's own lock and claim are the profile user's, not strictIsolation's build role, which
    # PGOPTIONS gives every session dbt opens (see warehouse/strict-isolation.ts) and which the plugin makes
    # only once this session holds the lock: libpq reads PGOPTIONS when it connects.
    command_options = os.environ.pop("PGOPTIONS", None)
    if hold.get("sessionPgOptions"):
        os.environ["PGOPTIONS"] = hold["sessionPgOptions"]
    try:
        handle = type(adapter.connections).open(connection).handle
    finally:
        os.environ.pop("PGOPTIONS", None)
        if command_options is not None:
            os.environ["PGOPTIONS"] = command_options
    handle.autocommit = True
    cursor = handle.cursor()
    cursor.execute(hold["tryLock"])
    if not cursor.fetchone()[0]:
        channel.write("waiting\n")
        channel.flush()
        cursor.execute(hold["lock"])
    return handle


def run_in_transaction(handle, statements):
    handle.autocommit = False
    with handle:
        cursor = handle.cursor()
        for statement in statements:
            cursor.execute(statement)


def failed(message, error):
    print(f"nx-dbt-isolated: {message} ({str(error).strip()})", file=sys.stderr, flush=True)
    return 2


def json_options(args):
    """The leading `--name <json>` options, and the arguments after them."""
    options = {}
    while args[:1] in (["--deps"], ["--hold"]):
        options[args[0][2:]] = json.loads(args[1])
        args = args[2:]
    return options, args


def main():
    options, args = json_options(sys.argv[1:])
    hold = options.get("hold")
    separator = args.index("--then")
    parse_args, command_args = args[:separator], args[separator + 1 :]
    channel = socket.socket(fileno=3).makefile("rw")
    if "deps" in options:
        installed = dbtRunner().invoke(options["deps"])
        if not installed.success:
            return exit_code(installed)
        channel.write("installed\n")
        channel.flush()
    parsed = dbtRunner().invoke(parse_args)
    if not parsed.success:
        return exit_code(parsed)
    session = None
    if hold is not None:
        try:
            session = hold_session(hold, channel)
        except Exception as error:  # noqa: BLE001 - the build must not run unserialised
            return failed(hold["lockFailure"], error)
    code = checked_run(parsed, command_args, channel, hold, session)
    if session is None or not hold.get("atEnd"):
        return code
    try:
        run_in_transaction(session, hold["atEnd"])
    except Exception as error:  # noqa: BLE001 - said, and a success no longer one
        ended_badly = failed(hold["atEndFailure"], error)
        return code or ended_badly
    channel.write("ended\n")
    channel.flush()
    return code


def checked_run(parsed, command_args, channel, hold, session):
    """The plugin's verdict on the parsed manifest, then the command on that manifest."""
    channel.write("parsed\n")
    channel.flush()
    try:
        answer = channel.readline().strip()
    except KeyboardInterrupt:  # Ctrl-C while the plugin waits for the warehouse's lock: it says stop
        return 3
    verdict, _, more_args = answer.partition(" ")
    if verdict != "go":
        return 3
    # Arguments the plugin could know only once it held the warehouse's lock (shared seeds loaded).
    command_args = command_args + (json.loads(more_args) if more_args else [])
    code = exit_code(dbtRunner(manifest=parsed.result).invoke(command_args))
    if code == 0 and session is not None:
        try:
            run_in_transaction(session, hold["afterSuccess"])
        except Exception as error:  # noqa: BLE001 - a build no workspace claims could be dropped
            return failed(hold["claimFailure"], error)
    return code

sys.exit(main())
