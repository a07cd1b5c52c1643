"""Helpers for the offline-store tests (issue 3): a raw stream that keeps
every element it reads, a raw sender, the recipient's rows in roost.db
(read while roostd runs, tampered with while it is stopped), a search of
every byte under a directory, and predicates on delivered messages.

Rows are picked by their position in the user's store (index 0 = oldest),
never by an assumed seq number."""

import datetime
import os
import re
import socket
import sqlite3
import struct
import time
import uuid

from helpers import DOMAIN, NS_CLIENT, NS_DELAY, NS_OFFLINE, WAIT, esc, q, tostr
from streams import KeptStream


def marker(prefix='m'):
    return f'{prefix}{uuid.uuid4().hex[:16]}'


# ---------------------------------------------------------------------------
# message predicates (ElementTree elements)

def is_msg(e):
    return e.tag == q(NS_CLIENT, 'message')


def body_of(e):
    b = e.find(q(NS_CLIENT, 'body'))
    return None if b is None else (b.text or '')


def is_notice(e):
    """A message from the server itself (from = the bare domain) with a
    body: how roost tells a user about withheld or unreadable records."""
    return is_msg(e) and e.get('from') == DOMAIN and body_of(e) is not None \
        and e.get('type') != 'error'


def is_stored_msg(e):
    """A message from someone (not the server) that is not an error."""
    return is_msg(e) and e.get('from') not in (None, DOMAIN) \
        and e.get('type') != 'error'


def is_error_msg(e):
    return is_msg(e) and e.get('type') == 'error'


def delay_of(e):
    return e.find(q(NS_DELAY, 'delay'))


_STAMP = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$')


def parse_stamp(stamp):
    """XEP-0082 DateTime -> POSIX seconds (float); AssertionError if the
    syntax is wrong."""
    m = _STAMP.match(stamp or '')
    assert m, f'not a XEP-0082 DateTime: {stamp!r}'
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = float(m.group(7)) if m.group(7) else 0.0
    tz = m.group(8)
    dt = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc)
    t = dt.timestamp() + frac
    if tz != 'Z':
        sign = 1 if tz[0] == '+' else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def numbers_in(text):
    return {int(n) for n in re.findall(r'\d+', text or '')}


def offline_item_node(e):
    """The XEP-0013 node a viewed/fetched message carries, or None."""
    item = e.find(f'{q(NS_OFFLINE, "offline")}/{q(NS_OFFLINE, "item")}')
    return None if item is None else item.get('node')


# ---------------------------------------------------------------------------
# raw streams

class OfflineStream(KeptStream):
    """A KeptStream (see streams.py) that logs in with any mechanism and
    can end the connection without closing the stream."""

    def login_user(self, user, resource=None, mechanism='SCRAM-SHA-1'):
        """TLS, SASL (SCRAM-* or PLAIN), bind: returns the full JID."""
        if mechanism == 'PLAIN':
            self.secure()
            kind, cond = self.plain(user.localpart, user.password)
            assert kind == 'success', f'PLAIN login failed: {cond}'
            self.open()
            self.full = self.bind(resource)
        else:
            self.full = self.login(user, resource=resource, mechanism=mechanism)
        return self.full

    def presence(self, priority=None):
        prio = f'<priority>{priority}</priority>' if priority is not None else ''
        self.send(f'<presence>{prio}</presence>')

    def iq_collect(self, payload, type='get', to=None, timeout=WAIT):
        """Send an IQ; returns (response, elements that arrived before the
        response). The latter are removed from the backlog."""
        resp = self.iq(payload, type=type, to=to, timeout=timeout)
        before, self.backlog = self.backlog, []
        return resp, before

    # -- ending without closing the stream ----------------------------------
    def half_close(self):
        """TCP FIN without </stream:stream> (and without TLS close_notify):
        the server sees the connection end mid-stream, while everything it
        already wrote still reaches us."""
        socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def abort(self):
        """TCP RST: gone without a trace."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.close()


def connect_user(srv, user, resource=None, mechanism='SCRAM-SHA-1', presence=True,
                 priority=None, rcvbuf=None):
    """Logged-in OfflineStream; with presence, initial presence is sent."""
    s = OfflineStream(srv, rcvbuf=rcvbuf)
    s.login_user(user, resource=resource, mechanism=mechanism)
    if presence:
        s.presence(priority)
    return s


def receive_offline(srv, user, n, timeout=WAIT, quiet=0.7, **kw):
    """Log in with initial presence, collect n stored messages, then keep
    listening `quiet` seconds. Returns (messages, notices, stream); messages
    includes any extra stored message that arrived (duplicates too)."""
    s = connect_user(srv, user, **kw)
    got = s.collect(is_stored_msg, n, timeout=timeout) if n else []
    rest = s.drain(quiet) if quiet else []
    got += [e for e in rest if is_stored_msg(e)]
    notices = [e for e in rest if is_notice(e)] + s.take(is_notice)
    s.backlog = [e for e in rest if not is_stored_msg(e) and not is_notice(e)]
    return got, notices, s


class Sender:
    """A logged-in raw stream that sends messages and collects errors."""

    def __init__(self, srv, user, resource=None):
        self.user = user
        self.s = OfflineStream(srv)
        self.jid = self.s.login_user(user, resource=resource)
        self.sent = 0

    def send(self, to, body=None, type='chat', id=None, extra=''):
        id = id or 'm-' + uuid.uuid4().hex[:10]
        type_attr = f" type='{type}'" if type else ''
        b = f'<body>{esc(body)}</body>' if body is not None else ''
        self.s.send(f"<message to='{to}' id='{id}'{type_attr}>{b}{extra}</message>")
        self.sent += 1
        return id

    def send_many(self, to, bodies, type='chat', chunk=100):
        """Pipelined, with a ping round trip every `chunk` messages."""
        ids = []
        for i, body in enumerate(bodies):
            ids.append(self.send(to, body, type=type, id=f'bulk-{i}'))
            if (i + 1) % chunk == 0:
                self.s.sync(timeout=60)
        self.s.sync(timeout=60)
        return ids

    def wait_error(self, id, timeout=WAIT):
        return self.s.wait(lambda e: is_error_msg(e) and e.get('id') == id,
                           timeout, what=f'error for message {id}')

    def errors(self, wait=0.5):
        """Every error message that arrived (or arrives within `wait`)."""
        got = self.s.drain(wait)
        return [e for e in got if is_error_msg(e)]

    def close(self):
        self.s.close()


# ---------------------------------------------------------------------------
# roost.db: the user's rows

def db_path(srv):
    return srv.data_dir / 'roost.db'


def db_open(srv, readonly=True):
    if readonly:
        conn = sqlite3.connect(f'file:{db_path(srv)}?mode=ro', uri=True, timeout=WAIT)
    else:
        conn = sqlite3.connect(str(db_path(srv)), timeout=WAIT)
    conn.row_factory = sqlite3.Row
    return conn


def _who(user):
    local, domain = user.jid.split('@', 1)
    return local, domain


COLUMNS = ('seq', 'stamp', 'key_id', 'epk', 'nonce', 'ct', 'ct_len', 'chain', 'tomb')


def offline_rows(srv, user):
    """The user's rows, oldest first: list of dicts (rowid and COLUMNS)."""
    conn = db_open(srv)
    try:
        rows = conn.execute(
            f"SELECT rowid, {', '.join(COLUMNS)} FROM offline"
            " WHERE local = ? AND domain = ? ORDER BY seq, rowid", _who(user)).fetchall()
    finally:
        conn.close()
    return [dict(r) for r in rows]


def live_rows(srv, user):
    return [r for r in offline_rows(srv, user) if r['ct'] is not None]


def live_count(srv, user):
    if srv.kind != 'roost':
        return None
    return len(live_rows(srv, user))


def wait_stored(srv, user, n, timeout=WAIT, sender=None):
    """Wait until the user has (at least) n live records. On prosody (no
    database to look at) a short pause instead. With a Sender, an error
    bounced to it ends the wait at once."""
    if srv.kind != 'roost':
        time.sleep(0.3)
        return
    deadline = time.monotonic() + timeout
    have = -1
    while time.monotonic() < deadline:
        try:
            have = live_count(srv, user)
        except sqlite3.OperationalError:
            have = -1          # busy, or the table is not there (yet)
        if have >= n:
            return have
        if sender is not None:
            sender.s.pull(time.monotonic() + 0.05)
            errs = [e for e in sender.s.backlog if is_error_msg(e)]
            if errs:
                raise AssertionError(f'{user.jid}: {have} live offline records, expected {n}; '
                                     f'the sender got {tostr(errs[0])}')
        else:
            time.sleep(0.05)
    raise AssertionError(f'{user.jid}: {have} live offline records after {timeout}s, '
                         f'expected {n}')


def keyring_blob(srv, user):
    conn = db_open(srv)
    try:
        row = conn.execute('SELECT blob FROM keyrings WHERE local = ? AND domain = ?',
                           _who(user)).fetchone()
    finally:
        conn.close()
    return None if row is None else bytes(row['blob'])


def deposit(srv, sender, to_user, bodies, type='chat'):
    """Send the bodies one by one to an offline user, each time waiting
    until it is stored, so that record i holds bodies[i]. Returns the
    Sender (still connected)."""
    if not isinstance(sender, Sender):
        sender = Sender(srv, sender, resource='dep')
    base = live_count(srv, to_user) or 0
    for i, body in enumerate(bodies):
        sender.send(to_user.jid, body, type=type)
        wait_stored(srv, to_user, base + i + 1, sender=sender)
    errs = [e for e in sender.s.drain(0.1) if is_error_msg(e)]
    assert not errs, f'deposit bounced: {tostr(errs[0])}'
    return sender


# -- tampering (roostd stopped) ---------------------------------------------

def _rw(srv):
    return db_open(srv, readonly=False)


def _flip(value, bit=0):
    if isinstance(value, int):
        return value ^ (1 << bit)
    b = bytearray(value)
    b[bit // 8 % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def tamper_flip(srv, user, index, column, bit=0):
    """Flip one bit of one column of the index-th row (0 = oldest)."""
    row = offline_rows(srv, user)[index]
    assert row[column] is not None, f'{column} of row {index} is NULL'
    conn = _rw(srv)
    with conn:
        conn.execute(f'UPDATE offline SET {column} = ? WHERE rowid = ?',
                     (_flip(row[column], bit), row['rowid']))
    conn.close()
    return row['seq']


def tamper_delete(srv, user, index):
    row = offline_rows(srv, user)[index]
    conn = _rw(srv)
    with conn:
        conn.execute('DELETE FROM offline WHERE rowid = ?', (row['rowid'],))
    conn.close()
    return row['seq']


def tamper_swap_seq(srv, user, i, j):
    rows = offline_rows(srv, user)
    a, b = rows[i], rows[j]
    conn = _rw(srv)
    with conn:
        conn.execute('UPDATE offline SET seq = ? WHERE rowid = ?', (b['seq'], a['rowid']))
        conn.execute('UPDATE offline SET seq = ? WHERE rowid = ?', (a['seq'], b['rowid']))
    conn.close()
    return a['seq'], b['seq']


def tamper_copy(srv, user, index, seq=None):
    """Insert a copy of the index-th row, at the same seq (a duplicate) or
    at `seq`."""
    row = offline_rows(srv, user)[index]
    local, domain = _who(user)
    values = dict(row)
    values.pop('rowid')
    if seq is not None:
        values['seq'] = seq
    conn = _rw(srv)
    with conn:
        conn.execute(
            f"INSERT INTO offline (local, domain, {', '.join(COLUMNS)}) VALUES "
            f"(?, ?, {', '.join('?' for _ in COLUMNS)})",
            (local, domain, *[values[c] for c in COLUMNS]))
    conn.close()
    return values['seq']


def set_keyring_blob(srv, user, blob):
    conn = _rw(srv)
    with conn:
        n = conn.execute('UPDATE keyrings SET blob = ? WHERE local = ? AND domain = ?',
                         (blob, *_who(user))).rowcount
    conn.close()
    assert n == 1


def snapshot_user(srv, user):
    """(keyring blob, offline rows) for a later rollback."""
    return keyring_blob(srv, user), offline_rows(srv, user)


def restore_user(srv, user, snap):
    """Replace the user's keyring row and records with a snapshot."""
    blob, rows = snap
    local, domain = _who(user)
    conn = _rw(srv)
    with conn:
        conn.execute('DELETE FROM offline WHERE local = ? AND domain = ?', (local, domain))
        for r in rows:
            conn.execute(
                f"INSERT INTO offline (local, domain, {', '.join(COLUMNS)}) VALUES "
                f"(?, ?, {', '.join('?' for _ in COLUMNS)})",
                (local, domain, *[r[c] for c in COLUMNS]))
        conn.execute('UPDATE keyrings SET blob = ? WHERE local = ? AND domain = ?',
                     (blob, local, domain))
    conn.close()


def restart(srv):
    """Stop roostd (checking a clean exit) and start it on the same data
    dir (new ports, the old log kept beside)."""
    srv.stop(check=True)
    srv.restart()


def verify(srv, *jids):
    """roostctl verify: (exit code, stdout + stderr)."""
    r = srv.ctl('verify', *jids, timeout=60)
    return r.returncode, r.stdout + r.stderr


# ---------------------------------------------------------------------------
# the data directory

def files_under(root):
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            yield os.path.join(dirpath, name)


def find_in_files(paths, needles):
    """{needle: [paths whose bytes contain it]} for str or bytes needles
    (str is searched as UTF-8)."""
    found = {n: [] for n in needles}
    for path in paths:
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError):
            continue
        for n in needles:
            b = n.encode() if isinstance(n, str) else n
            if b in data:
                found[n].append(path)
    return {n: p for n, p in found.items() if p}
