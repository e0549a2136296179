"""Keeps dbt imported and forks a child for each dbt command the plugin asks it to run, so that the
plugin's short dbt commands (its run-operations) skip the two seconds of dbt's import (ADR 31).

Usage: python host.py <socket path> <idle seconds>
Listens on the Unix socket; exits once no command has run or been running for <idle seconds>.
A client sends one JSON line: {"args": [dbt arguments], "cwd": ..., "env": {...}, "umask": n,
"nonce": "..."}. The host answers "<nonce>:accepted\\n" and forks; the child runs `dbt <args>` in
that folder and environment with its stdout and stderr on the connection, and ends it with
"\\n<nonce>:<exit code>\\n" (the host writes that line for a child killed before it could). A
client that goes away takes its command with it: the child gets SIGINT, then SIGKILL.

One thread only: a fork copies the forking thread alone, so no lock can be held by another.
"""
import atexit
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from multiprocessing import resource_tracker

import dbt.cli.main  # noqa: F401 - the import this host exists to keep
import dbt.parser.manifest  # noqa: F401 - imported by every command; in the children's memory
import dbt.task.run_operation  # noqa: F401

# Adapters whose import starts no thread and opens nothing; any other loads in each child.
FORK_SAFE_ADAPTERS = ("duckdb", "postgres")
for adapter in FORK_SAFE_ADAPTERS:
    try:
        importlib.import_module(f"dbt.adapters.{adapter}")
    except ImportError:
        pass


def threads():
    """Threads of this process as the system counts them, native ones included where it says."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def exit_code_of(exit_request):
    """The exit code Python gives for `sys.exit(code)`."""
    if exit_request.code is None:
        return 0
    if isinstance(exit_request.code, int):
        return exit_request.code & 0xFF
    print(exit_request.code, file=sys.stderr)
    return 1


def run_child(connection, request):
    """In the forked child: becomes `dbt <args>` writing to the connection; never returns."""
    code = 2
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(connection.fileno(), 1)
    os.dup2(connection.fileno(), 2)
    os.set_blocking(1, True)  # the host's socket may not be: a full buffer would drop output
    # The listener and the other clients' connections (a connection must end with its command),
    # not the pipe to the host's tracker of multiprocessing's locks.
    tracker = resource_tracker._resource_tracker._fd
    os.closerange(3, tracker)
    os.closerange(tracker + 1, 65536)
    try:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as dbt expects it
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(request["umask"])
        sys.argv = ["dbt", *request["args"]]
        try:
            dbt.cli.main.cli()
            code = 0
        except SystemExit as exit_request:
            code = exit_code_of(exit_request)
    except BaseException as error:  # noqa: BLE001 - said on the connection, the child must end
        print(f"nx-dbt-isolated dbt host: {error!r}", file=sys.stderr)
    finally:
        try:
            atexit._run_exitfuncs()  # dbt's multiprocessing locks let go of, as at a normal exit
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - output lost: not a success
            code = code or 2
        try:
            # Written by the child, the end stands even if the host has died meanwhile.
            os.write(1, f"\n{request['nonce']}:{code}\n".encode())
        finally:
            os._exit(code)


def same_user(connection):
    """The socket's folder is the user's own; where the system says who connected, check that too."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return uid == os.getuid()


def read_request(connection):
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def serve(path, idle_seconds):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    bound = os.stat(path).st_ino
    os.chmod(path, 0o600)
    listener.listen(16)
    remove_starting_mark(path)
    listener.setblocking(False)
    chosen = selectors.DefaultSelector()
    chosen.register(listener, selectors.EVENT_READ)
    children = {}  # pid -> (connection, nonce)
    abandoned = {}  # pid -> when it gets SIGKILL, once its client went away
    last_active = time.monotonic()
    while children or time.monotonic() - last_active < idle_seconds:
        for key, _ in chosen.select(timeout=0.05 if children else 1.0):
            if key.fileobj is listener:
                start(listener, chosen, children)
            elif client_gone(key.fileobj):
                os.kill(key.data, signal.SIGINT)  # as Ctrl-C would: dbt stops its queries
                abandoned[key.data] = time.monotonic() + KILL_AFTER_SECONDS
                chosen.unregister(key.fileobj)
        for pid, deadline in list(abandoned.items()):
            if pid not in children:
                del abandoned[pid]
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                del abandoned[pid]
        reap(chosen, children)
        if children:
            last_active = time.monotonic()
    # A host started later may have the path by now; remove it only while it is still ours.
    if os.path.exists(path) and os.stat(path).st_ino == bound:
        os.unlink(path)


KILL_AFTER_SECONDS = 10


def client_gone(connection):
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def start(listener, chosen, children):
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return
    connection.settimeout(10)
    try:
        request = read_request(connection) if same_user(connection) else None
        if request is not None:
            connection.settimeout(None)  # blocking: the child's output must never be dropped
            connection.sendall(f"{request['nonce']}:accepted\n".encode())
    except (OSError, ValueError):
        request = None
    if request is None:
        connection.close()
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        run_child(connection, request)
    children[pid] = (connection, request["nonce"])
    chosen.register(connection, selectors.EVENT_READ, pid)


def reap(chosen, children):
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            continue
        connection, nonce = children.pop(pid)
        try:
            chosen.unregister(connection)
        except KeyError:
            pass
        if os.WIFSIGNALED(status):  # killed before it could write its end
            try:
                connection.sendall(f"\n{nonce}:{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass
        connection.close()


def another_host_listens(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def remove_starting_mark(path):
    """The client that started this host made the mark, so that others do not start one too."""
    try:
        os.unlink(path + ".starting")
    except FileNotFoundError:
        pass


def main(path, idle_seconds):
    if threads() != 1:
        return  # a fork would copy a thread's locks, not the thread: clients run dbt themselves
    if another_host_listens(path):
        remove_starting_mark(path)
        return
    # Started here, the tracker of multiprocessing's locks serves every child: none starts its own,
    # which would write to the child's connection after the child has ended.
    resource_tracker.ensure_running()
    if os.path.exists(path):
        os.unlink(path)  # a host that ended without removing it
    # A host that fails before it listens leaves the starting mark: clients try again only after
    # its grace period, not with every command.
    serve(path, idle_seconds)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
