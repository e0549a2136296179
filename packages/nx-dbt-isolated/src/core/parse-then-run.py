"""Runs `dbt parse`, waits for the plugin's verdict on the manifest, then runs the dbt command on
the manifest already parsed: one Python start-up and one parse instead of two of each.

Usage: python parse-then-run.py [--hold <json>] <parse args...> --then <command args...>
The plugin talks on file descriptor 3: this script writes "parsed", the plugin answers "go" or
"stop". Exit codes follow dbt's: 0 success, 1 failures, 2 error; 3 when the plugin said stop.

--hold (PostgreSQL, see claims.ts): once the plugin said go, a session of its own with dbt's rendered
credentials takes a lock (writing "waiting" first when another session holds it) and keeps it
until this process exits; once the command has succeeded it runs the given statements there.
"""
import json
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
    handle = type(adapter.connections).open(connection).handle
    handle.autocommit = True
    cursor = handle.cursor()
    # The plugin's own lock and claim are the profile user's, not strictIsolation's build role,
    # which PGOPTIONS gives every session this process opens (see strict-isolation.ts).
    cursor.execute("set role none")
    cursor.execute(hold["tryLock"])
    if not cursor.fetchone()[0]:
        channel.write("waiting\n")
        channel.flush()
        cursor.execute(hold["lock"])
    return handle


def run_after_success(handle, statements):
    handle.autocommit = False
    with handle:
        cursor = handle.cursor()
        for statement in statements:
            cursor.execute(statement)


def failed(message, error):
    print(f"nx-dbt-isolated: {message} ({str(error).strip()})", file=sys.stderr, flush=True)
    return 2


def main():
    args = sys.argv[1:]
    hold = json.loads(args[1]) if args[:1] == ["--hold"] else None
    if hold is not None:
        args = args[2:]
    separator = args.index("--then")
    parse_args, command_args = args[:separator], args[separator + 1 :]
    channel = socket.socket(fileno=3).makefile("rw")
    parsed = dbtRunner().invoke(parse_args)
    if not parsed.success:
        return exit_code(parsed)
    channel.write("parsed\n")
    channel.flush()
    if channel.readline().strip() != "go":
        return 3
    session = None
    if hold is not None:
        try:
            session = hold_session(hold, channel)
        except Exception as error:  # noqa: BLE001 - the build must not run unserialised
            return failed(hold["lockFailure"], error)
    code = exit_code(dbtRunner(manifest=parsed.result).invoke(command_args))
    if code == 0 and session is not None:
        try:
            run_after_success(session, hold["afterSuccess"])
        except Exception as error:  # noqa: BLE001 - a build no workspace claims could be dropped
            return failed(hold["claimFailure"], error)
    return code


sys.exit(main())
