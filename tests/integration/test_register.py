"""XEP-0077: in-band registration (off by default, limited per address),
password change (the sealed stores stay readable: the keyring is
rewrapped, DESIGN §5) and account removal (every session ends, no row of
the account is left in the database).

Raw streams where the exact answer matters, slixmpp's xep_0077 plugin for
what real clients do."""

import asyncio
import sqlite3
import threading
import time
import uuid

import pytest
from slixmpp.exceptions import IqError

from conftest import new_server, unique_name, User
from helpers import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_MAM, NS_PING,
                     NS_ROSTER, NS_STREAM, NS_STREAMS, WAIT, Client, LoginFailed,
                     RawStream, conditions, esc, is_presence, q, roster_items,
                     stanza_error, tostr)
from offline_helpers import (Sender, db_open, body_of, receive_offline, verify,
                             wait_stored)
from mam_helpers import archived_bodies
from streams import Session
from test_presence import subscribe

pytestmark = pytest.mark.roost_only

NS_REG = 'jabber:iq:register'
NS_REG_FEATURE = 'http://jabber.org/features/iq-register'


def marker(prefix='r'):
    return f'{prefix}-{uuid.uuid4().hex[:10]}'


def reg_query(username=None, password=None, extra=''):
    u = '' if username is None else f'<username>{esc(username)}</username>'
    p = '' if password is None else f'<password>{esc(password)}</password>'
    return f"<query xmlns='{NS_REG}'>{u}{p}{extra}</query>"


def secured(srv, source=None):
    """A raw stream after STARTTLS, features read."""
    s = RawStream(srv, source=source)
    s.secure()
    return s


def offers_register(s):
    return s.features.find(q(NS_REG_FEATURE, 'register')) is not None


def register(srv, username, password, source=None):
    """Registers on a fresh stream; returns the answer."""
    with secured(srv, source) as s:
        return s.iq(reg_query(username, password), type='set')


def assert_error(iq, type_, condition):
    assert iq.get('type') == 'error', tostr(iq)
    assert stanza_error(iq) == (type_, condition), tostr(iq)


def assert_result(iq):
    assert iq.get('type') == 'result', tostr(iq)


def can_login(srv, user, mechanism='SCRAM-SHA-256'):
    """(kind, condition) of a SCRAM exchange on a fresh stream."""
    with secured(srv) as s:
        if mechanism == 'PLAIN':
            return s.plain(user.localpart, user.password)
        return s.scram(mechanism, user.localpart, user.password)


class Stream(Session):
    """A Session (see streams.py), by default SCRAM-SHA-256 and without
    presence, that can watch for its own end."""

    def __init__(self, srv, user, resource=None, presence=False,
                 mechanism='SCRAM-SHA-256'):
        super().__init__(srv, user, resource=resource, presence=presence,
                         mechanism=mechanism)

    def stream_error(self, timeout=WAIT):
        """The condition of the stream error that ends this stream."""
        e = self.wait(lambda e: e.tag == q(NS_STREAM, 'error'), timeout, 'stream error')
        conds = conditions(e, NS_STREAMS)
        return conds[0] if conds else None

    def alive(self):
        r = self.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
        return r.get('type') == 'result'


def change_password(s, user, new, username=None):
    r = s.iq(reg_query(user.localpart if username is None else username, new),
             type='set', to=DOMAIN)
    return r


def set_mam_always(s):
    assert_result(s.iq(f"<prefs xmlns='{NS_MAM}' default='always'/>", type='set'))


@pytest.fixture(scope='module')
def reg_server():
    """A server with in-band registration on; the per-address limit high
    enough for every test here but the one about it."""
    srv = new_server('register', sections={
        'register': {'enabled': 'true', 'max_per_address': 1000}})
    srv.start()
    yield srv
    srv.stop(check=True)
    srv.cleanup()


def new_account(srv, prefix='r'):
    user = User(f'{unique_name(prefix)}@{DOMAIN}', 'pw-' + marker())
    assert_result(register(srv, user.localpart, user.password))
    return user


# ---------------------------------------------------------------------------
# off by default

def test_registration_off_by_default(server, user):
    with secured(server) as s:
        assert not offers_register(s), tostr(s.features)
        assert_error(s.iq(reg_query()), 'cancel', 'service-unavailable')
        name = unique_name('off')
        assert_error(s.iq(reg_query(name, 'secret'), type='set'),
                     'cancel', 'service-unavailable')
        # The stream goes on: SASL still works on it.
        assert s.scram('SCRAM-SHA-256', user.localpart, user.password) == ('success', None)
    assert f'{name}@{DOMAIN}' not in server.ctl('list').stdout
    # Password change and removal stay: disco says so after login.
    s = Stream(server, user)
    info = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_REG in {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))}
    s.close()


def test_not_offered_before_tls(reg_server):
    with RawStream(reg_server) as s:
        s.open()
        assert not offers_register(s), tostr(s.features)
        # Before STARTTLS (required here) nothing but TLS is accepted.
        s.send(f"<iq type='get' id='x'>{reg_query()}</iq>")
        s.expect_stream_error('not-authorized')


# ---------------------------------------------------------------------------
# registration

def test_feature_and_form(reg_server):
    with secured(reg_server) as s:
        assert offers_register(s), tostr(s.features)
        r = s.iq(reg_query())
        assert_result(r)
        assert r.get('to') is None
        query = r.find(q(NS_REG, 'query'))
        assert [c.tag for c in query] == [q(NS_REG, 'instructions'),
                                          q(NS_REG, 'username'), q(NS_REG, 'password')]
        assert query.findtext(q(NS_REG, 'instructions')).strip()
        assert not query.findtext(q(NS_REG, 'username'))
        assert not query.findtext(q(NS_REG, 'password'))
        # The same with the host named.
        assert_result(s.iq(reg_query(), to=DOMAIN))


@pytest.mark.parametrize('mechanism', ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'])
def test_register_then_login(reg_server, mechanism):
    user = User(f'{unique_name("reg")}@{DOMAIN}', 'pw-' + marker())
    r = register(reg_server, user.localpart, user.password)
    assert_result(r)
    assert len(r) == 0, tostr(r)
    assert can_login(reg_server, user, mechanism) == ('success', None)
    assert can_login(reg_server, User(user.jid, 'wrong'), mechanism) == \
        ('failure', 'not-authorized')
    # Credentials for both hashes and a keyring, as roostctl adduser makes.
    conn = db_open(reg_server)
    try:
        row = conn.execute('SELECT sha1_salt, sha1_mac, sha256_salt, sha256_mac,'
                           ' sha1_iterations FROM users WHERE local = ? AND domain = ?',
                           (user.localpart, DOMAIN)).fetchone()
        kr = conn.execute('SELECT blob FROM keyrings WHERE local = ? AND domain = ?',
                          (user.localpart, DOMAIN)).fetchone()
    finally:
        conn.close()
    assert row is not None and all(row[k] for k in row.keys()), dict(row)
    assert row['sha1_iterations'] == 4096
    assert kr is not None and bytes(kr['blob']).startswith(b'RKR')
    assert user.jid in reg_server.ctl('list').stdout.split()


def test_register_and_authenticate_on_the_same_stream(reg_server):
    user = User(f'{unique_name("same")}@{DOMAIN}', 'pw-' + marker())
    with secured(reg_server) as s:
        assert_result(s.iq(reg_query(user.localpart, user.password), type='set'))
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password) == ('success', None)
        s.open()
        assert s.bind('here') == f'{user.jid}/here'


def test_sealed_messages_reach_a_registered_account(reg_server):
    """The keyring made at registration opens with the login: an offline
    message is sealed to it and delivered."""
    user = new_account(reg_server, 'seal')
    other = new_account(reg_server, 'from')
    sender = Sender(reg_server, other)
    body = marker('sealed')
    sender.send(user.jid, body)
    wait_stored(reg_server, user, 1, sender=sender)
    got, notices, s = receive_offline(reg_server, user, 1)
    assert [body_of(m) for m in got] == [body]
    assert notices == []
    s.close()
    sender.close()


def test_conflict(reg_server, make_user):
    taken = make_user('tk', srv=reg_server)
    assert_error(register(reg_server, taken.localpart, 'other'), 'cancel', 'conflict')
    # nodeprep: a different case is the same account.
    assert_error(register(reg_server, taken.localpart.upper(), 'other'), 'cancel', 'conflict')
    mine = new_account(reg_server, 'twice')
    assert_error(register(reg_server, mine.localpart, 'again'), 'cancel', 'conflict')
    # The first password still works.
    assert can_login(reg_server, mine) == ('success', None)
    assert can_login(reg_server, taken) == ('success', None)


@pytest.mark.parametrize('username,password,condition', [
    ('with space', 'pw', ('modify', 'jid-malformed')),
    ('at@sign', 'pw', ('modify', 'jid-malformed')),
    ('slash/', 'pw', ('modify', 'jid-malformed')),
    ('x' * 1024, 'pw', ('modify', 'jid-malformed')),
    ('', 'pw', ('modify', 'not-acceptable')),
    (None, 'pw', ('modify', 'not-acceptable')),
    ('NAME', None, ('modify', 'not-acceptable')),
    ('NAME', '', ('modify', 'not-acceptable')),
    ('NAME', 'x' * 1024, ('modify', 'not-acceptable')),
    # SASLprep (RFC 4013) prohibits private use characters...
    ('NAME', 'private\ue000', ('modify', 'not-acceptable')),
    # ... and maps a soft hyphen to nothing: an empty password.
    ('NAME', '\u00ad', ('modify', 'not-acceptable')),
])
def test_refused(reg_server, username, password, condition):
    name = unique_name('bad')
    if username == 'NAME':
        username = name
    r = register(reg_server, username, password)
    assert r.get('type') == 'error', tostr(r)
    assert stanza_error(r) == condition, tostr(r)
    assert f'{name}@{DOMAIN}' not in reg_server.ctl('list').stdout.split()


def test_remove_before_login_and_bad_types(reg_server):
    with secured(reg_server) as s:
        assert_error(s.iq(f"<query xmlns='{NS_REG}'><remove/></query>", type='set'),
                     'auth', 'registration-required')
        # Two payloads: a bad request, not two answers.
        s.send(f"<iq type='get' id='two'>{reg_query()}<x xmlns='urn:x'/></iq>")
        r = s.wait_for(lambda e: e.get('id') == 'two')
        assert_error(r, 'modify', 'bad-request')
        # A result nobody asked for is dropped; the stream goes on.
        s.send(f"<iq type='result' id='stray'>{reg_query()}</iq>")
        assert_result(s.iq(reg_query()))
        # Another host: not ours to answer before authentication.
        s.send(f"<iq type='get' id='elsewhere' to='example.org'>{reg_query()}</iq>")
        s.expect_stream_error('not-authorized')


def test_rate_limit_per_address(server_factory):
    srv = server_factory('reglimit', sections={
        'register': {'enabled': 'true', 'max_per_address': 2, 'window': 3600}})
    taken = User(f'{unique_name("lim")}@{DOMAIN}', 'pw')
    srv.adduser(taken.jid, taken.password)
    # A refused registration costs nothing.
    assert_error(register(srv, taken.localpart, 'x', source='127.0.0.2'), 'cancel', 'conflict')
    names = [unique_name('lim') for _ in range(3)]
    assert_result(register(srv, names[0], 'pw', source='127.0.0.2'))
    assert_result(register(srv, names[1], 'pw', source='127.0.0.2'))
    r = register(srv, names[2], 'pw', source='127.0.0.2')
    assert_error(r, 'wait', 'resource-constraint')
    assert f'{names[2]}@{DOMAIN}' not in srv.ctl('list').stdout.split()
    # Another address has its own allowance.
    assert_result(register(srv, names[2], 'pw', source='127.0.0.3'))
    assert_error(register(srv, unique_name('lim'), 'pw', source='127.0.0.2'),
                 'wait', 'resource-constraint')


def registrant(srv, jid, password):
    c = Client(srv, jid, password, plugins=('xep_0030', 'xep_0199', 'xep_0077'))
    # slixmpp 1.8 holds every stanza back until the session starts, its
    # own XEP-0077 plugin's IQs included; a client that registers has to
    # let them through.
    c._always_send_everything = True
    return c


async def test_slixmpp_registers_and_logs_in(reg_server):
    user = User(f'{unique_name("slx")}@{DOMAIN}', 'pw-' + marker())
    outcome = {}

    c = registrant(reg_server, user.jid, user.password)

    async def on_register(form):
        assert 'password' in str(form), str(form)
        resp = c.Iq()
        resp['type'] = 'set'
        resp['register']['username'] = user.localpart
        resp['register']['password'] = user.password
        try:
            await resp.send(timeout=WAIT)
            outcome['result'] = 'ok'
        except IqError as e:
            outcome['result'] = e.iq['error']['condition']

    c.add_event_handler('register', on_register)
    await c.start()
    assert outcome == {'result': 'ok'}
    assert str(c.boundjid.bare) == user.jid
    await c.stop()

    # The same name again: slixmpp sees the conflict, and login with
    # another password fails.
    c2 = registrant(reg_server, user.jid, 'another')
    outcome.clear()

    async def on_register2(form):
        resp = c2.Iq()
        resp['type'] = 'set'
        resp['register']['username'] = user.localpart
        resp['register']['password'] = 'another'
        try:
            await resp.send(timeout=WAIT)
            outcome['result'] = 'ok'
        except IqError as e:
            outcome['result'] = e.iq['error']['condition']

    c2.add_event_handler('register', on_register2)
    with pytest.raises(LoginFailed):
        await c2.start()
    assert outcome == {'result': 'conflict'}


# ---------------------------------------------------------------------------
# password change (on the shared server: registration is off there, and
# changing one's password must work all the same)

def test_registered_query(server, users):
    user, other = users
    s = Stream(server, user)
    for to in (DOMAIN, None, user.jid):
        r = s.iq(reg_query(), to=to)
        assert_result(r)
        query = r.find(q(NS_REG, 'query'))
        assert query.find(q(NS_REG, 'registered')) is not None
        assert query.findtext(q(NS_REG, 'username')) == user.localpart
    # Another account's registration is not for us to see or change.
    assert_error(s.iq(reg_query(), to=other.jid), 'auth', 'forbidden')
    assert_error(s.iq(reg_query(other.localpart, 'x'), type='set', to=other.jid),
                 'auth', 'forbidden')
    assert_error(s.iq(f"<query xmlns='{NS_REG}'><remove/></query>", type='set',
                      to=other.jid), 'auth', 'forbidden')
    s.close()
    assert can_login(server, other) == ('success', None)


def test_password_change_keeps_sealed_messages(server, make_user):
    """Offline messages and the archive sealed before the change open
    after a login with the new password: the keyring was rewrapped, not
    replaced."""
    user, other = make_user('pw'), make_user('pwf')
    s = Stream(server, user, presence=True)
    set_mam_always(s)
    s.close()
    sender = Sender(server, other)
    before = [marker('before') for _ in range(3)]
    for body in before:
        sender.send(user.jid, body)
    wait_stored(server, user, 3, sender=sender)

    s = Stream(server, user)          # no presence: nothing is delivered
    old = User(user.jid, user.password)
    new = User(user.jid, 'new-' + marker())
    assert_result(change_password(s, user, new.password))
    assert s.alive()                  # the session that changed it stays
    s.close()

    assert can_login(server, old) == ('failure', 'not-authorized')
    assert can_login(server, old, 'SCRAM-SHA-1') == ('failure', 'not-authorized')
    assert can_login(server, new) == ('success', None)
    assert can_login(server, new, 'SCRAM-SHA-1') == ('success', None)
    assert can_login(server, new, 'PLAIN') == ('success', None)

    # A message sealed after the change opens too.
    after = marker('after')
    sender.send(user.jid, after)
    wait_stored(server, user, 4, sender=sender)
    got, notices, s = receive_offline(server, new, 4, mechanism='SCRAM-SHA-256')
    assert [body_of(m) for m in got] == before + [after]
    assert notices == [], [tostr(n) for n in notices]
    s.close()
    s = Stream(server, new)
    assert archived_bodies(s) == before + [after]
    s.close()
    sender.close()
    code, out = verify(server, user.jid)
    assert code == 0, out


def test_second_password_change(server, make_user):
    """Two changes: the retired keys stay with the keyring."""
    user, other = make_user('pw2'), make_user('pw2f')
    sender = Sender(server, other)
    first = marker('first')
    sender.send(user.jid, first)
    wait_stored(server, user, 1, sender=sender)
    pw1, pw2 = 'one-' + marker(), 'two-' + marker()
    s = Stream(server, user)
    assert_result(change_password(s, user, pw1))
    s.close()
    sender.send(user.jid, second := marker('second'))
    wait_stored(server, user, 2, sender=sender)
    s = Stream(server, User(user.jid, pw1), mechanism='SCRAM-SHA-1')
    assert_result(change_password(s, user, pw2))
    s.close()
    got, notices, s = receive_offline(server, User(user.jid, pw2), 2)
    assert [body_of(m) for m in got] == [first, second]
    assert notices == []
    s.close()
    sender.close()


def test_password_change_ends_other_sessions(server, user):
    one = Stream(server, user, resource='one', presence=True)
    two = Stream(server, user, resource='two', presence=True)
    # Authenticated, not bound yet: it ends too.
    pending = secured(server)
    assert pending.scram('SCRAM-SHA-256', user.localpart, user.password) == ('success', None)
    pending.open()
    new = 'new-' + marker()
    assert_result(change_password(one, user, new))
    assert two.stream_error() == 'reset'
    pending.expect_stream_error('reset')
    assert one.alive()
    one.close()
    two.close()


@pytest.mark.parametrize('payload,condition', [
    (lambda u: reg_query(None, 'x'), ('modify', 'bad-request')),
    (lambda u: reg_query(u.localpart, None), ('modify', 'bad-request')),
    (lambda u: reg_query('someone-else', 'x'), ('modify', 'bad-request')),
    (lambda u: reg_query(u.localpart, ''), ('modify', 'not-acceptable')),
    (lambda u: reg_query(u.localpart, 'x' * 1024), ('modify', 'not-acceptable')),
    (lambda u: reg_query(u.localpart, '\u00ad'), ('modify', 'not-acceptable')),
    (lambda u: f"<query xmlns='{NS_REG}'/>", ('modify', 'bad-request')),
    (lambda u: f"<query xmlns='{NS_REG}'><remove/><username>x</username></query>",
     ('modify', 'bad-request')),
])
def test_password_change_refused(server, user, payload, condition):
    s = Stream(server, user)
    r = s.iq(payload(user), type='set', to=DOMAIN)
    assert r.get('type') == 'error', tostr(r)
    assert stanza_error(r) == condition, tostr(r)
    # XEP-0077 §3.3: the error does not echo the request.
    assert r.find(q(NS_REG, 'query')) is None, tostr(r)
    assert s.alive()
    s.close()
    assert can_login(server, user) == ('success', None)


def test_password_change_by_bare_jid_username(server, user):
    """The username as a bare JID, and no 'to' (the user's own account)."""
    s = Stream(server, user)
    new = User(user.jid, 'new-' + marker())
    assert_result(s.iq(reg_query(user.jid, new.password), type='set'))
    s.close()
    assert can_login(server, new) == ('success', None)


async def test_slixmpp_change_password(server, user):
    c = Client(server, user.jid, user.password,
               plugins=('xep_0030', 'xep_0199', 'xep_0077'))
    await c.start()
    new = 'new-' + marker()
    r = await c['xep_0077'].change_password(new, jid=DOMAIN, timeout=WAIT)
    assert r['type'] == 'result'
    await c.stop()
    c2 = Client(server, user.jid, new, plugins=('xep_0030', 'xep_0199'))
    await c2.start()
    await c2.stop()
    with pytest.raises(LoginFailed):
        await Client(server, user.jid, user.password).start()


def test_roostctl_passwd_while_messages_flow(server, make_user):
    """roostctl passwd rewrites the keyring row inside the transaction that
    reads it: deposits made while it runs are not rolled back."""
    user, other = make_user('ctl'), make_user('ctlf')
    sender = Sender(server, other)
    stop = threading.Event()
    sent = []

    def flood():
        while not stop.is_set():
            body = marker('flow')
            sender.send(user.jid, body)
            sent.append(body)
            time.sleep(0.005)

    t = threading.Thread(target=flood)
    t.start()
    try:
        time.sleep(0.2)
        for i in range(3):
            server.passwd(user.jid, f'reset-{i}-{marker()}')
        time.sleep(0.2)
    finally:
        stop.set()
        t.join()
    sender.s.sync()
    rolled = [line for line in server.log().splitlines()
              if user.jid in line and 'rolled back' in line]
    assert rolled == [], rolled
    errors = sender.errors(0.5)
    assert errors == [], [tostr(e) for e in errors]
    code, out = verify(server, user.jid)
    assert code == 0, out
    assert len(sent) > 20
    # Every message went in (none refused as sealed onto a rolled-back
    # store), and new ones still do.
    wait_stored(server, user, len(sent), sender=sender)
    sender.send(user.jid, marker('last'))
    wait_stored(server, user, len(sent) + 1, sender=sender)
    sender.close()


# ---------------------------------------------------------------------------
# removal

def owner_columns(cols):
    if 'owner' in cols:
        return ('owner',)
    if 'local' in cols and 'domain' in cols:
        return ('local', 'domain')
    return ()


def rows_naming(srv, user):
    """Every row of every table where the account's JID or localpart
    appears in any column, except rows owned by another account (their
    roster items and archives may name it)."""
    needles = (user.jid, user.localpart)
    found = []
    conn = sqlite3.connect(f'file:{srv.data_dir / "roost.db"}?mode=ro', uri=True,
                           timeout=WAIT)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {'users', 'keyrings', 'offline', 'archive', 'roster',
                'user_data'} <= set(tables), tables
        for t in tables:
            cur = conn.execute(f'SELECT * FROM "{t}"')
            cols = [d[0] for d in cur.description]
            own = owner_columns(cols)
            for row in cur:
                values = dict(zip(cols, row))
                hit = False
                for v in row:
                    if isinstance(v, str):
                        hit |= any(n in v for n in needles)
                    elif isinstance(v, bytes):
                        hit |= any(n.encode() in v for n in needles)
                if not hit:
                    continue
                if own == ('owner',) and values['owner'] != user.jid:
                    continue
                if own == ('local', 'domain') and (values['local'], values['domain']) != \
                        (user.localpart, DOMAIN):
                    continue
                found.append((t, {k: (v if not isinstance(v, bytes) else v[:16])
                                  for k, v in values.items()}))
    finally:
        conn.close()
    return found


SLIX_REG = ('xep_0030', 'xep_0199', 'xep_0077')


async def stream_errors(c):
    """The conditions of the stream errors a slixmpp client got."""
    deadline = time.monotonic() + WAIT
    while not c.stream_errors and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return [e['condition'] for e in c.stream_errors]


def put_user_data(srv, owner, space, key):
    conn = sqlite3.connect(str(srv.data_dir / 'roost.db'), timeout=WAIT)
    try:
        conn.execute('INSERT INTO user_data (owner, space, key, value, stamp, ord)'
                     ' VALUES (?, ?, ?, ?, 0, 1)', (owner, space, key, b'<x/>'))
        conn.commit()
    finally:
        conn.close()


async def test_removal(reg_server):
    """<remove/>: result, every session and half-open login of the
    account ends with <not-authorized/>, contacts see the subscriptions
    cancelled (keeping the item), login fails, and no row of the account
    is left. The name can then be registered afresh, with a working
    sealed store."""
    user = new_account(reg_server, 'gone')
    friend = new_account(reg_server, 'friend')

    # A mutual subscription, an archive, offline messages, per-user data.
    a = await reg_server.client(user, 'a').start()
    f = await reg_server.client(friend, 'f').start()
    await subscribe(a, f, user.jid, friend.jid)
    await subscribe(f, a, friend.jid, user.jid)
    for c in (a, f):
        r = await c.iq(f"<prefs xmlns='{NS_MAM}' default='always'/>", type='set')
        assert r['type'] == 'result', str(r)
    live = marker('live')
    f.send_message(mto=user.jid, mbody=live, mtype='chat')
    await a.wait(lambda st: st.xml.findtext(q(NS_CLIENT, 'body')) == live, what='live message')
    await a.stop()
    stored = [marker('stored') for _ in range(2)]
    for body in stored:
        f.send_message(mto=user.jid, mbody=body, mtype='chat')
    await asyncio.get_event_loop().run_in_executor(
        None, lambda: wait_stored(reg_server, user, 2))
    put_user_data(reg_server, user.jid, 'private', '{urn:test}x')
    put_user_data(reg_server, friend.jid, 'private', '{urn:test}x')
    assert rows_naming(reg_server, user), 'the account has rows before removal'

    one = await reg_server.client(user, 'one', plugins=SLIX_REG).start(presence=False)
    two = await reg_server.client(user, 'two').start(presence=False)
    pending = secured(reg_server)
    assert pending.scram('SCRAM-SHA-256', user.localpart, user.password) == ('success', None)
    pending.open()
    f.clear()

    r = await one['xep_0077'].cancel_registration(jid=DOMAIN, timeout=WAIT)
    assert r['type'] == 'result'
    for c in (one, two):
        assert await stream_errors(c) == ['not-authorized']
    pending.expect_stream_error('not-authorized')

    # The friend: unavailable, then the subscriptions cancelled both ways;
    # the item stays in the roster with subscription none.
    await f.wait(is_presence(frm=user.jid, type='unsubscribe'), what='unsubscribe')
    await f.wait(is_presence(frm=user.jid, type='unsubscribed'), what='unsubscribed')

    async def sub_of_user():
        roster = await f.iq(f"<query xmlns='{NS_ROSTER}'/>")
        item = roster_items(roster).get(user.jid)
        return None if item is None else (item.get('subscription'), item.get('ask'))

    deadline = time.monotonic() + WAIT
    while await sub_of_user() != ('none', None) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await sub_of_user() == ('none', None)

    assert can_login(reg_server, user) == ('failure', 'not-authorized')
    assert user.jid not in reg_server.ctl('list').stdout.split()
    deadline = time.monotonic() + WAIT
    while rows_naming(reg_server, user) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert rows_naming(reg_server, user) == []
    # Other accounts' data is untouched.
    conn = db_open(reg_server)
    try:
        assert conn.execute('SELECT COUNT(*) FROM user_data WHERE owner = ?',
                            (friend.jid,)).fetchone()[0] == 1
        assert conn.execute('SELECT COUNT(*) FROM roster WHERE owner = ? AND contact = ?',
                            (friend.jid, user.jid)).fetchone()[0] == 1
    finally:
        conn.close()

    # Registered afresh: a new account whose sealed store works.
    again = User(user.jid, 'pw-' + marker())
    assert_result(register(reg_server, again.localpart, again.password))
    body = marker('again')
    f.send_message(mto=user.jid, mbody=body, mtype='chat')
    await asyncio.get_event_loop().run_in_executor(
        None, lambda: wait_stored(reg_server, again, 1))
    got, notices, s = await asyncio.get_event_loop().run_in_executor(
        None, lambda: receive_offline(reg_server, again, 1))
    assert [body_of(m) for m in got] == [body]
    assert notices == []
    s.close()
    await f.stop()
    pending.close()


def test_removal_by_raw_stream_answers_first(server, make_user):
    """The result comes before the stream error, on the same stream."""
    user = make_user('rm')
    s = Stream(server, user, presence=True)
    s.send(f"<iq type='set' id='rm1'><query xmlns='{NS_REG}'><remove/></query></iq>")
    r = s.wait(lambda e: e.tag == q(NS_CLIENT, 'iq'), what='answer')
    assert r.get('id') == 'rm1' and r.get('type') == 'result', tostr(r)
    assert s.stream_error() == 'not-authorized'
    s.close()
    assert can_login(server, user) == ('failure', 'not-authorized')
    assert rows_naming(server, user) == []


async def test_roostctl_deluser_ends_sessions(reg_server):
    """`roostctl deluser` while the user is logged in: roostd hears of it
    (SIGUSR1, the pid in data_dir/roostd.pid) and ends every session of
    the account with <not-authorized/>, as after XEP-0077 removal; its
    contacts see the subscriptions cancelled. The name made again with
    roostctl, without a restart, gets a working sealed store (roostd
    forgot the old account's sealer state and chain anchors)."""
    user = new_account(reg_server, 'ctlgone')
    friend = new_account(reg_server, 'ctlfriend')
    loop = asyncio.get_event_loop()

    a = await reg_server.client(user, 'a').start()
    f = await reg_server.client(friend, 'f').start()
    await subscribe(a, f, user.jid, friend.jid)
    await subscribe(f, a, friend.jid, user.jid)
    # Sealed records for the old account, so that roostd's sealer
    # remembers seqs for the name.
    await a.stop()
    for _ in range(2):
        f.send_message(mto=user.jid, mbody=marker('old'), mtype='chat')
    await loop.run_in_executor(None, lambda: wait_stored(reg_server, user, 2))
    a = await reg_server.client(user, 'a').start()
    b = await reg_server.client(user, 'b').start(presence=False)
    f.clear()

    reg_server.deluser(user.jid)
    for c in (a, b):
        assert await stream_errors(c) == ['not-authorized']
    await f.wait(is_presence(frm=user.jid, type='unsubscribed'), what='unsubscribed')
    assert 'was removed from the store' in reg_server.log()
    assert can_login(reg_server, user) == ('failure', 'not-authorized')

    again = User(user.jid, 'pw-' + marker())
    reg_server.adduser(again.jid, again.password)
    body = marker('again')
    f.send_message(mto=user.jid, mbody=body, mtype='chat')
    await loop.run_in_executor(None, lambda: wait_stored(reg_server, again, 1))
    got, notices, s = await loop.run_in_executor(
        None, lambda: receive_offline(reg_server, again, 1))
    assert [body_of(m) for m in got] == [body]
    await f.stop()
