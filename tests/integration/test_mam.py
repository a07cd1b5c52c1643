"""XEP-0313 message archive management, XEP-0359 stanza-ids, XEP-0441
preferences, and the archive's sealing (issue 4).

Raw streams throughout: every element the server sends is kept, so a
result that arrives twice or a notice that should not be there is seen.
Users set their preferences to 'always' where a test is not about
preferences (the server default is 'roster')."""

import os
import sqlite3
import time
import uuid

import pytest

from helpers import (DOMAIN, NS_CLIENT, NS_DELAY, NS_DISCO_INFO, NS_FORWARD, NS_MAM,
                     NS_OFFLINE, NS_ROSTER, NS_SID, NS_SM, NS_XDATA, WAIT,
                     error_cond, q, tostr)
from mam_helpers import NS_RSM, archived_bodies, forwarded, mam_query, result_body, set_prefs
from streams import Session

NS_MAM_EXT = 'urn:xmpp:mam:2#extended'

pytestmark = pytest.mark.roost_only


def result_id(e):
    return e.find(q(NS_MAM, 'result')).get('id')


def result_stamp(e):
    d = e.find(f"{q(NS_MAM, 'result')}/{q(NS_FORWARD, 'forwarded')}/{q(NS_DELAY, 'delay')}")
    return d.get('stamp')


def fin(iq):
    assert iq.get('type') == 'result', tostr(iq)
    f = iq.find(q(NS_MAM, 'fin'))
    assert f is not None, tostr(iq)
    return f


def rsm_of(iq):
    f = fin(iq)
    s = f.find(q(NS_RSM, 'set'))
    first = s.find(q(NS_RSM, 'first'))
    return {
        'complete': f.get('complete') == 'true',
        'first': first.text if first is not None else None,
        'index': int(first.get('index')) if first is not None and first.get('index') else None,
        'last': s.findtext(q(NS_RSM, 'last')),
        'count': int(s.findtext(q(NS_RSM, 'count'))),
    }


def stanza_ids(msg):
    return [(s.get('by'), s.get('id')) for s in msg.findall(q(NS_SID, 'stanza-id'))]


def is_chat_from(frm, body=None):
    def pred(e):
        if e.tag != q(NS_CLIENT, 'message') or e.get('type') == 'error':
            return False
        if not (e.get('from') or '').startswith(frm):
            return False
        return body is None or e.findtext(q(NS_CLIENT, 'body')) == body
    return pred


def is_notice(e):
    return (e.tag == q(NS_CLIENT, 'message') and e.get('from') == DOMAIN
            and e.findtext(q(NS_CLIENT, 'body')) is not None)


def marker(prefix='mam'):
    return f'{prefix}{uuid.uuid4().hex[:16]}'


def send_and_receive(sender, receiver, bodies):
    """Sender sends each body to the receiver's bare JID; returns the
    messages as the receiver got them (in order)."""
    for b in bodies:
        sender.message(receiver.bare, b)
    got = []
    for b in bodies:
        got.append(receiver.wait(is_chat_from(sender.bare, b), what=f'message {b}'))
    return got


@pytest.fixture
def pair(server, make_user):
    ua, ub = make_user('ma'), make_user('mb')
    a, b = Session(server, ua, 'r1'), Session(server, ub, 'r1')
    set_prefs(a, 'always')
    set_prefs(b, 'always')
    yield a, b
    a.close()
    b.close()


# ---------------------------------------------------------------------------

def test_disco_features(server, user):
    s = Session(server, user)
    r = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=user.jid)
    feats = {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
    assert {NS_MAM, NS_MAM_EXT, NS_SID} <= feats
    r = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_SID in {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
    s.close()


def test_form_fields(server, user):
    s = Session(server, user)
    r = s.iq(f"<query xmlns='{NS_MAM}'/>", type='get')
    assert r.get('type') == 'result', tostr(r)
    x = r.find(f"{q(NS_MAM, 'query')}/{q(NS_XDATA, 'x')}")
    fields = {f.get('var'): f.get('type') for f in x.findall(q(NS_XDATA, 'field'))}
    assert fields['FORM_TYPE'] == 'hidden'
    assert fields['with'] == 'jid-single'
    assert fields['start'] == fields['end'] == 'text-single'
    assert fields['before-id'] == fields['after-id'] == 'text-single'
    assert fields['ids'] == 'list-multi'
    assert not any(f.find(q(NS_XDATA, 'required')) is not None
                   for f in x.findall(q(NS_XDATA, 'field')))
    s.close()


def test_stanza_ids_stable_between_delivery_and_archive(pair):
    a, b = pair
    bodies = [marker() for _ in range(3)]
    got = send_and_receive(a, b, bodies)
    live = []
    for m in got:
        ids = stanza_ids(m)
        assert len(ids) == 1 and ids[0][0] == b.bare, tostr(m)
        live.append(ids[0][1])
    assert len(set(live)) == 3
    results, iq = mam_query(b)
    assert [result_id(r) for r in results] == live
    assert [result_body(r) for r in results] == bodies
    for r in results:
        fwd = forwarded(r)
        assert fwd.get('from') == a.full and fwd.get('to') == b.bare
        assert result_stamp(r).endswith('Z')
        assert r.get('to') == b.full
        assert r.get('from') in (None, b.bare)
    info = rsm_of(iq)
    assert info['complete'] and info['count'] == 3
    assert info['first'] == live[0] and info['last'] == live[2] and info['index'] == 0

    # The sender's archive holds them too, under its own ids, which the
    # recipient never saw.
    results, iq = mam_query(a)
    assert [result_body(r) for r in results] == bodies
    out_ids = [result_id(r) for r in results]
    assert not set(out_ids) & set(live)
    for r in results:
        assert forwarded(r).get('to') == b.bare


def test_forged_stanza_id_is_replaced(pair):
    a, b = pair
    body = marker()
    a.message(b.bare, body, extra=f"<stanza-id xmlns='{NS_SID}' by='{b.bare}' id='forged'/>"
                                   f"<stanza-id xmlns='{NS_SID}' by='{DOMAIN}' id='forged2'/>"
                                   f"<stanza-id xmlns='{NS_SID}' by='elsewhere.example' id='kept'/>")
    m = b.wait(is_chat_from(a.bare, body))
    ids = dict(stanza_ids(m))
    assert ids[b.bare] != 'forged'
    assert DOMAIN not in ids
    assert ids.get('elsewhere.example') == 'kept'
    results, _ = mam_query(b, fields={'ids': ids[b.bare]})
    assert [result_body(r) for r in results] == [body]


def test_paging_250_both_ways(pair):
    a, b = pair
    n = 250
    tag = marker('p')
    bodies = [f'{tag}-{i}' for i in range(n)]
    for i, body in enumerate(bodies):
        a.message(b.bare, body)
        if i % 50 == 49:
            a.sync()
    b.wait(is_chat_from(a.bare, bodies[-1]), timeout=30)
    b.take(is_chat_from(a.bare))

    # Forward: <after/> the last id of each page.
    seen, ids, after, pages = [], [], None, 0
    while True:
        rsm = {'max': 20}
        if after:
            rsm['after'] = after
        results, iq = mam_query(b, rsm=rsm)
        info = rsm_of(iq)
        pages += 1
        assert info['count'] == n
        assert info['index'] == len(seen)
        assert len(results) == (20 if len(seen) + 20 <= n else n - len(seen))
        assert info['first'] == result_id(results[0])
        assert info['last'] == result_id(results[-1])
        seen += [result_body(r) for r in results]
        ids += [result_id(r) for r in results]
        if info['complete']:
            break
        after = info['last']
        assert pages < 20
    assert seen == bodies
    assert pages == 13
    assert len(set(ids)) == n

    # Backward: the last page first (<before/> empty), then <before/> the
    # first id of each page; pages stay in chronological order inside.
    back, before, pages = [], '', 0
    while True:
        results, iq = mam_query(b, rsm={'max': 20, 'before': before})
        info = rsm_of(iq)
        pages += 1
        assert info['count'] == n
        page = [result_body(r) for r in results]
        assert page == bodies[n - len(back) - len(page):n - len(back)]
        back = page + back
        if info['complete']:
            break
        before = info['first']
        assert pages < 20
    assert back == bodies
    assert pages == 13

    # flip-page: same page, sent newest first.
    results, iq = mam_query(b, rsm={'max': 5, 'after': ids[9]}, extra=f"<flip-page/>")
    assert [result_body(r) for r in results] == bodies[10:15][::-1]


def test_filters(server, make_user):
    ua, ub, uc = make_user('fa'), make_user('fb'), make_user('fc')
    a, b, c = Session(server, ua), Session(server, ub), Session(server, uc)
    for s in (a, b, c):
        set_prefs(s, 'always')
    tag = marker('f')
    for i in range(6):
        sender = a if i % 2 == 0 else c
        sender.message(b.bare, f'{tag}-{i}')
        b.wait(is_chat_from(sender.bare, f'{tag}-{i}'))
        time.sleep(0.02)
    # b answers a: an outgoing message matches 'with' a too.
    b.message(a.bare, f'{tag}-reply')
    a.wait(is_chat_from(b.bare, f'{tag}-reply'))
    b.sync()

    every, iq = mam_query(b)
    assert [result_body(r) for r in every] == [f'{tag}-{i}' for i in range(6)] + [f'{tag}-reply']
    ids = [result_id(r) for r in every]
    stamps = [result_stamp(r) for r in every]

    results, iq = mam_query(b, fields={'with': a.bare})
    assert [result_body(r) for r in results] == [f'{tag}-0', f'{tag}-2', f'{tag}-4', f'{tag}-reply']
    assert rsm_of(iq)['count'] == 4
    # A full JID matches only that resource.
    results, _ = mam_query(b, fields={'with': c.full})
    assert [result_body(r) for r in results] == [f'{tag}-1', f'{tag}-3', f'{tag}-5']
    results, _ = mam_query(b, fields={'with': c.bare + '/other'})
    assert results == []

    # start/end are inclusive.
    results, _ = mam_query(b, fields={'start': stamps[2], 'end': stamps[4]})
    assert [result_id(r) for r in results] == ids[2:5]
    results, _ = mam_query(b, fields={'start': stamps[5]})
    assert [result_id(r) for r in results] == ids[5:]
    results, _ = mam_query(b, fields={'end': '2000-01-01T00:00:00Z'})
    assert results == []
    results, _ = mam_query(b, fields={'start': '2000-01-01T01:00:00+01:00', 'with': c.bare})
    assert len(results) == 3

    # before-id / after-id (exclusive), ids.
    results, _ = mam_query(b, fields={'after-id': ids[1], 'before-id': ids[5]})
    assert [result_id(r) for r in results] == ids[2:5]
    results, _ = mam_query(b, fields={'ids': [ids[3], ids[0]]})
    assert [result_id(r) for r in results] == [ids[0], ids[3]]

    # Unknown ids: item-not-found; bad input: the right errors.
    for form, rsm in (({'after-id': 'nope'}, None), ({'ids': 'nope'}, None),
                      (None, {'after': 'nope'}), (None, {'before': 'nope'})):
        _, iq = mam_query(b, fields=form, rsm=rsm)
        assert error_cond(iq) == 'item-not-found'
    _, iq = mam_query(b, fields={'{urn:example}search': 'x'})
    assert error_cond(iq) == 'feature-not-implemented'
    _, iq = mam_query(b, fields={'start': 'yesterday'})
    assert error_cond(iq) == 'bad-request'
    # An empty page: complete, no first/last.
    results, iq = mam_query(b, rsm={'max': 10, 'after': ids[-1]})
    info = rsm_of(iq)
    assert results == [] and info['complete'] and info['first'] is None and info['count'] == 7
    for s in (a, b, c):
        s.close()


def test_metadata(pair):
    a, b = pair
    r = b.iq(f"<metadata xmlns='{NS_MAM}'/>")
    md = r.find(q(NS_MAM, 'metadata'))
    assert md is not None and len(md) == 0, tostr(r)
    send_and_receive(a, b, [marker(), marker()])
    results, _ = mam_query(b)
    r = b.iq(f"<metadata xmlns='{NS_MAM}'/>")
    md = r.find(q(NS_MAM, 'metadata'))
    assert md.find(q(NS_MAM, 'start')).get('id') == result_id(results[0])
    assert md.find(q(NS_MAM, 'end')).get('id') == result_id(results[-1])
    assert md.find(q(NS_MAM, 'end')).get('timestamp') == result_stamp(results[-1])


def test_other_users_archive_is_forbidden(pair):
    a, b = pair
    r = a.iq(f"<query xmlns='{NS_MAM}'/>", type='set', to=b.bare)
    assert error_cond(r) == 'forbidden'
    r = a.iq(f"<prefs xmlns='{NS_MAM}'/>", to=b.bare)
    assert error_cond(r) == 'forbidden'


def test_preferences(server, make_user):
    ua, ub = make_user('pa'), make_user('pb')
    a, b = Session(server, ua), Session(server, ub)
    set_prefs(a, 'always')
    # The server default: roster.
    r = b.iq(f"<prefs xmlns='{NS_MAM}'/>")
    p = r.find(q(NS_MAM, 'prefs'))
    assert p.get('default') == 'roster'
    assert p.find(q(NS_MAM, 'always')) is not None and p.find(q(NS_MAM, 'never')) is not None

    m1 = marker()
    send_and_receive(a, b, [m1])
    assert m1 not in archived_bodies(b)          # a is not in b's roster

    r = b.iq(f"<query xmlns='{NS_ROSTER}'><item jid='{a.bare}'/></query>", type='set')
    assert r.get('type') == 'result'
    m2 = marker()
    send_and_receive(a, b, [m2])
    assert m2 in archived_bodies(b)              # now it is

    r = set_prefs(b, 'always', never=[a.bare], always=['someone@' + DOMAIN])
    p = r.find(q(NS_MAM, 'prefs'))
    assert p.get('default') == 'always'
    assert [j.text for j in p.iter(q(NS_MAM, 'jid'))] == ['someone@' + DOMAIN, a.bare]
    r = b.iq(f"<prefs xmlns='{NS_MAM}'/>")
    p = r.find(q(NS_MAM, 'prefs'))
    assert p.get('default') == 'always'
    assert [j.text for j in p.find(q(NS_MAM, 'never'))] == [a.bare]
    m3 = marker()
    send_and_receive(a, b, [m3])
    assert m3 not in archived_bodies(b)          # never wins
    # a's own archive (default always) still has it.
    results, _ = mam_query(a, fields={'with': b.bare})
    assert m3 in [result_body(x) for x in results]

    r = b.iq(f"<prefs xmlns='{NS_MAM}' default='sometimes'/>", type='set')
    assert error_cond(r) == 'bad-request'
    a.close()
    b.close()


def test_messages_not_archived(pair):
    """Types and hints that stay out of the archive, without stanza-ids."""
    a, b = pair
    tag = marker('n')
    a.send(f"<message to='{b.bare}' type='headline'><body>{tag}-h</body></message>")
    a.send(f"<message to='{b.bare}' type='chat'><body>{tag}-ns</body>"
           f"<no-permanent-store xmlns='urn:xmpp:hints'/></message>")
    a.send(f"<message to='{b.bare}' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
    a.message(b.bare, f'{tag}-yes')
    b.wait(is_chat_from(a.bare, f'{tag}-yes'))
    for e in b.take(is_chat_from(a.bare)):
        assert stanza_ids(e) == [], tostr(e)
    results, _ = mam_query(b)
    assert [result_body(r) for r in results] == [f'{tag}-yes']


def test_archive_not_readable_on_disk(server, pair):
    a, b = pair
    body = marker('secret')
    send_and_receive(a, b, [body])
    results, _ = mam_query(b)
    assert result_body(results[-1]) == body
    found = []
    for dirpath, _dirs, files in os.walk(server.data_dir):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, 'rb') as f:
                    if body.encode() in f.read():
                        found.append(path)
            except OSError:
                pass
    assert found == []
    # The clear columns hold what filtering needs, and nothing more.
    conn = sqlite3.connect(f'file:{server.data_dir / "roost.db"}?mode=ro', uri=True, timeout=WAIT)
    rows = conn.execute("SELECT with_jid, stanza_id, dir FROM archive WHERE local = ?",
                        (b.user.localpart,)).fetchall()
    conn.close()
    assert (a.bare, result_id(results[-1]), 0) in rows


def test_offline_messages_land_in_archive(server, make_user):
    """Messages for a user with no session are archived, and a session
    that catches up by MAM before its initial presence gets them there,
    with the ids an offline delivery would carry."""
    ua, ub = make_user('oa'), make_user('ob')
    b = Session(server, ub, presence=False)
    set_prefs(b, 'always')
    b.close()
    a = Session(server, ua)
    set_prefs(a, 'always')
    bodies = [marker('off') for _ in range(3)]
    for body in bodies:
        a.message(ub.jid, body)
    a.sync()
    time.sleep(0.3)

    b = Session(server, ub, presence=False)
    stored_before = live_offline_rows(server, ub)
    results, iq = mam_query(b)
    assert [result_body(r) for r in results] == bodies
    ids = [result_id(r) for r in results]
    b.sync()
    has_offline = NS_OFFLINE in {
        f.get('var') for f in b.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
        .iter(q(NS_DISCO_INFO, 'feature'))}
    if has_offline:
        assert stored_before == 3
        # Caught up by MAM before presence: no flood of the same messages.
        b.send('<presence/>')
        time.sleep(1.0)
        b.sync()
        flood = b.take(is_chat_from(ua.jid))
        assert flood == [], [tostr(e) for e in flood]
        b.close()
        # The records were removed once the page was written out: the
        # next login has nothing waiting.
        deadline = time.monotonic() + WAIT
        while live_offline_rows(server, ub) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live_offline_rows(server, ub) == 0
        b2 = Session(server, ub)
        time.sleep(1.0)
        b2.sync()
        again = b2.take(is_chat_from(ua.jid))
        assert [stanza_ids(e)[0][1] for e in again if stanza_ids(e)] == []
        b2.close()
    else:
        b.close()
    a.close()


def live_offline_rows(srv, user):
    conn = sqlite3.connect(f'file:{srv.data_dir / "roost.db"}?mode=ro', uri=True, timeout=WAIT)
    try:
        (n,) = conn.execute("SELECT count(*) FROM offline WHERE local = ? AND ct IS NOT NULL",
                            (user.localpart,)).fetchone()
    finally:
        conn.close()
    return n


def enable_sm(s):
    s.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    return s.wait(lambda e: e.tag == q(NS_SM, 'enabled'))


def test_rerouted_message_keeps_its_id_and_is_archived_once(server_factory, make_user):
    """A message whose session died unacknowledged goes to another resource
    with the same stanza-id, and the archive holds it once (Duplicates)."""
    srv = server_factory('mam-sm', sections={'c2s': {'resume_timeout': 1}})
    ua, ub = make_user('sa', srv=srv), make_user('sb', srv=srv)
    a = Session(srv, ua, 'r1')
    set_prefs(a, 'always')
    b1 = Session(srv, ub, 'one')
    set_prefs(b1, 'always')
    enable_sm(b1)
    b2 = Session(srv, ub, 'two')
    b2.sync()
    body = marker('rr')
    a.message(b1.full, body)
    m1 = b1.wait(is_chat_from(ua.jid, body))
    sid = stanza_ids(m1)
    # b1 dies without acknowledging; after resume_timeout the message is
    # rerouted to the account's other resource.
    b1.sock.close()
    m2 = b2.wait(is_chat_from(ua.jid, body), timeout=10)
    assert stanza_ids(m2) == sid
    results, _ = mam_query(b2)
    assert [result_body(r) for r in results].count(body) == 1
    assert result_id(results[-1]) == sid[0][1]
    a.close()
    b2.close()


def test_tampered_row_is_withheld_with_a_notice(server_factory, make_user):
    srv = server_factory('mam-tamper')
    ua, ub = make_user('ta', srv=srv), make_user('tb', srv=srv)
    a, b = Session(srv, ua), Session(srv, ub)
    set_prefs(a, 'always')
    set_prefs(b, 'always')
    bodies = [marker('t') for _ in range(5)]
    send_and_receive(a, b, bodies)
    results, _ = mam_query(b)
    assert [result_body(r) for r in results] == bodies
    a.close()
    b.close()

    srv.stop(check=True)
    conn = sqlite3.connect(str(srv.data_dir / 'roost.db'))
    with conn:
        (rowid, ct) = conn.execute(
            "SELECT rowid, ct FROM archive WHERE local = ? ORDER BY seq LIMIT 1 OFFSET 2",
            (ub.localpart,)).fetchone()
        ct = bytearray(ct)
        ct[len(ct) // 2] ^= 0x20
        conn.execute("UPDATE archive SET ct = ? WHERE rowid = ?", (bytes(ct), rowid))
    conn.close()
    srv.restart()

    b = Session(srv, ub)
    results, iq = mam_query(b)
    assert [result_body(r) for r in results] == bodies[:2] + bodies[3:]
    assert rsm_of(iq)['count'] == 4
    b.sync()
    notices = b.take(is_notice)
    assert len(notices) == 1, [tostr(n) for n in notices]
    text = notices[0].findtext(q(NS_CLIENT, 'body'))
    assert '1 message' in text and 'withheld' in text
    # The next page does not repeat the notice for the same count.
    mam_query(b)
    b.sync()
    assert b.take(is_notice) == []
    # The sender's archive is untouched.
    a = Session(srv, ua)
    results, _ = mam_query(a)
    assert [result_body(r) for r in results] == bodies
    # roostctl verify names the finding.
    r = srv.ctl('verify', ub.jid, timeout=60)
    assert r.returncode == 1
    assert f'{ub.jid}: archive seq 3: bad_chain' in r.stdout
    a.close()
    b.close()
    assert 'archive store: seq 3: bad_chain' in srv.log()


# ---------------------------------------------------------------------------
# tampering while roostd runs, after a first query
#
# The first query walks the whole archive; once it found it clean, later
# queries check only the records they return (docs/mam.md, "Integrity").
# These change the database between the two, as an attacker holding the
# file would while roostd runs.

def fill_archive(a, b, n, tag):
    bodies = [f'{tag}-{i}' for i in range(n)]
    for i, body in enumerate(bodies):
        a.message(b.bare, body)
        if i % 10 == 9:
            a.sync()
    b.wait(is_chat_from(a.bare, bodies[-1]), timeout=30)
    b.take(is_chat_from(a.bare))
    return bodies


def archive_db(srv):
    return sqlite3.connect(str(srv.data_dir / 'roost.db'), timeout=WAIT)


def tamper_archive(srv, user, offset, column):
    """Changes `column` of the user's offset-th archive record (by seq);
    returns its seq."""
    conn = archive_db(srv)
    try:
        with conn:
            rowid, seq, val = conn.execute(
                f"SELECT rowid, seq, {column} FROM archive WHERE local = ?"
                " ORDER BY seq LIMIT 1 OFFSET ?", (user.localpart, offset)).fetchone()
            if column == 'ct':
                b = bytearray(val)
                b[len(b) // 2] ^= 0x20
                new = bytes(b)
            elif column == 'stamp':
                new = val + 1
            else:
                new = 'mallory@example.org'
            conn.execute(f"UPDATE archive SET {column} = ? WHERE rowid = ?", (new, rowid))
    finally:
        conn.close()
    return seq


@pytest.mark.parametrize('column', ['ct', 'stamp', 'with_jid'])
def test_record_changed_after_a_first_query_is_withheld(server, make_user, column):
    """The record changed after the first page never comes in the next:
    the page is the other nine plus the one after, the count drops, the
    user gets one notice, the log names the seq; paging goes on."""
    ua, ub = make_user('la'), make_user('lb')
    a, b = Session(server, ua), Session(server, ub)
    set_prefs(a, 'always')
    set_prefs(b, 'always')
    bodies = fill_archive(a, b, 30, marker('lt'))
    results, iq = mam_query(b, rsm={'max': 10})
    info = rsm_of(iq)
    assert [result_body(r) for r in results] == bodies[:10]
    assert info['count'] == 30
    b.sync()
    assert b.take(is_notice) == []

    seq = tamper_archive(server, ub, 14, column)
    results, iq = mam_query(b, rsm={'max': 10, 'after': info['last']})
    info = rsm_of(iq)
    assert [result_body(r) for r in results] == bodies[10:14] + bodies[15:21], \
        f'a record with a changed {column} was returned'
    assert info['count'] == 29 and info['index'] == 10, info
    b.sync()
    notices = b.take(is_notice)
    assert len(notices) == 1, [tostr(n) for n in notices]
    text = notices[0].findtext(q(NS_CLIENT, 'body'))
    assert '1 message' in text and 'withheld' in text, text
    assert f'{ub.jid}: archive store: seq {seq}: ' in server.log()

    results, iq = mam_query(b, rsm={'max': 10, 'after': info['last']})
    assert [result_body(r) for r in results] == bodies[21:]
    assert rsm_of(iq)['complete']
    # The sender's archive is untouched.
    results, _ = mam_query(a, rsm={'max': 50})
    assert [result_body(r) for r in results] == bodies
    a.close()
    b.close()


def test_archive_rolled_back_after_a_first_query(server, make_user):
    """The archive's rows and keyring row put back, while roostd runs, to
    a genuine copy taken after the first query (two messages ago): the
    server's in-memory head sees it and logs a rollback; what is on disk
    is still genuine and delivered."""
    ua, ub = make_user('ra'), make_user('rb')
    a, b = Session(server, ua), Session(server, ub)
    set_prefs(a, 'always')
    set_prefs(b, 'always')
    bodies = fill_archive(a, b, 10, marker('rb'))
    results, iq = mam_query(b, rsm={'max': 5})
    assert [result_body(r) for r in results] == bodies[:5]
    conn = archive_db(server)
    rows = conn.execute("SELECT * FROM archive WHERE local = ?", (ub.localpart,)).fetchall()
    (blob,) = conn.execute("SELECT blob FROM keyrings WHERE local = ?",
                           (ub.localpart,)).fetchone()
    conn.close()
    more = fill_archive(a, b, 2, marker('rb2'))
    results, _ = mam_query(b, rsm={'max': 50})
    assert [result_body(r) for r in results] == bodies + more

    conn = archive_db(server)
    try:
        with conn:
            conn.execute("DELETE FROM archive WHERE local = ?", (ub.localpart,))
            conn.executemany(f"INSERT INTO archive VALUES ({', '.join('?' * len(rows[0]))})",
                             rows)
            conn.execute("UPDATE keyrings SET blob = ? WHERE local = ?", (blob, ub.localpart))
    except sqlite3.OperationalError as e:
        pytest.skip(f'database locked by roostd: {e}')
    finally:
        conn.close()
    results, iq = mam_query(b, rsm={'max': 5, 'after': result_id(results[4])})
    assert [result_body(r) for r in results] == bodies[5:10]
    assert f'{ub.jid}: archive store: seq 10: rollback' in server.log()
    a.close()
    b.close()
