"""Runs `dbt parse`, waits for the plugin's verdict on the manifest, then runs the dbt command on
the manifest already parsed: one Python start-up and one parse instead of two of each.

Usage: python parse-then-run.py <parse args...> --then <command args...>
The plugin talks on file descriptor 3: this script writes "parsed", the plugin answers "go" or
"stop". Exit codes follow dbt's: 0 success, 1 failures, 2 error; 3 when the plugin said stop.
"""
import socket
import sys

from dbt.cli.main import dbtRunner


def exit_code(result):
    if result.success:
        return 0
    return 2 if result.exception is not None else 1


def main():
    separator = sys.argv.index("--then")
    parse_args, command_args = sys.argv[1:separator], sys.argv[separator + 1 :]
    channel = socket.socket(fileno=3).makefile("rw")
    parsed = dbtRunner().invoke(parse_args)
    if not parsed.success:
        return exit_code(parsed)
    channel.write("parsed\n")
    channel.flush()
    if channel.readline().strip() != "go":
        return 3
    return exit_code(dbtRunner(manifest=parsed.result).invoke(command_args))


sys.exit(main())
