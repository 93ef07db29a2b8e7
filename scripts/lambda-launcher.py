#!/usr/bin/env python3
"""Container-CLI stand-in that runs callhook's Lambda functions as local processes.

The deploy rehearsal runs the AWS emulator fakecloud, which executes Lambda code only by driving a
container CLI (docker/podman). This machine has none, so fakecloud is started with
FAKECLOUD_CONTAINER_CLI pointing here, and this script answers the handful of commands fakecloud
issues for a zip-packaged custom-runtime (provided.*) function:

  info | --version                      liveness / engine probe ("podman-compatible": no --add-host)
  pull IMAGE | image inspect | tag      accepted and ignored (no image is used)
  create [-p|--label|-e|--tmpfs|--add-host ...] IMAGE HANDLER   -> prints a new container id
  cp DIR/. ID:/var/task|/var/runtime|/opt    copies the unpacked zip into the sandbox's root
  start ID                              spawns the sandbox (below) detached
  port ID 8080                          -> 127.0.0.1:<port> the sandbox listens on
  logs [--tail N] ID                    the function's stdout/stderr and START/END/REPORT lines
  stop | kill | rm [-f] ID...           ends the sandbox's process groups (rm also drops its state)
  ps -a --filter label=K[=V] --format   lets fakecloud reap sandboxes a dead fakecloud left behind
  network ls | volume ls                nothing to list

The sandbox is one Python process per "container". On one 127.0.0.1 port it serves both what
fakecloud calls (the Runtime Interface Emulator's POST /2015-03-31/functions/function/invocations)
and the Lambda Runtime API the function's own `bootstrap` polls (AWS_LAMBDA_RUNTIME_API), passing
event and response bytes through unchanged, one invocation at a time, with the function's timeout.
The function gets the environment fakecloud passed with -e, with the container host aliases
(host.containers.internal / host.docker.internal) mapped back to 127.0.0.1.

State lives in $CALLHOOK_LAUNCHER_STATE (default: .local/launcher in the repository), one
directory per container id. Set CALLHOOK_LAUNCHER_TRACE=<file> to log each command (environment
values omitted). Python 3.11, standard library only.
"""
import http.server
import json
import os
import queue
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

STATE = Path(os.environ.get("CALLHOOK_LAUNCHER_STATE")
             or Path(__file__).resolve().parent.parent / ".local" / "launcher")
HOST_ALIASES = ("host.containers.internal", "host.docker.internal")
# Flags of `create` that take a value; anything else is refused so a new fakecloud usage shows up.
CREATE_VALUE_FLAGS = {"-p", "--publish", "--label", "-l", "-e", "--env", "--tmpfs", "--add-host",
                      "--name", "--network", "--platform"}


def fail(msg, code=1):
    print(f"Error: {msg}", file=sys.stderr)
    sys.exit(code)


# --- container state ------------------------------------------------------------------------

def cdir(cid):
    return STATE / cid


def resolve(ref):
    """A container id from a full id or a unique prefix, as docker accepts."""
    if (STATE / ref).is_dir():
        return ref
    hits = [p.name for p in STATE.glob(f"{ref}*") if p.is_dir()] if ref and STATE.is_dir() else []
    return hits[0] if len(hits) == 1 else None


def config(cid):
    return json.loads((cdir(cid) / "config.json").read_text())


def own_pid(cid, name):
    """The pid in <container>/<name> if that process is still ours (guards against pid reuse)."""
    try:
        pid = int((cdir(cid) / name).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # empty once it has exited
    except (OSError, ValueError):
        return None
    return pid if cid.encode() in cmdline else None


def running(cid):
    return own_pid(cid, "sandbox.pid") is not None


def terminate(cid, sig=signal.SIGTERM):
    """Signal the sandbox (on SIGTERM it stops the function), then make sure both groups end."""
    if (pid := own_pid(cid, "sandbox.pid")) is not None:
        os.killpg(pid, sig)
        for _ in range(30):
            if own_pid(cid, "sandbox.pid") is None:
                break
            time.sleep(0.1)
    for name in ("bootstrap.pid", "sandbox.pid"):
        if (p := own_pid(cid, name)) is not None:
            try:
                os.killpg(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- CLI commands -----------------------------------------------------------------------------

def cmd_create(args):
    labels, env, image_args = {}, {}, []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-") or image_args:
            image_args = args[i:]
            break
        flag, _, inline = a.partition("=") if a.startswith("--") else (a, "", "")
        if flag not in CREATE_VALUE_FLAGS:
            fail(f"create: unsupported flag {a}", 125)
        value = inline or args[i + 1]
        i += 1 if inline else 2
        if flag in ("--label", "-l"):
            k, _, v = value.partition("=")
            labels[k] = v
        elif flag in ("-e", "--env"):
            k, eq, v = value.partition("=")
            if eq:
                env[k] = v
            elif k in os.environ:  # `-e KEY`: the value comes from our own environment
                env[k] = os.environ[k]
    if not image_args:
        fail("create: no image", 125)
    cid = secrets.token_hex(32)
    root = cdir(cid) / "rootfs"
    for sub in ("var/task", "var/runtime", "opt", "tmp"):
        (root / sub).mkdir(parents=True)
    conf = {"id": cid, "image": image_args[0], "cmd": image_args[1:], "labels": labels,
            "env": env, "created": time.time()}
    path = cdir(cid) / "config.json"
    path.touch(mode=0o600)  # holds the function's environment, credentials included
    path.write_text(json.dumps(conf))
    print(cid)


def cmd_cp(args):
    if len(args) != 2 or ":" not in args[1]:
        fail("cp: only `cp HOSTPATH CONTAINER:PATH` is supported", 125)
    ref, _, dest = args[1].partition(":")
    cid = resolve(ref) or fail(f"No such container: {ref}")
    target = cdir(cid) / "rootfs" / dest.lstrip("/")
    src = Path(args[0])
    if src.is_dir():  # `DIR/.` copies the directory's contents
        shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def cmd_start(args):
    for ref in args:
        cid = resolve(ref) or fail(f"No such container: {ref}")
        if running(cid):
            print(cid)
            continue
        if "lambda/provided" not in config(cid)["image"]:
            fail(f"{config(cid)['image']}: only custom runtimes (provided.*) run here")
        (cdir(cid) / "port").unlink(missing_ok=True)
        log = open(cdir(cid) / "log", "ab")
        # Its own session (process group), detached from fakecloud's pipes.
        subprocess.Popen([sys.executable, os.path.abspath(__file__), "_sandbox", cid],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         cwd=cdir(cid) / "rootfs" / "var" / "task", start_new_session=True)
        for _ in range(100):
            if (cdir(cid) / "port").exists():
                break
            time.sleep(0.05)
        else:
            fail(f"{cid}: sandbox did not start (see `logs {cid}`)")
        print(cid)


def cmd_port(args):
    cid = resolve(args[0]) if args else None
    if not cid or not running(cid):
        fail(f"No public port '8080/tcp' published for {args[0] if args else ''}")
    print(f"127.0.0.1:{(cdir(cid) / 'port').read_text()}")


def cmd_logs(args):
    tail = None
    if args[:1] in (["--tail"], ["-n"]):
        tail, args = args[1], args[2:]
    cid = resolve(args[0]) if args else None
    if not cid:
        fail("No such container")
    lines = (cdir(cid) / "log").read_bytes().splitlines(keepends=True) \
        if (cdir(cid) / "log").exists() else []
    if tail not in (None, "all"):
        lines = lines[-int(tail):] if int(tail) else []
    sys.stdout.buffer.write(b"".join(lines))


def cmd_stop_kill_rm(verb, args):
    force = any(a in ("-f", "--force") for a in args)
    refs = [a for a in args if not a.startswith("-")]
    status = 0
    for ref in refs:
        cid = resolve(ref)
        if not cid:
            if not (verb == "rm" and force):
                print(f"Error: No such container: {ref}", file=sys.stderr)
                status = 1
            continue
        if verb == "rm" and running(cid) and not force:
            print(f"Error: container {cid} is running: stop it first or use -f", file=sys.stderr)
            status = 1
            continue
        terminate(cid, signal.SIGKILL if verb == "kill" else signal.SIGTERM)
        if verb == "rm":
            shutil.rmtree(cdir(cid), ignore_errors=True)
        print(ref)
    sys.exit(status)


def cmd_ps(args):
    show_all = "-a" in args or "--all" in args
    fmt = args[args.index("--format") + 1] if "--format" in args else "{{.ID}}"
    wanted = [args[i + 1].removeprefix("label=") for i, a in enumerate(args)
              if a == "--filter" and args[i + 1].startswith("label=")]
    for cid in sorted(p.name for p in STATE.glob("*") if (p / "config.json").exists()):
        labels = config(cid)["labels"]
        if not show_all and not running(cid):
            continue
        if any(k not in labels or (eq and labels[k] != v)
               for k, eq, v in (w.partition("=") for w in wanted)):
            continue
        line = fmt.replace("{{.ID}}", cid)
        for key, value in labels.items():
            line = line.replace(f'{{{{.Label "{key}"}}}}', value)
        print(line)


def cmd_inspect(args):
    out = []
    for ref in (a for a in args if not a.startswith("-")):
        cid = resolve(ref) or fail(f"No such container: {ref}")
        port = (cdir(cid) / "port").read_text() if running(cid) else ""
        out.append({"Id": cid, "Config": {"Image": config(cid)["image"],
                                          "Labels": config(cid)["labels"]},
                    "State": {"Running": bool(port)},
                    "NetworkSettings": {"Ports": {"8080/tcp": [
                        {"HostIp": "127.0.0.1", "HostPort": port}] if port else None}}})
    print(json.dumps(out, indent=2))


def main(argv):
    if trace := os.environ.get("CALLHOOK_LAUNCHER_TRACE"):
        shown = [a.split("=", 1)[0] + "=…" if i and argv[i - 1] in ("-e", "--env") else a
                 for i, a in enumerate(argv)]
        with open(trace, "a") as f:
            f.write(json.dumps(shown) + "\n")
    if not argv:
        fail("no command", 125)
    verb, args = argv[0], argv[1:]
    STATE.mkdir(parents=True, exist_ok=True)
    if verb in ("--version", "version"):
        print("callhook lambda launcher 1 (podman-compatible subset for fakecloud)")
    elif verb == "info":
        print("{}" if "--format" in args else "callhook lambda launcher: Lambda sandboxes as "
              f"local processes\nstate: {STATE}")
    elif verb in ("pull", "tag"):
        pass
    elif verb == "image" and args[:1] == ["inspect"]:
        print("[{}]")
    elif verb in ("network", "volume") and args[:1] in (["ls"], ["list"]):
        pass
    elif verb == "_sandbox":
        Sandbox(args[0]).serve()
    else:
        handlers = {"create": cmd_create, "cp": cmd_cp, "start": cmd_start, "port": cmd_port,
                    "logs": cmd_logs, "ps": cmd_ps, "inspect": cmd_inspect}
        if verb in ("stop", "kill", "rm"):
            cmd_stop_kill_rm(verb, args)
        elif verb in handlers:
            handlers[verb](args)
        else:
            fail(f"unsupported command: {verb} (callhook lambda launcher)", 125)


# --- the sandbox: invoke endpoint + Lambda Runtime API + the function's process ----------------

def error_body(error_type, message):
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class Invocation:
    def __init__(self, payload, timeout):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.deadline_ms = int((time.time() + timeout) * 1000)
        self.done = threading.Event()
        self.result = None  # bytes of the response or error document
        self.failed = False

    def finish(self, body, failed):
        if not self.done.is_set():
            self.result, self.failed = body, failed
            self.done.set()


class Sandbox:
    def __init__(self, cid):
        self.cid = cid
        self.dir = cdir(cid)
        conf = config(cid)
        self.env = {k: self.to_host(v) for k, v in conf["env"].items()}
        self.handler = conf["cmd"][0] if conf["cmd"] else ""
        self.timeout = float(self.env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        region = self.env.get("AWS_REGION", "us-east-1")
        partition = "aws-cn" if region.startswith("cn-") else \
            "aws-us-gov" if region.startswith("us-gov-") else "aws"
        account = os.environ.get("FAKECLOUD_ACCOUNT_ID", "123456789012")
        self.arn = (f"arn:{partition}:lambda:{region}:{account}:function:"
                    f"{self.env.get('AWS_LAMBDA_FUNCTION_NAME', 'function')}")
        self.pending = queue.Queue()
        self.current = None
        self.init_error = None
        self.proc = None
        self.invoke_lock = threading.Lock()

    @staticmethod
    def to_host(value):
        for alias in HOST_ALIASES:
            value = value.replace(alias, "127.0.0.1")
        return value

    def log(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    # The function's process -----------------------------------------------------------------

    def spawn(self, port):
        root = self.dir / "rootfs"
        entry = next((p for p in (root / "var/runtime/bootstrap", root / "var/task/bootstrap",
                                  root / "opt/bootstrap") if p.is_file()), None)
        if entry is None or not os.access(entry, os.X_OK):
            self.init_error = error_body(
                "Runtime.InvalidEntrypoint",
                "no executable bootstrap in /var/runtime, /var/task or /opt")
            return
        env = {"PATH": f"{root}/opt/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "LANG": "C.UTF-8", "TZ": ":UTC", "TMPDIR": str(root / "tmp"),
               "LAMBDA_TASK_ROOT": str(root / "var/task"),
               "LAMBDA_RUNTIME_DIR": str(root / "var/runtime"), "_HANDLER": self.handler,
               **self.env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"}
        self.init_error = None
        try:
            self.proc = subprocess.Popen([str(entry)], env=env, cwd=root / "var/task",
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            self.init_error = error_body("Runtime.InvalidEntrypoint", str(e))
            return
        (self.dir / "bootstrap.pid").write_text(str(self.proc.pid))

    def stop_function(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # One invocation, as the RIE runs it --------------------------------------------------------

    def invoke(self, payload, port):
        with self.invoke_lock:
            if not self.alive():
                self.spawn(port)
            inv = Invocation(payload, self.timeout)
            started = time.time()
            self.log(f"START RequestId: {inv.id} Version: "
                     f"{self.env.get('AWS_LAMBDA_FUNCTION_VERSION', '$LATEST')}")
            if self.init_error is None:
                self.pending.put(inv)
            while not inv.done.wait(0.02):
                if self.init_error is not None:
                    inv.finish(self.init_error, True)
                    self.stop_function()
                elif not self.alive():
                    inv.finish(error_body("Runtime.ExitError", f"RequestId: {inv.id} Error: "
                                          f"Runtime exited with error: exit status "
                                          f"{self.proc.returncode}"), True)
                elif time.time() * 1000 >= inv.deadline_ms:
                    self.stop_function()  # a timed-out sandbox is reset, as on Lambda
                    inv.finish(error_body("Sandbox.Timedout", f"RequestId: {inv.id} Error: Task "
                                          f"timed out after {self.timeout:.2f} seconds"), True)
            while not self.pending.empty():  # never picked up: drop it
                self.pending.get_nowait()
            self.current = None
            ms = (time.time() - started) * 1000
            self.log(f"END RequestId: {inv.id}")
            self.log(f"REPORT RequestId: {inv.id}\tDuration: {ms:.2f} ms\t"
                     f"Memory Size: {self.env.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE', '128')} MB")
            return inv

    # HTTP -------------------------------------------------------------------------------------

    def serve(self):
        sandbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def body(self):
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    data = b""
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def client_gone(self):
                if not select.select([self.connection], [], [], 0)[0]:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self.reply(404, error_body("NotFound", self.path))
                while True:  # long poll, as the real Runtime API does
                    try:
                        inv = sandbox.pending.get(timeout=0.2)
                    except queue.Empty:
                        inv = None
                    if self.client_gone():  # a runtime that was killed (timeout, reset)
                        if inv is not None:
                            sandbox.pending.put(inv)
                        self.close_connection = True
                        return
                    if inv is not None:
                        break
                sandbox.current = inv
                trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"
                self.reply(200, inv.payload, [
                    ("Lambda-Runtime-Aws-Request-Id", inv.id),
                    ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms)),
                    ("Lambda-Runtime-Invoked-Function-Arn", sandbox.arn),
                    ("Lambda-Runtime-Trace-Id", trace)])

            def do_POST(self):
                body = self.body()
                parts = self.path.strip("/").split("/")
                if self.path == "/2015-03-31/functions/function/invocations":
                    inv = sandbox.invoke(body, self.server.server_address[1])
                    return self.reply(200, inv.result,
                                      [("X-Amz-Function-Error", "Unhandled")] if inv.failed else [])
                if self.path == "/2018-06-01/runtime/init/error":
                    sandbox.init_error = self.error_document(body)
                    return self.reply(202, b'{"status":"OK"}')
                if parts[:3] == ["2018-06-01", "runtime", "invocation"] and len(parts) == 5 \
                        and parts[4] in ("response", "error"):
                    inv = sandbox.current
                    if inv is None or inv.id != parts[3] or inv.done.is_set():
                        return self.reply(400, error_body("InvalidRequestID",
                                                          f"unknown request id {parts[3]}"))
                    if parts[4] == "response":
                        inv.finish(body, False)
                    else:
                        inv.finish(self.error_document(body), True)
                    return self.reply(202, b'{"status":"OK"}')
                self.reply(404, error_body("NotFound", self.path))

            def error_document(self, body):
                """The runtime's error as sent, or wrapped when it is not an error document."""
                try:
                    if isinstance(json.loads(body), dict):
                        return body
                except ValueError:
                    pass
                kind = self.headers.get("Lambda-Runtime-Function-Error-Type", "Runtime.Unknown")
                return error_body(kind, body.decode(errors="replace"))

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        port = server.server_address[1]

        def shutdown(*_):
            self.stop_function()
            os._exit(0)

        signal.signal(signal.SIGTERM, shutdown)
        (self.dir / "sandbox.pid").write_text(str(os.getpid()))
        self.spawn(port)  # initialise eagerly, so the first invocation finds the runtime polling
        tmp = self.dir / "port.tmp"
        tmp.write_text(str(port))
        tmp.rename(self.dir / "port")
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
