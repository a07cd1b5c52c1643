"""XEP-0013 flexible offline message retrieval (issue 3): the feature,
the message count, headers (sender in 'name', opaque nodes in dictionary
order), view one or several (viewed messages stay), remove one or
several, fetch, purge, item-not-found and forbidden, and no flood for a
session that used it before initial presence, nor for the account's
other sessions meanwhile."""

import pytest

from helpers import (DOMAIN, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_OFFLINE, NS_XDATA,
                     error_cond, ok, q, tostr)
from offline_helpers import (Sender, body_of, connect_user, deposit, is_msg,
                             is_stored_msg, live_count, marker,
                             offline_item_node, verify, wait_stored)

pytestmark = pytest.mark.roost_only     # Prosody has no XEP-0013


# ---------------------------------------------------------------------------
# protocol helpers (raw OfflineStream)

def info_query(to=None):
    return f"<query xmlns='{NS_DISCO_INFO}' node='{NS_OFFLINE}'/>"


def count(s, to=None):
    """number_of_messages from disco#info on the offline node."""
    resp = s.iq(info_query(), to=to)
    assert resp.get('type') == 'result', tostr(resp)
    query = resp.find(q(NS_DISCO_INFO, 'query'))
    assert query is not None and query.get('node') == NS_OFFLINE, tostr(resp)
    form = query.find(q(NS_XDATA, 'x'))
    assert form is not None and form.get('type') == 'result', f'no XEP-0128 form: {tostr(resp)}'
    fields = {f.get('var'): f for f in form.findall(q(NS_XDATA, 'field'))}
    assert fields['FORM_TYPE'].get('type') == 'hidden'
    assert fields['FORM_TYPE'].find(q(NS_XDATA, 'value')).text == NS_OFFLINE
    value = fields['number_of_messages'].find(q(NS_XDATA, 'value')).text
    return int(value)


def headers(s):
    """[(jid, node, name)] from disco#items on the offline node."""
    resp = s.iq(f"<query xmlns='{NS_DISCO_ITEMS}' node='{NS_OFFLINE}'/>")
    assert resp.get('type') == 'result', tostr(resp)
    query = resp.find(q(NS_DISCO_ITEMS, 'query'))
    assert query is not None, tostr(resp)
    return [(i.get('jid'), i.get('node'), i.get('name'))
            for i in query.findall(q(NS_DISCO_ITEMS, 'item'))]


def offline_iq(s, inner, type, to=None):
    """An <offline/> IQ: (response, messages that arrived before it)."""
    resp, before = s.iq_collect(f"<offline xmlns='{NS_OFFLINE}'>{inner}</offline>",
                                type=type, to=to)
    msgs = [e for e in before if is_msg(e)]
    s.backlog = [e for e in before if not is_msg(e)] + s.backlog
    return resp, msgs


def items(action, nodes):
    return ''.join(f"<item action='{action}' node='{n}'/>" for n in nodes)


def view(s, nodes):
    return offline_iq(s, items('view', nodes), 'get')


def remove(s, nodes):
    return offline_iq(s, items('remove', nodes), 'set')


def fetch(s):
    return offline_iq(s, '<fetch/>', 'get')


def purge(s):
    return offline_iq(s, '<purge/>', 'set')


def err(resp, condition):
    assert error_cond(resp) == condition, tostr(resp)


def stored_for(server, users, n, prefix='f'):
    """n messages from users[0] (resource 'flex') to users[1]: returns
    (bodies, sender)."""
    ua, ub = users
    bodies = [f'{prefix}{i:02d}-{marker()}' for i in range(n)]
    snd = Sender(server, ua, resource='flex')
    deposit(server, snd, ub, bodies)
    return bodies, snd


def flexible_session(server, user, resource='flex'):
    """Logged in, no initial presence."""
    return connect_user(server, user, resource=resource, presence=False)


# ---------------------------------------------------------------------------

def test_feature_and_node_identity(server, user):
    s = flexible_session(server, user)
    resp, _ = s.iq_collect(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    feats = {f.get('var') for f in resp.find(q(NS_DISCO_INFO, 'query'))}
    assert NS_OFFLINE in feats
    resp, _ = s.iq_collect(info_query())
    ok(resp)
    query = resp.find(q(NS_DISCO_INFO, 'query'))
    idents = {(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))}
    assert ('automation', 'message-list') in idents, tostr(resp)
    assert NS_OFFLINE in {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}
    s.end()


def test_count(server, users):
    ua, ub = users
    s = flexible_session(server, ub)
    assert count(s) == 0
    s.end()
    bodies, snd = stored_for(server, users, 3)
    s = flexible_session(server, ub)
    assert count(s) == 3
    s.end()
    snd.close()


def test_headers_empty(server, user):
    s = flexible_session(server, user)
    assert headers(s) == []
    s.end()


def test_headers_and_view_several(server, users):
    """12 messages: each header names the user (jid) and the sender's full
    JID (name); nodes are unique, and their dictionary order is the order
    of arrival (12 > 9: '10' < '9' would break a naive counter). Viewing
    all of them in one IQ sends every message, each carrying its node,
    before the result."""
    ua, ub = users
    bodies, snd = stored_for(server, users, 12)
    s = flexible_session(server, ub)
    hs = headers(s)
    assert len(hs) == 12, hs
    assert {h[0] for h in hs} == {ub.jid}, hs
    assert {h[2] for h in hs} == {snd.jid}, hs
    nodes = [h[1] for h in hs]
    assert all(nodes) and len(set(nodes)) == 12, nodes
    resp, msgs = view(s, nodes)
    ok(resp)
    assert len(msgs) == 12, [tostr(m) for m in msgs]
    by_node = {offline_item_node(m): body_of(m) for m in msgs}
    assert set(by_node) == set(nodes), 'viewed messages must carry their node'
    assert [by_node[n] for n in sorted(nodes)] == bodies, \
        'dictionary order of the nodes is not the order of arrival'
    for m in msgs:
        assert m.get('from') == snd.jid, tostr(m)
    # viewing removes nothing
    assert count(s) == 12
    s.end()
    snd.close()


def test_view_one_keeps_it(server, users):
    """A viewed message stays until removed (XEP-0013 §2.5): it is counted,
    can be viewed again, and still arrives by flood at a later ordinary
    login."""
    ua, ub = users
    bodies, snd = stored_for(server, users, 3)
    s = flexible_session(server, ub)
    nodes = [h[1] for h in headers(s)]
    for _ in range(2):
        resp, msgs = view(s, [nodes[1]])
        ok(resp)
        assert [body_of(m) for m in msgs] == [bodies[1]]
        assert offline_item_node(msgs[0]) == nodes[1]
    assert count(s) == 3
    s.end()
    f = connect_user(server, ub, resource='later')
    got = f.collect(is_stored_msg, 3)
    assert [body_of(m) for m in got] == bodies
    f.end()
    snd.close()


def test_remove_one_and_several(server, users):
    ua, ub = users
    bodies, snd = stored_for(server, users, 4)
    s = flexible_session(server, ub)
    nodes = [h[1] for h in headers(s)]
    resp, msgs = remove(s, [nodes[0]])
    ok(resp)
    assert not msgs
    assert count(s) == 3
    assert [h[1] for h in headers(s)] == nodes[1:]
    resp, _ = remove(s, [nodes[1], nodes[2]])
    ok(resp)
    assert count(s) == 1
    assert [h[1] for h in headers(s)] == nodes[3:]
    # removed nodes are gone
    resp, msgs = view(s, [nodes[0]])
    err(resp, 'item-not-found')
    assert not msgs
    resp, _ = remove(s, [nodes[2]])
    err(resp, 'item-not-found')
    s.end()
    # wiped records in the middle of the chain verify clean
    code, out = verify(server, ub.jid)
    assert code == 0, out
    f = connect_user(server, ub, resource='later')
    got = f.collect(is_stored_msg, 1)
    assert [body_of(m) for m in got] == bodies[3:]
    assert not [e for e in f.drain(0.7) if is_stored_msg(e)]
    f.end()
    snd.close()


def test_fetch_sends_all_and_keeps_them(server, users):
    ua, ub = users
    bodies, snd = stored_for(server, users, 3)
    s = flexible_session(server, ub)
    nodes = [h[1] for h in headers(s)]
    resp, msgs = fetch(s)
    ok(resp)
    assert [body_of(m) for m in msgs] == bodies, 'fetch: all, oldest first, before the result'
    assert [offline_item_node(m) for m in msgs] == nodes
    assert count(s) == 3, 'fetch must not remove (XEP-0013 §2.5)'
    s.end()
    snd.close()


def test_purge(server, users):
    ua, ub = users
    bodies, snd = stored_for(server, users, 3)
    s = flexible_session(server, ub)
    resp, msgs = purge(s)
    ok(resp)
    assert not msgs
    assert count(s) == 0
    assert headers(s) == []
    s.end()
    assert live_count(server, ub) == 0
    f = connect_user(server, ub, resource='later')
    assert not [e for e in f.drain(1.0) if is_stored_msg(e)], 'purged messages delivered'
    f.end()
    assert verify(server, ub.jid)[0] == 0
    snd.close()


def test_unknown_node_item_not_found(server, users):
    ua, ub = users
    bodies, snd = stored_for(server, users, 1)
    s = flexible_session(server, ub)
    nodes = [h[1] for h in headers(s)]
    bogus = 'bogus-' + marker()
    resp, msgs = view(s, [bogus])
    err(resp, 'item-not-found')
    assert not msgs
    resp, _ = remove(s, [bogus])
    err(resp, 'item-not-found')
    assert count(s) == 1
    resp, msgs = view(s, nodes)          # the real one still works
    ok(resp)
    assert [body_of(m) for m in msgs] == bodies
    s.end()
    snd.close()


def test_other_users_store_forbidden(server, make_user):
    """Every action addressed to another account's store: forbidden, and
    that store is untouched."""
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    bodies, snd = stored_for(server, (ua, ub), 2)
    owner = flexible_session(server, ub, 'owner')
    nodes = [h[1] for h in headers(owner)]
    owner.end()
    x = flexible_session(server, uc, 'intruder')
    resp, _ = x.iq_collect(info_query(), to=ub.jid)
    err(resp, 'forbidden')
    resp, _ = x.iq_collect(f"<query xmlns='{NS_DISCO_ITEMS}' node='{NS_OFFLINE}'/>", to=ub.jid)
    err(resp, 'forbidden')
    for inner, type in ((items('view', nodes), 'get'), ('<fetch/>', 'get'),
                        (items('remove', nodes[:1]), 'set'), ('<purge/>', 'set')):
        resp, msgs = offline_iq(x, inner, type, to=ub.jid)
        err(resp, 'forbidden')
        assert not msgs, f'{inner}: another user\'s message leaked: {tostr(msgs[0])}'
    leaked = [e for e in x.drain(0.5) if is_msg(e) and body_of(e) in bodies]
    assert not leaked
    x.end()
    owner = flexible_session(server, ub, 'owner2')
    assert count(owner) == 2
    owner.end()
    snd.close()


@pytest.mark.parametrize('first', ['count', 'headers', 'fetch'])
def test_no_flood_after_flexible_retrieval(server, users, first):
    """After disco#info, disco#items or fetch before initial presence: no
    flood at presence, for this session nor for another session of the
    account that comes meanwhile; in-session messages still arrive; the
    store keeps everything, and a later ordinary login gets the flood."""
    ua, ub = users
    bodies, snd = stored_for(server, users, 3)
    s1 = flexible_session(server, ub, 'pop')
    if first == 'count':
        assert count(s1) == 3
    elif first == 'headers':
        assert len(headers(s1)) == 3
    else:
        resp, msgs = fetch(s1)
        ok(resp)
        assert len(msgs) == 3
    s1.presence()
    flood = [e for e in s1.drain(1.0) if is_stored_msg(e)]
    assert not flood, f'flood after XEP-0013 use: {tostr(flood[0])}'
    live = 'live-' + marker()
    snd.send(ub.jid, live)
    m = s1.wait(lambda e: is_stored_msg(e) and body_of(e) == live,
                         what='in-session message')
    assert m.find('{urn:xmpp:delay}delay') is None
    s2 = connect_user(server, ub, resource='second')
    flood = [e for e in s2.drain(1.0) if is_stored_msg(e)]
    assert not flood, f'flood to another session meanwhile: {tostr(flood[0])}'
    assert count(s1) == 3
    s2.end()
    s1.end()
    s3 = connect_user(server, ub, resource='later')
    got = s3.collect(is_stored_msg, 3)
    assert [body_of(m) for m in got] == bodies
    assert not [e for e in s3.drain(0.5) if is_stored_msg(e)]
    s3.end()
    wait_stored(server, ub, 0)
    snd.close()
