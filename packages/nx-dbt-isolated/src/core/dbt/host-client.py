"""Runs `python <script> <args>` in a child of the dbt host listening on <socket> (host.py, ADR 31),
with this process's file descriptors 0 to 3, environment, folder and umask; where no host takes
it, becomes that command itself. Starts without site-packages (python -I -S): a client costs
milliseconds, not the seconds of dbt's import.

Usage: python -I -S host-client.py <socket> <script> <args...>
Exits as the command did (its code, or killed by its signal). SIGINT, SIGTERM and SIGHUP are
passed on to the command, and a signal that comes before the command started ends this process
(the host kills a command whose client is gone). Ctrl-Z (SIGTSTP) stops the command, then this
process; SIGCONT resumes both. The host also stops the command while this process is stopped by
SIGSTOP, which no handler sees.
"""
import json
import os
import re
import signal
import socket
import sys
import uuid

PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A host that takes longer than this to answer is stuck: the command runs here instead.
ANSWER_SECONDS = 30


class Command:
    """The command's process in the host: its pid once it has said it, and whether it has ended."""

    pid = None
    ended = False

    def signal(self, number):
        if self.ended:
            return
        if self.pid is None:
            exit_by_signal(number)  # before it started: nothing to stop but this process
        try:
            os.kill(self.pid, number)
        except ProcessLookupError:
            pass  # it has ended; its end is on the way

    def stop(self, _number, _frame):
        if self.pid is not None:
            self.signal(signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)

    def resume(self, _number, _frame):
        if self.pid is not None:
            self.signal(signal.SIGCONT)


def main(path, script, args):
    command = Command()
    for number in PASSED_ON:
        signal.signal(number, lambda number, _frame: command.signal(number))
    signal.signal(signal.SIGTSTP, command.stop)
    signal.signal(signal.SIGCONT, command.resume)
    nonce = uuid.uuid4().hex
    accepted = f"{nonce}:accepted\n".encode()
    connection, said = request(path, script, args, nonce)
    if not said.startswith(accepted):
        run_here(connection, script, args)
    said = read_until(connection, said, b"\n", after=len(accepted))
    first = said[len(accepted) :].split(b"\n")[0].decode()
    if first == f"{nonce}:unstarted":
        run_here(connection, script, args)
    if first.startswith(f"{nonce}:started "):
        command.pid = int(first.split(" ")[1])
    end = read_end(connection, said, nonce)
    command.ended = True
    if end is None:
        print("nx-dbt-isolated: the dbt host ended before the command did", file=sys.stderr)
        return 2
    if end < 0:
        exit_by_signal(-end)
    return end


def request(path, script, args, nonce):
    """The connection to the host and what it answered (its `accepted` line, or nothing)."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(ANSWER_SECONDS)
    body = {"script": script, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
    body.update({"umask": current_umask(), "nonce": nonce})
    data = json.dumps(body).encode() + b"\n"
    try:
        connection.connect(path)
        sent = socket.send_fds(connection, [data], [0, 1, 2, 3])
        connection.sendall(data[sent:])
        said = read_until(connection, b"", b"\n")
    except OSError:
        return connection, b""
    connection.settimeout(None)  # the command runs as long as it runs
    return connection, said


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_until(connection, said, marker, after=0):
    """What the host said so far, read until `marker` appears after the first `after` bytes."""
    while marker not in said[after:]:
        chunk = connection.recv(4096)
        if not chunk:
            break
        said += chunk
    return said


def read_end(connection, said, nonce):
    """The command's exit code from the host's last line, or None if the connection ended without it."""
    closing = re.compile(rb"\n" + nonce.encode() + rb":(-?\d+)\n")
    while not closing.search(said):
        chunk = connection.recv(4096)
        if not chunk:
            return None
        said += chunk
    return int(closing.search(said).group(1))


def run_here(connection, script, args):
    """No host took the command: this process becomes it (a signal before now has ended it)."""
    for number in (*PASSED_ON, signal.SIGTSTP, signal.SIGCONT):
        signal.signal(number, signal.SIG_DFL)
    connection.close()
    os.execv(sys.executable, [sys.executable, script, *args])


def exit_by_signal(number):
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
