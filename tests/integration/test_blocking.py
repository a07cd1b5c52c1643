"""XEP-0191 blocking command: the list (get, block, unblock, unblock all),
pushes to every resource that asked for the list, the errors, and the
enforcement: what a blocked JID sends is not delivered, not stored offline
and not archived; what the user sends to it is refused with
<blocked xmlns='urn:xmpp:blocking:errors'/>; presence stops both ways and
comes back on unblock; the list survives a restart and has a limit.

Raw streams throughout, so that every element the server sends is seen."""

import sqlite3

import pytest

from helpers import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, WAIT, error_of, is_message,
                     is_presence, q, tostr)
from mam_helpers import archived_bodies
from streams import Session, befriend

NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'


def blocklist(s):
    r = s.iq(f"<blocklist xmlns='{NS_BLOCKING}'/>")
    assert r.get('type') == 'result', tostr(r)
    bl = r.find(q(NS_BLOCKING, 'blocklist'))
    assert bl is not None, tostr(r)
    return sorted(i.get('jid') for i in bl.findall(q(NS_BLOCKING, 'item')))


def items_xml(jids):
    return ''.join(f"<item jid='{j}'/>" for j in jids)


def block(s, *jids):
    return s.iq(f"<block xmlns='{NS_BLOCKING}'>{items_xml(jids)}</block>", type='set')


def unblock(s, *jids):
    return s.iq(f"<unblock xmlns='{NS_BLOCKING}'>{items_xml(jids)}</unblock>", type='set')


def ok(r):
    assert r.get('type') == 'result', tostr(r)
    assert len(r) == 0, f'a result with a payload: {tostr(r)}'
    return r


def is_push(name):
    def pred(e):
        return (e.tag == q(NS_CLIENT, 'iq') and e.get('type') == 'set'
                and e.find(q(NS_BLOCKING, name)) is not None)
    return pred


def push_items(e, name):
    return sorted(i.get('jid') for i in e.find(q(NS_BLOCKING, name))
                  .findall(q(NS_BLOCKING, 'item')))


def is_error_from(frm, kind='message'):
    def pred(e):
        return (e.tag == q(NS_CLIENT, kind) and e.get('type') == 'error'
                and e.get('from', '').split('/')[0] == frm.split('/')[0])
    return pred


def offline_rows(srv, jid):
    local, domain = jid.split('@')
    conn = sqlite3.connect(f'file:{srv.data_dir / "roost.db"}?mode=ro', uri=True,
                           timeout=WAIT)
    try:
        return conn.execute('SELECT COUNT(*) FROM offline WHERE local = ? AND domain = ?'
                            ' AND ct IS NOT NULL', (local, domain)).fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def pair(server, make_user):
    """Two available, mutually subscribed users."""
    ua, ub = make_user('a'), make_user('b')
    a, b = Session(server, ua, 'ra'), Session(server, ub, 'rb')
    befriend(a, b)
    yield a, b
    a.close()
    b.close()


pytestmark = pytest.mark.roost_only


# ---------------------------------------------------------------------------
# the list

def test_feature_on_server_and_account(server, user):
    s = Session(server, user, presence=False)
    for target in (DOMAIN, user.jid):
        r = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=target)
        features = {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
        assert NS_BLOCKING in features, (target, features)


def test_block_unblock_and_unblock_all(server, user):
    s = Session(server, user, presence=False)
    assert blocklist(s) == []
    # Items come back prepared (nodeprep lowercases the localpart).
    ok(block(s, 'Romeo@Montague.Lit', 'iago@shakespeare.lit'))
    assert blocklist(s) == ['iago@shakespeare.lit', 'romeo@montague.lit']
    # Blocking again is no error and changes nothing.
    ok(block(s, 'romeo@montague.lit', 'shakespeare.lit', 'x@y.lit/res'))
    assert blocklist(s) == ['iago@shakespeare.lit', 'romeo@montague.lit',
                            'shakespeare.lit', 'x@y.lit/res']
    ok(unblock(s, 'ROMEO@montague.lit', 'not@blocked.lit'))
    assert blocklist(s) == ['iago@shakespeare.lit', 'shakespeare.lit', 'x@y.lit/res']
    ok(unblock(s))
    assert blocklist(s) == []
    # Unblocking everything again is fine too.
    ok(unblock(s))


def test_errors(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    s = Session(server, ua, presence=False)
    r = s.iq(f"<block xmlns='{NS_BLOCKING}'/>", type='set')
    assert error_of(r)[:2] == ('modify', 'bad-request'), tostr(r)
    for bad in ('@nolocal.lit', 'a@b@c', 'user@', 'has space@x.lit', ''):
        r = block(s, 'ok@fine.lit', bad)
        assert error_of(r)[:2] == ('modify', 'jid-malformed'), (bad, tostr(r))
    r = s.iq(f"<block xmlns='{NS_BLOCKING}'><item/></block>", type='set')
    assert error_of(r)[:2] == ('modify', 'jid-malformed'), tostr(r)
    r = unblock(s, 'a@b@c')
    assert error_of(r)[:2] == ('modify', 'jid-malformed'), tostr(r)
    # A failed request changes nothing.
    assert blocklist(s) == []
    # Get-only and set-only.
    r = s.iq(f"<blocklist xmlns='{NS_BLOCKING}'/>", type='set')
    assert error_of(r)[:2] == ('modify', 'bad-request'), tostr(r)
    r = s.iq(f"<block xmlns='{NS_BLOCKING}'>{items_xml(['x@y.lit'])}</block>")
    assert error_of(r)[:2] == ('modify', 'bad-request'), tostr(r)
    # Another user's list is not ours to read or change.
    ok(Session(server, ub, presence=False).iq(f"<block xmlns='{NS_BLOCKING}'>"
                                             f"{items_xml(['x@y.lit'])}</block>", type='set'))
    r = s.iq(f"<blocklist xmlns='{NS_BLOCKING}'/>", to=ub.jid)
    assert error_of(r)[:2] == ('cancel', 'not-allowed'), tostr(r)
    r = s.iq(f"<unblock xmlns='{NS_BLOCKING}'/>", type='set', to=ub.jid)
    assert error_of(r)[:2] == ('cancel', 'not-allowed'), tostr(r)
    assert blocklist(Session(server, ub, presence=False)) == ['x@y.lit']


def test_pushes_go_to_every_interested_resource(server, user):
    r1 = Session(server, user, 'r1')
    r2 = Session(server, user, 'r2', presence=False)
    r3 = Session(server, user, 'r3')   # never asks for the list
    blocklist(r1)
    blocklist(r2)
    for s in (r1, r2, r3):
        s.clear()

    ok(block(r1, 'x@y.lit', 'z.lit'))
    for s in (r1, r2):
        p = s.wait(is_push('block'), what='block push')
        assert p.get('to') == s.full and p.get('from') is None, tostr(p)
        assert push_items(p, 'block') == ['x@y.lit', 'z.lit']
    r3.none(is_push('block'), what='push to a resource that never asked')

    ok(unblock(r2, 'z.lit'))
    for s in (r1, r2):
        p = s.wait(is_push('unblock'), what='unblock push')
        assert push_items(p, 'unblock') == ['z.lit']

    ok(unblock(r2))
    for s in (r1, r2):
        p = s.wait(is_push('unblock'), what='unblock-all push')
        assert push_items(p, 'unblock') == [], tostr(p)
    r3.none(is_push('unblock'), what='push to a resource that never asked')
    # A resource that asks later gets the later pushes.
    blocklist(r3)
    ok(block(r1, 'late@y.lit'))
    assert push_items(r3.wait(is_push('block')), 'block') == ['late@y.lit']


# ---------------------------------------------------------------------------
# enforcement

def test_messages_from_blocked_contact(server, pair):
    a, b = pair
    # Before: delivered (and archived: a and b are in each other's roster).
    b.message(a.bare, 'before')
    a.wait(is_message(frm=b.full, body='before'))

    ok(block(a, b.bare))
    b.clear()
    for to in (a.bare, a.full):
        for type in ('chat', 'normal'):
            b.message(to, f'blocked {type}', type=type, id=f'm-{type}')
            err = b.wait(is_error_from(a.bare), what='error for a blocked message')
            assert err.get('id') == f'm-{type}'
            assert error_of(err)[:2] == ('cancel', 'service-unavailable'), tostr(err)
    # Headlines and groupchat are dropped without a word.
    b.message(a.bare, 'headline', type='headline')
    b.message(a.bare, 'groupchat', type='groupchat')
    b.none(is_error_from(a.bare), what='error for a headline or groupchat')
    a.none(is_message(frm=b.bare), wait=0.5, what='message from a blocked contact')
    assert archived_bodies(a, b.bare) == ['before']

    ok(unblock(a, b.bare))
    b.message(a.bare, 'after')
    a.wait(is_message(frm=b.full, body='after'))


def test_iq_from_blocked_contact(server, pair):
    a, b = pair
    ok(block(a, b.bare))
    for to in (a.bare, a.full):
        r = b.iq("<ping xmlns='urn:xmpp:ping'/>", to=to)
        assert error_of(r)[:2] == ('cancel', 'service-unavailable'), tostr(r)
        assert r.get('from') == to
    # Neither the request nor anything else reached a.
    a.none(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('from', '').startswith(b.bare),
           wait=0.5, what='iq from a blocked contact')


def test_messages_to_offline_user_not_stored(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    a = Session(server, ua)
    ok(block(a, ub.jid))
    a.end()
    b = Session(server, ub)
    b.message(ua.jid, 'while offline', id='off1')
    err = b.wait(is_error_from(ua.jid))
    assert error_of(err)[:2] == ('cancel', 'service-unavailable'), tostr(err)
    assert offline_rows(server, ua.jid) == 0
    a = Session(server, ua)
    a.none(is_message(frm=ub.jid), what='stored message from a blocked JID')
    # The control: once unblocked, a message to the offline user is kept.
    ok(unblock(a, ub.jid))
    a.end()
    b.message(ua.jid, 'stored now', id='off2')
    b.none(is_error_from(ua.jid), wait=0.5)
    a = Session(server, ua)
    a.wait(is_message(frm=ub.jid, body='stored now'))


def test_sending_to_blocked_jid(server, pair):
    a, b = pair
    ok(block(a, b.bare))
    a.clear()
    a.message(b.full, 'hello?', id='out1')
    err = a.wait(is_error_from(b.bare), what='blocked error')
    assert err.get('id') == 'out1' and err.get('to') == a.full, tostr(err)
    etype, cond, others = error_of(err)
    assert (etype, cond) == ('cancel', 'not-acceptable'), tostr(err)
    assert others == [q(NS_BLOCKING_ERRORS, 'blocked')], tostr(err)
    r = a.iq("<ping xmlns='urn:xmpp:ping'/>", to=b.bare)
    etype, cond, others = error_of(r)
    assert (etype, cond, others) == ('cancel', 'not-acceptable',
                                     [q(NS_BLOCKING_ERRORS, 'blocked')]), tostr(r)
    b.none(lambda e: e.tag in (q(NS_CLIENT, 'message'), q(NS_CLIENT, 'iq'))
           and e.get('from', '').startswith(a.bare), what='stanza from the blocking user')


def test_presence_stops_both_ways_and_unblock_restores(server, pair):
    a, b = pair
    ok(block(a, b.bare))
    # Each side sees the other go offline.
    b.wait(is_presence(frm=a.full, type='unavailable'), what="a's unavailable")
    a.wait(is_presence(frm=b.full, type='unavailable'), what="b's unavailable")
    # Nothing crosses any more.
    a.send('<presence><status>a changed</status></presence>')
    b.send('<presence><status>b changed</status></presence>')
    b.none(is_presence(frm=a.bare), what="a's presence")
    a.none(lambda e: e.tag == q(NS_CLIENT, 'presence') and
           e.get('from', '').startswith(b.bare), what="b's presence")
    # Nor does a new session's initial presence or probe.
    b2 = Session(server, b.user, 'rb2')
    b2.none(is_presence(frm=a.bare), what="a's presence to a new resource of b")
    a.none(lambda e: e.tag == q(NS_CLIENT, 'presence') and
           e.get('from', '').startswith(b.bare), what="b's new resource")

    ok(unblock(a, b.bare))
    p = b.wait(is_presence(frm=a.full), what="a's presence after unblock")
    assert p.findtext(q(NS_CLIENT, 'status')) == 'a changed'
    b2.wait(is_presence(frm=a.full), what="a's presence after unblock")
    got = {a.wait(is_presence(frm=b.bare), what="b's presence after unblock").get('from')
           for _ in range(2)}
    assert got == {b.full, b2.full}


def test_block_drops_pending_subscription_request(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    b = Session(server, ub)
    b.send(f"<presence to='{ua.jid}' type='subscribe'/>")
    b.sync()
    a = Session(server, ua)
    a.wait(is_presence(frm=ub.jid, type='subscribe'), what='the waiting request')
    ok(block(a, ub.jid))
    a.end()
    a = Session(server, ua)
    a.none(is_presence(frm=ub.jid, type='subscribe'), what='request from a blocked JID')
    # And a new one does not get through either.
    b.send(f"<presence to='{ua.jid}' type='subscribe'/>")
    a.none(is_presence(frm=ub.jid), what='request from a blocked JID')


def test_full_jid_and_domain_items(server, make_user):
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    a = Session(server, ua, 'ra')
    b1, b2 = Session(server, ub, 'one'), Session(server, ub, 'two')
    c = Session(server, uc)

    # A full JID blocks only that resource.
    ok(block(a, f'{ub.jid}/one'))
    b1.message(a.bare, 'from one')
    assert error_of(b1.wait(is_error_from(a.bare)))[1] == 'service-unavailable'
    b2.message(a.bare, 'from two')
    a.wait(is_message(frm=f'{ub.jid}/two', body='from two'))
    a.message(f'{ub.jid}/one', 'to one')
    assert error_of(a.wait(is_error_from(ub.jid)))[1] == 'not-acceptable'
    a.message(f'{ub.jid}/two', 'to two')
    b2.wait(is_message(frm=a.full, body='to two'))

    # The domain blocks everyone at it, but never the user's own
    # resources, nor the server itself.
    ok(block(a, DOMAIN))
    c.message(a.bare, 'from c')
    assert error_of(c.wait(is_error_from(a.bare)))[1] == 'service-unavailable'
    a2 = Session(server, ua, 'ra2')
    a2.message(a.full, 'to myself')
    a.wait(is_message(frm=a2.full, body='to myself'))
    r = a.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert r.get('type') == 'result', tostr(r)
    ok(unblock(a, DOMAIN))
    c.message(a.bare, 'from c again')
    a.wait(is_message(frm=c.full, body='from c again'))


def test_persists_across_restart(server_factory, make_user):
    srv = server_factory('blockrestart')
    ua, ub = make_user('a', srv=srv), make_user('b', srv=srv)
    a = Session(srv, ua)
    ok(block(a, ub.jid, 'evil.lit', 'x@y.lit/r'))
    ok(unblock(a, 'x@y.lit/r'))
    a.end()
    srv.stop(check=True)
    srv.restart()
    a = Session(srv, ua)
    assert blocklist(a) == sorted(['evil.lit', ub.jid])
    b = Session(srv, ub)
    b.message(ua.jid, 'after restart')
    assert error_of(b.wait(is_error_from(ua.jid)))[1] == 'service-unavailable'
    a.none(is_message(frm=ub.jid))
    ok(unblock(a))
    a.end()
    srv.stop(check=True)
    srv.restart()
    a = Session(srv, ua)
    assert blocklist(a) == []


def test_limit(server_factory, make_user):
    srv = server_factory('blocklimit', sections={'storage': {'blocklist_max_items': 3}})
    u = make_user('a', srv=srv)
    s = Session(srv, u, presence=False)
    ok(block(s, 'a@x.lit', 'b@x.lit'))
    r = block(s, 'c@x.lit', 'd@x.lit')
    assert error_of(r)[:2] == ('modify', 'policy-violation'), tostr(r)
    assert blocklist(s) == ['a@x.lit', 'b@x.lit']
    ok(block(s, 'c@x.lit', 'a@x.lit'))
    # Full: blocking what is there already still works.
    ok(block(s, 'b@x.lit'))
    r = block(s, 'd@x.lit')
    assert error_of(r)[:2] == ('modify', 'policy-violation'), tostr(r)
    ok(unblock(s, 'a@x.lit'))
    ok(block(s, 'd@x.lit'))
    assert blocklist(s) == ['b@x.lit', 'c@x.lit', 'd@x.lit']


def test_refused_message_is_neither_copied_nor_archived(server, pair):
    a, b = pair
    a2 = Session(server, a.user, 'ra2')
    r = a2.iq("<enable xmlns='urn:xmpp:carbons:2'/>", type='set')
    assert r.get('type') == 'result', tostr(r)
    ok(block(a, b.bare))
    a2.clear()
    a.message(b.bare, 'never sent', id='nc1')
    assert error_of(a.wait(is_error_from(b.bare)))[1] == 'not-acceptable'
    a2.none(lambda e: e.tag == q(NS_CLIENT, 'message'), what='carbon of a refused message')
    assert archived_bodies(a, b.bare) == []
