"""A loopback TCP forwarder in front of PostgreSQL that can blackhole: stop moving bytes, close nothing.

Models a database node that vanished without a reset (a dead host, a partitioned network): the client's sockets
stay open and its TCP stack sees no RST or FIN, only silence. New connections are accepted by the kernel (the
listen backlog) but nothing answers them. `resume()` lets everything through again, including bytes that arrived
meanwhile (as TCP retransmission would).

Note: the forwarder's own kernel still ACKs what the client sends, so TCP keepalives and `tcp_user_timeout` do not
see this blackhole; only a client-side deadline does (see `app.db.bounds`). That is the harder case, and the one an
outside harness with a user-space forwarder produces.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.servers import free_port


class BlackholeForwarder:
    """Forward 127.0.0.1:`port` to `upstream` (a `(host, port)` pair, or a Unix socket path)."""

    def __init__(self, upstream: tuple[str, int] | str):
        self.upstream = upstream
        self.port = free_port()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._trigger: bytes | None = None
        self.triggered = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        self._accepter = threading.Thread(target=self._accept_loop, name="blackhole-accept", daemon=True)

    def start(self) -> "BlackholeForwarder":
        self._accepter.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def blackhole(self) -> None:
        """From now on no byte moves in either direction and no connection is answered; nothing is closed."""
        self._flowing.clear()

    def blackhole_after(self, pattern: bytes) -> None:
        """Blackhole right after forwarding the first client chunk containing `pattern` (e.g. a statement, so that
        a transaction is cut off half-way: the server has run it, the client never hears back)."""
        self.triggered.clear()
        self._trigger = pattern

    def resume(self) -> None:
        self._trigger = None
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> "BlackholeForwarder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream)
            return sock
        return socket.create_connection(self.upstream)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._flowing.wait()
            if self._closed.is_set():
                client.close()
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            pair = _Pair(client, upstream)
            for source, target, from_client in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(pair, source, target, from_client),
                                 name="blackhole-pump", daemon=True).start()

    def _pump(self, pair: "_Pair", source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while True:
                self._flowing.wait()
                chunk = source.recv(65536)
                self._flowing.wait()
                if self._closed.is_set():
                    return
                if not chunk:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                target.sendall(chunk)
                trigger = self._trigger
                if from_client and trigger is not None and trigger in chunk:
                    self._trigger = None
                    self._flowing.clear()
                    self.triggered.set()
        except OSError:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            pair.direction_done(self)

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.close()


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self._open_directions = 2
        self._lock = threading.Lock()

    def direction_done(self, forwarder: BlackholeForwarder) -> None:
        with self._lock:
            self._open_directions -= 1
            last = self._open_directions == 0
        if last:
            forwarder._forget(self.client, self.upstream)
