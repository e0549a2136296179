"""Runs `python <script> <args>` in a child of the dbt host listening on <socket> (host.py, ADR 31),
with this process's file descriptors 0 to 3, environment, folder and umask; where no host takes
it, becomes that command itself. Starts without site-packages (python -I -S): a client costs
milliseconds, not the seconds of dbt's import.

Usage: python -I -S host-client.py <socket> <script> <args...>
Exits as the command did (its code, or killed by its signal). SIGINT, SIGTERM and SIGHUP are
passed on to the command; the host stops the command while this process is stopped.
"""
import json
import os
import re
import signal
import socket
import sys
import uuid

PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(path, script, args):
    received = []
    command = {}

    def pass_on(number, _frame):
        if "pid" in command:
            os.kill(command["pid"], number)
        else:
            received.append(number)

    for number in PASSED_ON:
        signal.signal(number, pass_on)
    nonce = uuid.uuid4().hex
    connection = connect(path)
    said = b""
    if connection is not None:
        request = {"script": script, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
        request.update({"umask": current_umask(), "nonce": nonce})
        try:
            socket.send_fds(connection, [json.dumps(request).encode() + b"\n"], [0, 1, 2, 3])
            said = read_until(connection, said, f"{nonce}:accepted\n".encode())
        except OSError:
            said = b""
    if not said.startswith(f"{nonce}:accepted\n".encode()):
        run_here(script, args, received)
    said = read_until(connection, said, b"\n", after=len(f"{nonce}:accepted\n"))
    started = said.split(b"\n")[1].decode()
    if started.startswith(f"{nonce}:started "):
        command["pid"] = int(started.split(" ")[1])
        for number in received:
            os.kill(command["pid"], number)
    end = read_end(connection, said, nonce)
    if end is None:
        print("nx-dbt-isolated: the dbt host ended before the command did", file=sys.stderr)
        return 2
    if end < 0:
        exit_by_signal(-end)
    return end


def connect(path):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        return connection
    except OSError:
        connection.close()
        return None


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_until(connection, said, marker, after=0):
    """What the host said so far, read until `marker` appears after the first `after` bytes."""
    while marker not in said[after:]:
        try:
            chunk = connection.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        said += chunk
    return said


def read_end(connection, said, nonce):
    """The command's exit code from the host's last line, or None if the connection ended without it."""
    closing = re.compile(rb"\n" + nonce.encode() + rb":(-?\d+)\n$")
    while not closing.search(said):
        chunk = connection.recv(4096)
        if not chunk:
            return None
        said += chunk
    return int(closing.search(said).group(1))


def run_here(script, args, received):
    """No host took the command: this process becomes it, unless a signal came meanwhile."""
    for number in received:
        exit_by_signal(number)
    for number in PASSED_ON:
        signal.signal(number, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, script, *args])


def exit_by_signal(number):
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
