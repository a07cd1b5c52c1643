"""The sealed store at rest (issue 3, DESIGN §5): the seal key file;
nothing readable in the data directory; tampering with roost.db (one bit
of any field, a deleted, swapped, duplicated or inserted row, a truncated
tail, the keyring's head rolled back or its row edited, a rollback while
roostd runs) is never delivered as genuine: the recipient gets a notice
from the server instead and everything untouched is delivered;
`roostctl verify` names user and seq; an untouched store verifies clean;
an admin password reset purges what can no longer be opened, with a
notice."""

import sqlite3
import stat
import time

import pytest

from conftest import User, add_user, new_server
from helpers import DOMAIN, WAIT, tostr
from offline_helpers import (Sender, body_of, connect_user, deposit,
                             files_under, find_in_files, is_notice,
                             is_stored_msg, keyring_blob, live_count, marker,
                             numbers_in, offline_rows, receive_offline,
                             restart, restore_user, set_keyring_blob,
                             snapshot_user, tamper_copy, tamper_delete,
                             tamper_flip, tamper_swap_seq, verify,
                             wait_stored)

pytestmark = pytest.mark.roost_only


@pytest.fixture(scope='module')
def tsrv():
    """One dedicated server for the module; tests stop and start it."""
    srv = new_server('tamper')
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.returncode is None:
        srv.stop(check=True)
    srv.cleanup()


def five_stored(srv, n=5):
    """A sender, a recipient and n stored messages: (recipient, bodies)."""
    ua, ub = add_user(srv, 'ts'), add_user(srv, 'tr')
    bodies = [f'{i}-{marker("tb")}' for i in range(n)]
    deposit(srv, ua, ub, bodies).close()
    return ub, bodies


def login_and_read(srv, user, genuine, quiet=1.5):
    """Log in with presence; wait for `genuine` stored messages, then keep
    gathering messages and notices for `quiet` seconds. Returns (bodies
    delivered, notice bodies)."""
    s = connect_user(srv, user, resource='after')
    got = s.collect(is_stored_msg, genuine, timeout=WAIT) if genuine else []
    got += s.drain(quiet)
    s.end()
    bodies = [body_of(e) for e in got if is_stored_msg(e)]
    notices = [body_of(e) for e in got if is_notice(e)]
    return bodies, notices


def assert_verify_names(srv, user, seqs):
    code, out = verify(srv, user.jid)
    assert code != 0, f'roostctl verify found nothing:\n{out}'
    assert user.jid in out, out
    for seq in seqs:
        assert f'seq {seq}' in out, f'seq {seq} not named:\n{out}'
    return out


def assert_notice(notices, counts):
    """Exactly one notice (per login) that mentions one of `counts`."""
    assert notices, 'no notice from the server about the withheld records'
    assert any(numbers_in(n) & set(counts) for n in notices), \
        f'notice does not say how many ({sorted(counts)}): {notices}'


# ---------------------------------------------------------------------------
# the key file and the data at rest

def test_seal_key_file(tsrv):
    key = tsrv.data_dir / 'seal.key'
    st = key.stat()
    assert st.st_size == 32
    assert stat.S_IMODE(st.st_mode) == 0o400, oct(st.st_mode)
    tsrv.stop(check=True)
    key.chmod(0o444)
    try:
        tsrv.restart()
        refused = False
    except RuntimeError:
        refused = True
    finally:
        key.chmod(0o400)
    if not refused:
        tsrv.stop(check=True)
    tsrv.restart()
    assert refused, 'roostd started with a seal key file readable by others'


def rows_naming(srv, jid):
    """Rows of the database, other than the account's own per-user data,
    with `jid` in any column (read through SQLite, WAL included)."""
    db = sqlite3.connect(f'file:{srv.data_dir}/roost.db?mode=ro', uri=True)
    try:
        hits = []
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            cols = [r[1] for r in db.execute(f'PRAGMA table_info({t})')]
            for row in db.execute(f'SELECT * FROM {t}'):
                values = dict(zip(cols, row))
                if t == 'user_data' and values['owner'] == jid:
                    continue
                for c, v in values.items():
                    raw = v.encode() if isinstance(v, str) else v
                    if isinstance(raw, bytes) and jid.encode() in raw:
                        hits.append(f'{t}.{c}')
        return hits
    finally:
        db.close()


def test_no_plaintext_in_data_dir(server_factory):
    """Bodies, and the sender's JID (a random localpart and resource, not in
    the recipient's roster), are nowhere in the data directory's bytes
    (database, WAL, SHM, anything else), nor the bodies in the server log:
    while stored, after a clean stop, and after delivery."""
    srv = server_factory('seal')
    sender = User(f'{marker("snd")}@{DOMAIN}', 'pw-' + marker())
    srv.adduser(sender.jid, sender.password)
    rcpt = add_user(srv, 'rc')
    body_mark = marker('body')
    resource = marker('res')
    snd = Sender(srv, sender, resource=resource)
    bodies = [f'{body_mark} number {i}' for i in range(5)]
    for i, b in enumerate(bodies):
        snd.send(rcpt.jid, b, extra=f'<subject>{body_mark}-subject</subject>' if i == 0 else '')
    snd.send(rcpt.jid, None, extra=f"<store xmlns='urn:xmpp:hints'/>"
             f"<x xmlns='urn:example:secret'>{body_mark}-payload</x>")
    wait_stored(srv, rcpt, 6, sender=snd)
    snd.close()
    # The sender's bare JID names the sender's own rows (mod_last keeps
    # its logout time under it): it must appear nowhere else, which the
    # database scan below checks row by row. Everything else is searched
    # for in the raw bytes of every file.
    needles = [body_mark, resource, f'{sender.jid}/{resource}']

    def check(when):
        files = list(files_under(srv.data_dir))
        assert any(f.endswith('roost.db') for f in files)
        hits = find_in_files(files, needles)
        assert not hits, f'{when}: plaintext in the data dir: {hits}'
        hits = rows_naming(srv, sender.jid)
        assert not hits, f'{when}: the sender is named in: {hits}'
        logs = [str(p) for p in srv.dir.glob('server.log*')]
        hits = find_in_files(logs, [body_mark])
        assert not hits, f'{when}: message body in the server log: {hits}'

    check('stored, roostd running')
    restart(srv)                       # a clean stop checkpoints the WAL
    check('stored, after a restart')
    got, notices, s = receive_offline(srv, rcpt, 6)
    assert [body_of(m) for m in got[:5]] == bodies, 'the markers were really stored'
    assert got[0].get('from') == f'{sender.jid}/{resource}'
    assert not notices
    s.end()
    check('delivered, roostd running')
    srv.stop(check=True)
    check('delivered, roostd stopped')


# ---------------------------------------------------------------------------
# clean stores

def test_untouched_store_verifies_clean(tsrv):
    """Stored, partly removed (XEP-0013: a wiped record in the middle) and
    across a restart: verify exits 0, and every message is delivered
    without a notice."""
    user, bodies = five_stored(tsrv)
    code, out = verify(tsrv, user.jid)
    assert code == 0, out
    s = connect_user(tsrv, user, resource='flex', presence=False)
    resp, _ = s.iq_collect("<query xmlns='http://jabber.org/protocol/disco#items' "
                           "node='http://jabber.org/protocol/offline'/>")
    nodes = [i.get('node') for i in resp.iter('{http://jabber.org/protocol/disco#items}item')]
    assert len(nodes) == 5, tostr(resp)
    resp, _ = s.iq_collect("<offline xmlns='http://jabber.org/protocol/offline'>"
                           f"<item action='remove' node='{nodes[2]}'/></offline>", type='set')
    assert resp.get('type') == 'result', tostr(resp)
    s.end()
    code, out = verify(tsrv, user.jid)
    assert code == 0, out
    restart(tsrv)
    code, out = verify(tsrv, user.jid)
    assert code == 0, out
    got, notices = login_and_read(tsrv, user, 4)
    assert got == bodies[:2] + bodies[3:]
    assert not notices, notices
    code, out = verify(tsrv, user.jid)
    assert code == 0, f'after delivery (wipe and compaction):\n{out}'


# ---------------------------------------------------------------------------
# tampering while roostd is stopped

@pytest.mark.parametrize('column', ['ct', 'stamp', 'nonce', 'epk', 'key_id', 'chain'])
def test_one_bit_of_a_record(tsrv, column):
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    seq = tamper_flip(tsrv, user, 2, column, bit=13 if column not in ('stamp', 'key_id') else 0)
    assert_verify_names(tsrv, user, [seq])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 4)
    assert bodies[2] not in got, f'tampered {column} delivered as genuine'
    assert got == bodies[:2] + bodies[3:], got
    assert_notice(notices, {1})


def test_deleted_middle_row(tsrv):
    """The deleted record is reported; its successor cannot be verified
    (the only copy of the chain it was sealed over is gone) and may be
    withheld too; the rest is delivered."""
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    seq = tamper_delete(tsrv, user, 2)
    assert_verify_names(tsrv, user, [seq])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 3)
    assert bodies[2] not in got
    assert [b for b in got if b != bodies[3]] == [bodies[0], bodies[1], bodies[4]], got
    assert len(got) == len(set(got))
    assert_notice(notices, {1, 2})


def test_swapped_rows(tsrv):
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    s1, s3 = tamper_swap_seq(tsrv, user, 1, 3)
    assert_verify_names(tsrv, user, [s1, s3])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 3)
    assert got == [bodies[0], bodies[2], bodies[4]], got
    assert_notice(notices, {2})


def test_duplicated_row(tsrv):
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    seq = tamper_copy(tsrv, user, 2)
    assert_verify_names(tsrv, user, [seq])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 4)
    assert got.count(bodies[2]) <= 1, 'a duplicated record delivered twice'
    assert [b for b in got if b != bodies[2]] == [bodies[i] for i in (0, 1, 3, 4)], got
    assert_notice(notices, {1, 2})


def test_inserted_copy_with_new_seq(tsrv):
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    new_seq = max(r['seq'] for r in offline_rows(tsrv, user)) + 1
    tamper_copy(tsrv, user, 1, seq=new_seq)
    assert_verify_names(tsrv, user, [new_seq])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 5)
    assert got == bodies, got
    assert_notice(notices, {1})


def test_truncated_tail(tsrv):
    user, bodies = five_stored(tsrv)
    tsrv.stop(check=True)
    seq = tamper_delete(tsrv, user, 4)
    assert_verify_names(tsrv, user, [seq])
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 4)
    assert got == bodies[:4], got
    assert_notice(notices, {1})


def test_keyring_head_rolled_back(tsrv):
    """The keyring row put back to its state before the last deposit (a
    genuine, validly MACed older row): the last record lies beyond the
    head and is withheld."""
    ua, ub = add_user(tsrv, 'ka'), add_user(tsrv, 'kb')
    bodies = [f'{i}-{marker("kb")}' for i in range(5)]
    snd = deposit(tsrv, ua, ub, bodies[:4])
    old = keyring_blob(tsrv, ub)
    deposit(tsrv, snd, ub, bodies[4:])
    snd.close()
    assert keyring_blob(tsrv, ub) != old, 'the keyring row did not change with a deposit'
    tsrv.stop(check=True)
    set_keyring_blob(tsrv, ub, old)
    last = offline_rows(tsrv, ub)[-1]['seq']
    assert_verify_names(tsrv, ub, [last])
    tsrv.restart()
    got, notices = login_and_read(tsrv, ub, 4)
    assert bodies[4] not in got
    assert got == bodies[:4], got
    assert_notice(notices, {1})


def test_keyring_row_edited(tsrv):
    """One bit of the keyring row: its MAC fails, nothing in the store can
    be trusted: no message is delivered as genuine, the user is told."""
    user, bodies = five_stored(tsrv, 3)
    tsrv.stop(check=True)
    blob = bytearray(keyring_blob(tsrv, user))
    blob[-1] ^= 0x01
    set_keyring_blob(tsrv, user, bytes(blob))
    code, out = verify(tsrv, user.jid)
    assert code != 0 and user.jid in out, out
    tsrv.restart()
    got, notices = login_and_read(tsrv, user, 0)
    assert not got, f'delivered from a store whose keyring row fails: {got}'
    assert notices, 'no notice'


def test_rollback_while_running(tsrv):
    """The user's rows replaced, while roostd runs, by a genuine earlier
    copy (3 of 5 records): the server's in-memory head catches it; the
    two vanished records are reported, the three present delivered."""
    user, bodies = five_stored(tsrv, 3)
    snap = snapshot_user(tsrv, user)
    sender = add_user(tsrv, 'rs')
    more = [f'{i}-{marker("rb")}' for i in (3, 4)]
    deposit(tsrv, sender, user, more).close()
    try:
        restore_user(tsrv, user, snap)
    except sqlite3.OperationalError as e:
        pytest.skip(f'database locked by roostd: {e}')
    got, notices = login_and_read(tsrv, user, 3)
    assert got == bodies, got
    assert_notice(notices, {2})


def test_verify_all_users(server_factory):
    """verify without arguments audits every store: non-zero, names the
    tampered user only; the clean one alone verifies clean."""
    srv = server_factory('verifyall')
    clean, cbodies = five_stored(srv, 2)
    bad, bbodies = five_stored(srv, 3)
    srv.stop(check=True)
    seq = tamper_flip(srv, bad, 1, 'ct')
    code, out = verify(srv)
    assert code != 0, out
    assert f'{bad.jid}: seq {seq}' in out, out
    assert f'{clean.jid}: seq' not in out, out
    code, out = verify(srv, clean.jid)
    assert code == 0, out


# ---------------------------------------------------------------------------
# admin password reset

def test_passwd_reset_purges_with_notice(tsrv):
    """roostctl passwd (no old password) makes a new keyring: the 3
    messages sealed before cannot be opened; the next login gets a notice
    saying 3, not the messages; a message stored after the reset arrives;
    the old ones are gone for good."""
    ua, ub = add_user(tsrv, 'pa'), add_user(tsrv, 'pb')
    before = [marker('pre') for _ in range(3)]
    snd = deposit(tsrv, ua, ub, before)
    ub.password = 'new-' + marker()
    tsrv.passwd(ub.jid, ub.password)
    after = 'post-' + marker()
    deposit(tsrv, snd, ub, [after])
    snd.close()
    got, notices = login_and_read(tsrv, ub, 1)
    assert not set(before) & set(got), 'messages sealed to the old keyring delivered'
    assert got == [after], got
    assert_notice(notices, {3})
    deadline = time.monotonic() + WAIT
    while live_count(tsrv, ub) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_count(tsrv, ub) == 0, 'unreadable records not purged'
    got, notices = login_and_read(tsrv, ub, 0, quiet=1.0)
    assert not got and not notices, (got, notices)
    code, out = verify(tsrv, ub.jid)
    assert code == 0, out
