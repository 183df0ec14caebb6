"""A real SMTP server for the e-mail tests (aiosmtpd, from PyPI).

    smtp_server.py DIR PLAIN_PORT TLS_PORT CERT KEY USER PASSWORD

PLAIN_PORT takes mail without TLS or authentication. TLS_PORT requires STARTTLS, then
authentication as USER with PASSWORD (AUTH PLAIN or LOGIN). Each message received is written
to DIR as NNN-PORT.eml; each successful login is written as NNN-PORT.auth with the user's name.
Prints "ready" once both listen; stops when its standard input closes.
"""

import ssl
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, plain_port, tls_port, cert, key, user, password = sys.argv[1:8]
out = Path(out)
count = 0
lock = threading.Lock()


def save(port, suffix, data):
    global count
    with lock:
        count += 1
        (out / f"{count:03}-{port}.{suffix}").write_bytes(data)


class Handler:
    def __init__(self, port):
        self.port = port

    async def handle_DATA(self, server, session, envelope):
        save(self.port, "eml", envelope.original_content or envelope.content)
        return "250 OK"


def authenticator(port):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if ok:
            save(port, "auth", auth_data.login)
        # Not `handled`: aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)

plain = Controller(Handler(plain_port), hostname="127.0.0.1", port=int(plain_port))
secure = Controller(
    Handler(tls_port),
    hostname="127.0.0.1",
    port=int(tls_port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticator(tls_port),
    auth_require_tls=True,
)
plain.start()
secure.start()
print("ready", flush=True)
sys.stdin.read()
plain.stop()
secure.stop()
