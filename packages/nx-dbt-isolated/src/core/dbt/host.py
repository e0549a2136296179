"""Keeps dbt imported and forks a child for each dbt command the plugin asks it to run, so that the
plugin's dbt commands skip the two seconds of dbt's import (ADR 31).

Usage: python host.py <socket path> <idle seconds>
Listens on the Unix socket; exits once no command has run or been running for <idle seconds>.
A client sends one JSON line: {"args": [...], "cwd": ..., "env": {...}, "umask": n, "nonce": "..."}.
The host answers "<nonce>:accepted\\n" and forks; the child runs in that folder and environment and
ends the connection with "\\n<nonce>:<exit code>\\n" (the host writes that line for a child killed
before it could). Two kinds of command:
- `dbt <args>` (captured), its stdout and stderr on the connection. A client that goes away takes
  its command with it: the child gets SIGINT, then SIGKILL.
- a script (the request has "script"; host-client.py sends it): the client's file descriptors 0 to
  3 come with the request (SCM_RIGHTS) and become the child's, which first writes
  "<nonce>:started <pid>\\n" so that the client can pass signals on. The child stops while its client
  is stopped (Ctrl-Z, SIGSTOP: Linux, where /proc tells) and is killed with a client killed.

One thread only: a fork copies the forking thread alone, so no lock can be held by another.
"""
import atexit
import fcntl
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
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


def run_child(connection, request, fds):
    """In the forked child: becomes the command, ends the connection with its exit code; never returns."""
    code = 2
    end = connection.detach()
    child = os.getpid()
    try:
        tracker = resource_tracker._resource_tracker._fd
        if fds:
            end, tracker = take_client_descriptors(fds, end, tracker)
        else:
            null = os.open(os.devnull, os.O_RDONLY)
            for number, source in ((0, null), (1, end), (2, end)):
                os.dup2(source, number)
            os.set_blocking(1, True)  # the host's socket may not be: a full buffer would drop output
        # The listener and the other clients' connections (a connection must end with its command),
        # not the pipe to the host's tracker of multiprocessing's locks.
        keep = {tracker, end}
        first = 4 if fds else 3
        for low, high in zip([first, *sorted(number + 1 for number in keep)], [*sorted(keep), 65536]):
            os.closerange(low, high)
        resource_tracker._resource_tracker._fd = tracker
        os.set_blocking(end, True)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as dbt expects it
        if fds:
            # A script gets what Python gives a process at its start; a captured dbt whose client
            # went away ends at its next write.
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        os.umask(request["umask"])
        if fds:
            os.write(end, f"{request['nonce']}:started {os.getpid()}\n".encode())
        code = run_command(request)
    except BaseException as error:  # noqa: BLE001 - said on the connection, the child must end
        print(f"nx-dbt-isolated dbt host: {error!r}", file=sys.stderr)
    finally:
        if os.getpid() != child:
            os._exit(0)  # a process the command forked: its end is not the command's
        try:
            threading._shutdown()  # as at Python's exit: the command's own threads end first
            atexit._run_exitfuncs()  # dbt's multiprocessing locks let go of, as at a normal exit
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - output lost: not a success
            code = code or 2
        try:
            # Written by the child, the end stands even if the host has died meanwhile.
            os.write(end, f"\n{request['nonce']}:{code}\n".encode())
        finally:
            end_as(code)


def end_as(code):
    """Exits with `code`, or by the signal a negative code names, as Python ends on Ctrl-C."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def take_client_descriptors(fds, end, tracker):
    """The client's descriptors become 0 to 3; the connection and the tracker's pipe move above them."""
    high = [fcntl.fcntl(number, fcntl.F_DUPFD_CLOEXEC, 10) for number in [*fds, end, tracker]]
    for number, source in enumerate(high[: len(fds)]):
        os.dup2(source, number)
    # Python's standard streams anew, buffered as a process started on these descriptors has them.
    sys.stdin = sys.__stdin__ = reopened(sys.stdin, 0, "r", line_buffered=False)
    sys.stdout = sys.__stdout__ = reopened(sys.stdout, 1, "w", line_buffered=os.isatty(1))
    sys.stderr = sys.__stderr__ = reopened(sys.stderr, 2, "w", line_buffered=True)
    return high[-2], high[-1]


def reopened(stream, number, mode, line_buffered):
    reopened_stream = open(
        number,
        mode,
        buffering=1 if line_buffered else -1,
        closefd=False,
        encoding=stream.encoding,
        errors=stream.errors,
    )
    if getattr(stream, "write_through", False):  # PYTHONUNBUFFERED, as the host started with
        reopened_stream.reconfigure(write_through=True)
    return reopened_stream


def run_command(request):
    """`dbt <args>`, or the script of the request as `python <script> <args>` would run it: its
    exit code, or minus the signal that ended it."""
    try:
        if "script" not in request:
            sys.argv = ["dbt", *request["args"]]
            dbt.cli.main.cli()
            return 0
        sys.argv = [request["script"], *request["args"]]
        try:
            runpy.run_path(request["script"], run_name="__main__")
        except KeyboardInterrupt:
            traceback.print_exc()
            return -signal.SIGINT
        except Exception:  # noqa: BLE001 - as Python ends a script that raised
            traceback.print_exc()
            return 1
        return 0
    except SystemExit as exit_request:
        return exit_code_of(exit_request)


def peer_pid(connection):
    """The connecting process, where the system says; None for another user's."""
    if not hasattr(socket, "SO_PEERCRED"):
        return 0  # the socket's folder is the user's own: that check stands alone here
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", credentials)
    return pid if uid == os.getuid() else None


CLIENT_DESCRIPTORS = 4


def read_request(connection):
    """The request and the descriptors sent with it (a script's: exactly 0 to 3), or None."""
    data, fds, _, _ = socket.recv_fds(connection, 65536, CLIENT_DESCRIPTORS)
    try:
        while data and not data.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        request = json.loads(data) if data.endswith(b"\n") else None
    except BaseException:
        close_all(fds)  # held here, the client's pipes would never end
        raise
    if request is not None and ("script" in request) == (len(fds) == CLIENT_DESCRIPTORS):
        return request, fds
    close_all(fds)
    return None, []


def close_all(fds):
    for number in fds:
        os.close(number)


class Child:
    def __init__(self, connection, nonce, client):
        self.connection = connection
        self.nonce = nonce
        # The client process of a script, whose stops the child follows; None for a captured dbt.
        self.client = client
        self.stopped = False


def serve(path, idle_seconds):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    bound = os.stat(path).st_ino
    os.chmod(path, 0o600)
    listener.listen(16)
    write_pid_file(path)
    remove_starting_mark(path)
    listener.setblocking(False)
    chosen = selectors.DefaultSelector()
    chosen.register(listener, selectors.EVENT_READ)
    children = {}  # pid -> Child
    abandoned = {}  # pid -> when it gets SIGKILL, once its client went away
    last_active = time.monotonic()
    while children or time.monotonic() - last_active < idle_seconds:
        for key, _ in chosen.select(timeout=0.05 if children else 1.0):
            if key.fileobj is listener:
                start(listener, chosen, children)
            elif client_gone(key.fileobj):
                abandon(key.data, children[key.data], abandoned)
                chosen.unregister(key.fileobj)
        for pid, deadline in list(abandoned.items()):
            if pid not in children:
                del abandoned[pid]
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                del abandoned[pid]
        follow_stops(children)
        reap(chosen, children)
        if children:
            last_active = time.monotonic()
    # A host started later may have the path by now; remove it only while it is still ours.
    if os.path.exists(path) and os.stat(path).st_ino == bound:
        os.unlink(path)
        try:
            os.unlink(path + ".pid")
        except FileNotFoundError:
            pass


def write_pid_file(path):
    """Beside the socket: a socket whose host died (SIGKILL) stays behind, its pid tells."""
    temporary = f"{path}.pid.{os.getpid()}"
    with open(temporary, "w") as pid_file:
        pid_file.write(str(os.getpid()))
    os.replace(temporary, path + ".pid")


KILL_AFTER_SECONDS = 10


def abandon(pid, child, abandoned):
    """A script's client waits for its command unless killed: the command is killed with it, as in
    its process group. A captured dbt's client goes away on Ctrl-C: dbt gets it, as from a terminal."""
    if child.client is not None:
        os.kill(pid, signal.SIGKILL)
        return
    os.kill(pid, signal.SIGINT)
    abandoned[pid] = time.monotonic() + KILL_AFTER_SECONDS


def client_gone(connection):
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def follow_stops(children):
    """Stops a script's child while its client is stopped (a job stopped whole), resumes it after."""
    for pid, child in children.items():
        if not child.client:
            continue
        stopped = process_state(child.client) in ("T", "t")
        if stopped != child.stopped:
            os.kill(pid, signal.SIGSTOP if stopped else signal.SIGCONT)
            child.stopped = stopped


def process_state(pid):
    """The state letter /proc gives (R, S, T for stopped…); None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def start(listener, chosen, children):
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return
    connection.settimeout(10)
    request, fds = None, []
    try:
        client = peer_pid(connection)
        if client is not None:
            request, fds = read_request(connection)
        if request is not None:
            connection.settimeout(None)  # blocking: the child's output must never be dropped
            connection.sendall(f"{request['nonce']}:accepted\n".encode())
    except (OSError, ValueError):
        close_all(fds)
        request = None
    if request is None:
        connection.close()
        return
    try:
        pid = os.fork()
    except OSError:
        close_all(fds)
        if fds:  # nothing ran: the client runs the script itself
            try:
                connection.sendall(f"{request['nonce']}:unstarted\n".encode())
            except OSError:
                pass
        connection.close()
        return
    if pid == 0:
        listener.close()
        run_child(connection, request, fds)
    close_all(fds)  # the client's output ends when the child's copies close, not the host's
    children[pid] = Child(connection, request["nonce"], client if fds else None)
    chosen.register(connection, selectors.EVENT_READ, pid)


def reap(chosen, children):
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            continue
        child = children.pop(pid)
        try:
            chosen.unregister(child.connection)
        except KeyError:
            pass
        # Again after the child's own end, or its only end: killed, or gone by os._exit.
        try:
            child.connection.sendall(f"\n{child.nonce}:{os.waitstatus_to_exitcode(status)}\n".encode())
        except OSError:
            pass
        child.connection.close()


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
