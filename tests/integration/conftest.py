"""Fixtures for the black-box integration suite.

The suite drives the real binaries: $ROOSTD and $ROOSTCTL (meson sets both;
the defaults point into build-dev/). With ROOST_TEST_SERVER=prosody the
protocol tests run against Debian's Prosody instead, which is how the tests
themselves were checked before roostd existed; tests marked `roost_only`
(roostctl, log hygiene, failure throttling, ...) are skipped there.

Every wait is bounded (WAIT seconds) so that a hung server fails a test
instead of hanging the suite; each test as a whole is bounded by
TEST_TIMEOUT.
"""

import asyncio
import inspect
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (DOMAIN, WAIT, Client, RawStream, await_live_clients_closed)  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ROOSTD = os.environ.get('ROOSTD') or str(ROOT / 'build-dev' / 'src' / 'roostd')
ROOSTCTL = os.environ.get('ROOSTCTL') or str(ROOT / 'build-dev' / 'tools' / 'roostctl')
SERVER_KIND = os.environ.get('ROOST_TEST_SERVER', 'roost')
TEST_TIMEOUT = 60
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'runtime error:',
                     'ERROR: LeakSanitizer')


def pytest_configure(config):
    config.addinivalue_line('markers', 'roost_only: needs roostd/roostctl specifics; skipped on Prosody')
    config.addinivalue_line('markers', 'slow: intrinsically slow (timing based)')
    config.addinivalue_line('markers', 'timeout(seconds): overall bound for an async test')


def pytest_collection_modifyitems(config, items):
    if SERVER_KIND == 'prosody':
        skip = pytest.mark.skip(reason='roost-specific (ROOST_TEST_SERVER=prosody)')
        for item in items:
            if 'roost_only' in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests on a fresh event loop, bounded in time."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    funcargs = {name: pyfuncitem.funcargs[name]
                for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker('timeout')
    limit = marker.args[0] if marker else TEST_TIMEOUT
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(
            asyncio.wait_for(pyfuncitem.obj(**funcargs), limit))
    finally:
        try:
            loop.run_until_complete(await_live_clients_closed())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.wait(pending, timeout=2))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return True


_ports_given = set()


def free_ports(n):
    """n distinct ports, none handed out before in this run.

    The sockets stay bound until all n are chosen: closed one at a time, the
    kernel may hand the same ephemeral port out twice (it did in CI, and
    roostd refused a config with one port in listen and tls_listen)."""
    chosen, rejected = [], []
    try:
        while len(chosen) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.1', 0))
            # a used port stays bound meanwhile, so the next pick differs
            (rejected if s.getsockname()[1] in _ports_given else chosen).append(s)
        ports = [s.getsockname()[1] for s in chosen]
        _ports_given.update(ports)
        return ports
    finally:
        for s in chosen + rejected:
            s.close()


def make_cert(directory):
    crt = directory / 'localhost.crt'
    key = directory / 'localhost.key'
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec',
         '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
         '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
         '-keyout', str(key), '-out', str(crt)],
        check=True, capture_output=True, timeout=WAIT)
    key.chmod(0o600)
    return crt, key


def _port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


class User:
    def __init__(self, jid, password):
        self.jid = jid
        self.password = password
        self.localpart = jid.split('@', 1)[0]

    def __repr__(self):
        return f'User({self.jid!r})'


class ServerInstance:
    """One running server: roostd (default) or prosody."""

    kind = 'roost'
    host = DOMAIN

    def __init__(self, name, **options):
        self.name = name
        self.options = options
        self.dir = Path(tempfile.mkdtemp(prefix=f'roost-it-{name}-'))
        self.data_dir = self.dir / 'data'
        self.data_dir.mkdir(mode=0o700)
        self.c2s_port, self.tls_port = free_ports(2)
        self.log_path = self.dir / 'server.log'
        self.crt, self.key = make_cert(self.dir)
        self.config = self.dir / 'roost.conf'
        self.proc = None
        self._log_file = None
        self.write_config()

    # -- configuration --------------------------------------------------
    def config_sections(self):
        o = self.options
        return {
            'server': {
                'data_dir': str(self.data_dir),
                'log_level': o.get('log_level', 'debug'),
                # The suite runs as root in CI and as anyone elsewhere:
                # never switch users (roostd refuses root without this).
                'user': 'root',
                'allow_root': 'true',
            },
            'c2s': {
                'listen': f'127.0.0.1:{self.c2s_port}',
                'tls_listen': f'127.0.0.1:{self.tls_port}',
                'require_tls': 'true' if o.get('require_tls', True) else 'false',
                'allow_plain': 'true' if o.get('allow_plain', True) else 'false',
                'keepalive': str(o.get('keepalive', 60)),
            },
            'limits': {
                'max_stanza_size': str(o.get('max_stanza_size', 262144)),
                'max_depth': str(o.get('max_depth', 64)),
                'max_attrs': str(o.get('max_attrs', 64)),
                'auth_timeout': str(o.get('auth_timeout', 60)),
                # The shared server must not let one test's failed logins
                # slow the next test down (all come from 127.0.0.1); the
                # throttling test uses a dedicated instance.
                'auth_failure_delay_ms': str(o.get('auth_failure_delay_ms', 20)),
                'auth_failure_max_delay_ms': str(o.get('auth_failure_max_delay_ms', 200)),
                # Likewise every test connects from 127.0.0.1, hundreds of
                # times a minute: per-address limits and refusals are off
                # except where a test_hostile instance turns them on.
                'auth_max_failures': str(o.get('auth_max_failures', 0)),
                'max_connections_per_ip': str(o.get('max_connections_per_ip', 0)),
                'connection_rate': str(o.get('connection_rate', 0)),
            },
            f'host {DOMAIN}': {
                'certificate': str(self.crt),
                'key': str(self.key),
            },
        }

    def write_config(self):
        sections = self.config_sections()
        # Extra sections or keys, merged in: sections={'offline': {'mode': 'off'}}
        for name, values in self.options.get('sections', {}).items():
            sections.setdefault(name, {}).update({k: str(v) for k, v in values.items()})
        lines = []
        for section, values in sections.items():
            lines.append(f'[{section}]')
            lines.extend(f'{k} = {v}' for k, v in values.items())
            lines.append('')
        self.config.write_text('\n'.join(lines))

    # -- process ----------------------------------------------------------
    def command(self):
        return [ROOSTD, '-c', str(self.config)]

    def start(self):
        self._log_file = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     cwd=str(self.dir))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f'{self.kind} exited with {self.proc.returncode} '
                                   f'at start-up:\n{self.log()[-4000:]}')
            if self.ready():
                return self
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f'{self.kind} not listening within {WAIT}s:\n{self.log()[-4000:]}')

    def restart(self):
        """Start again after a crash: the old log is kept beside."""
        if self._log_file:
            self._log_file.close()
        n = len(list(self.dir.glob('server.log.*')))
        if self.log_path.exists():
            self.log_path.rename(self.dir / f'server.log.{n}')
        self.c2s_port, self.tls_port = free_ports(2)
        self.write_config()
        self.start()

    def ready(self):
        if self.kind == 'roost' and self.log().count('listening') < 2:
            return False
        return _port_open(self.c2s_port) and _port_open(self.tls_port)

    def log(self):
        try:
            return self.log_path.read_text(errors='replace')
        except FileNotFoundError:
            return ''

    def wait_log(self, text, count=1, timeout=WAIT):
        """Wait until `text` stands in the log `count` times."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert time.monotonic() < deadline, f'no {text!r} in the log'
            time.sleep(0.05)

    def stop(self, check=True):
        """SIGTERM; returns the exit code. With check, asserts a clean exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    pytest.fail(f'{self.kind} did not exit within {WAIT}s of SIGTERM')
        rc = self.proc.returncode
        if self._log_file:
            self._log_file.close()
        if check:
            self.check_log_clean()
            assert rc == 0, f'{self.kind} exited with {rc}:\n{self.log()[-4000:]}'
        return rc

    def check_log_clean(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f'sanitizer report in server log:\n{text[-6000:]}'

    def cleanup(self):
        if os.environ.get('ROOST_TEST_KEEP'):
            print(f'kept {self.dir}', file=sys.stderr)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- accounts -----------------------------------------------------------
    def ctl(self, *args, input=None, timeout=WAIT):
        return subprocess.run([ROOSTCTL, '-c', str(self.config), *args],
                              input=input, capture_output=True, text=True,
                              timeout=timeout)

    def adduser(self, jid, password):
        r = self.ctl('adduser', jid, input=password + '\n')
        assert r.returncode == 0, f'roostctl adduser {jid}: {r.returncode} {r.stderr}'

    def deluser(self, jid):
        r = self.ctl('deluser', jid)
        assert r.returncode == 0, f'roostctl deluser {jid}: {r.returncode} {r.stderr}'

    def passwd(self, jid, password):
        r = self.ctl('passwd', jid, input=password + '\n')
        assert r.returncode == 0, f'roostctl passwd {jid}: {r.returncode} {r.stderr}'

    # -- connections ----------------------------------------------------------
    def raw(self, **kw):
        return RawStream(self, **kw)

    def client(self, user, resource=None, **kw):
        return Client(self, user.jid, user.password, resource=resource, **kw)


class ProsodyInstance(ServerInstance):
    """Debian's Prosody, used to validate the tests themselves."""

    kind = 'prosody'

    def write_config(self):
        o = self.options
        require = 'true' if o.get('require_tls', True) else 'false'
        self.config = self.dir / 'prosody.cfg.lua'
        self.config.write_text(textwrap.dedent(f'''\
            daemonize = false
            run_as_root = true
            pidfile = "{self.dir}/prosody.pid"
            data_path = "{self.data_dir}"
            log = {{ {{ levels = {{ min = "debug" }}, to = "console" }} }}
            interfaces = {{ "127.0.0.1" }}
            c2s_ports = {{ {self.c2s_port} }}
            c2s_direct_tls_ports = {{ {self.tls_port} }}
            c2s_direct_tls_ssl = {{ certificate = "{self.crt}", key = "{self.key}" }}
            s2s_ports = {{ }}
            http_ports = {{ }}
            https_ports = {{ }}
            modules_enabled = {{ "roster", "saslauth", "tls", "disco", "ping", "version", "offline" }}
            modules_disabled = {{ "s2s", "carbons", "pep", "smacks", "csi_simple" }}
            c2s_require_encryption = {require}
            allow_unencrypted_plain_auth = false
            authentication = "internal_hashed"
            storage = "internal"
            certificates = "{self.dir}/nocerts"
            VirtualHost "{DOMAIN}"
                ssl = {{ certificate = "{self.crt}", key = "{self.key}" }}
            '''))

    def command(self):
        return ['prosody', '--config', str(self.config)]

    def adduser(self, jid, password):
        local, host = jid.split('@', 1)
        r = subprocess.run(['prosodyctl', '--config', str(self.config),
                            'register', local, host, password],
                           capture_output=True, text=True, timeout=WAIT)
        assert r.returncode == 0, f'prosodyctl register {jid}: {r.stdout} {r.stderr}'

    def deluser(self, jid):
        local, host = jid.split('@', 1)
        r = subprocess.run(['prosodyctl', '--config', str(self.config),
                            'deluser', jid], capture_output=True, text=True,
                           timeout=WAIT)
        assert r.returncode == 0, f'prosodyctl deluser {jid}: {r.stdout} {r.stderr}'


def new_server(name, **options):
    cls = ProsodyInstance if SERVER_KIND == 'prosody' else ServerInstance
    if cls is ServerInstance:
        for binary in (ROOSTD, ROOSTCTL):
            if not os.access(binary, os.X_OK):
                pytest.fail(f'{binary} not built (set ROOSTD/ROOSTCTL)')
    return cls(name, **options)


_SHARED = {}


@pytest.fixture(scope='session')
def server(request):
    """The shared server: STARTTLS required, PLAIN allowed over TLS.
    After a run with failures its directory (config, logs) is kept."""
    srv = new_server('main')
    srv.start()
    _SHARED['main'] = srv
    yield srv
    _SHARED.pop('main', None)
    try:
        srv.stop(check=True)
    finally:
        if request.session.testsfailed:
            print(f'\nshared server files kept in {srv.dir}', file=sys.stderr)
        else:
            srv.cleanup()


@pytest.fixture(autouse=True)
def _shared_server_alive(request):
    """If the shared server dies during a test, that test errors with the
    log tail, and the server is restarted (fresh ports, same data dir) so
    that one crash does not take every later test down with it."""
    yield
    srv = _SHARED.get('main')
    if srv is None or srv.proc is None or srv.proc.poll() is None:
        return
    rc = srv.proc.returncode
    tail = srv.log()[-4000:]
    srv.restart()
    pytest.fail(f'shared {srv.kind} died during this test (exit {rc}); '
                f'restarted it. Log tail:\n{tail}', pytrace=False)


def _dedicated_servers():
    """factory(name, start=True, **options) for new_server instances;
    those still running at the end are stopped and checked for a clean
    exit, and all are removed."""
    made = []

    def factory(name='extra', start=True, **options):
        srv = new_server(name, **options)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for srv in made:
        if srv.proc is not None and srv.proc.returncode is None:
            srv.stop(check=True)
        srv.cleanup()


@pytest.fixture
def server_factory():
    """Dedicated instances for tests that change config or stop the
    server, for one test."""
    yield from _dedicated_servers()


@pytest.fixture(scope='module')
def make_server():
    """Dedicated instances shared by the tests of one module:
    make_server(name, **options)."""
    yield from _dedicated_servers()


_user_counter = itertools.count(1)


def unique_name(prefix='u'):
    return f'{prefix}{next(_user_counter)}x{secrets.token_hex(3)}'


def add_user(srv, prefix='u', password=None):
    """A new account on srv with a unique name, created via roostctl (or
    prosodyctl)."""
    jid = f'{unique_name(prefix)}@{DOMAIN}'
    password = password or 'pw-' + secrets.token_urlsafe(12)
    srv.adduser(jid, password)
    return User(jid, password)


@pytest.fixture
def make_user(server):
    """make_user(prefix='u', srv=server, password=None) -> User, made by
    add_user with a unique name for this test."""

    def factory(prefix='u', srv=None, password=None):
        return add_user(srv or server, prefix, password)

    return factory


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def users(make_user):
    """Two fresh users."""
    return make_user('a'), make_user('b')


def pytest_report_header(config):
    if SERVER_KIND == 'prosody':
        return 'integration: running against prosody'
    return f'integration: ROOSTD={ROOSTD} ROOSTCTL={ROOSTCTL}'
