"""XEP-0280 Message Carbons v2: enabling and disabling, <received/> copies
of messages to the bare and full JID, <sent/> copies of what a resource
sends, the eligibility rules of §6.1, the private and no-copy hints, and
the exact shape of a copy. Three resources of one account: two enable
carbons, the third never does and must see nothing extra."""

import uuid

from helpers import (DOMAIN, NS_CARBONS, NS_CHATSTATES, NS_CLIENT, NS_DISCO_INFO,
                     NS_FORWARD, NS_HINTS, NS_RECEIPTS, error_condition, is_message, q)
from test_session import features

NS_MUC_USER = 'http://jabber.org/protocol/muc#user'

QUIET = 0.6  # how long "nothing arrives" is watched


def marker():
    return 'c-' + uuid.uuid4().hex[:10]


def is_carbon(kind=None, body=None):
    """A carbon (any sender: the test checks 'from' itself), optionally of
    kind 'sent'/'received' and with an inner body."""
    def pred(st):
        x = st.xml
        if x.tag != q(NS_CLIENT, 'message'):
            return False
        kinds = (kind,) if kind else ('sent', 'received')
        wraps = [w for w in (x.find(q(NS_CARBONS, k)) for k in kinds) if w is not None]
        if not wraps:
            return False
        if body is None:
            return True
        inner = wraps[0].find(f'{q(NS_FORWARD, "forwarded")}/{q(NS_CLIENT, "message")}')
        b = inner.find(q(NS_CLIENT, 'body')) if inner is not None else None
        return b is not None and b.text == body
    return pred


def anything_with(body):
    """The original or any copy carrying this body."""
    def pred(st):
        return body in str(st)
    return pred


def check_carbon(st, kind, owner, to, inner_from, inner_to, body, type='chat', inner_id=None):
    """The exact structure of §7/§8: <message from=bare to=full type=same>
    <kind xmlns=carbons><forwarded xmlns=forward><message .../></forwarded>
    </kind></message>, nothing else."""
    x = st.xml
    assert x.tag == q(NS_CLIENT, 'message')
    assert x.get('from') == owner, f'carbon from {x.get("from")}, not the bare JID'
    assert x.get('to') == to
    assert (x.get('type') or 'normal') == type
    assert [c.tag for c in x] == [q(NS_CARBONS, kind)], str(st)
    wrap = x[0]
    assert [c.tag for c in wrap] == [q(NS_FORWARD, 'forwarded')], str(st)
    fwd = wrap[0]
    assert [c.tag for c in fwd] == [q(NS_CLIENT, 'message')], str(st)
    inner = fwd[0]
    assert inner.get('from') == inner_from
    assert inner.get('to') == inner_to
    assert (inner.get('type') or 'normal') == type
    if inner_id is not None:
        assert inner.get('id') == inner_id
    assert inner.find(q(NS_CLIENT, 'body')).text == body
    return inner


async def enable(c, what='enable'):
    resp = await c.iq(f"<{what} xmlns='{NS_CARBONS}'/>", type='set')
    assert resp['type'] == 'result', str(resp)
    return resp


async def three(server, ua, prio=(0, 0, 0)):
    """r1, r2 with carbons, r3 without."""
    r1 = await server.client(ua, 'r1').start(priority=prio[0])
    r2 = await server.client(ua, 'r2').start(priority=prio[1])
    r3 = await server.client(ua, 'r3').start(priority=prio[2])
    await enable(r1)
    await enable(r2)
    for c in (r1, r2, r3):
        c.clear()
    return r1, r2, r3


async def stop(*clients):
    for c in clients:
        await c.stop()


async def test_feature_advertised(server, user):
    c = await server.client(user, 'a').start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_CARBONS in features(resp)
    await c.stop()


async def test_enable_disable(server, users):
    ua, ub = users
    c = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    resp = await enable(c)
    # §4: the result comes from the user's bare JID
    assert resp.xml.get('from') == ua.jid
    assert resp.xml.get('to') == f'{ua.jid}/a'
    await enable(c)             # §10.1: enabling twice is fine
    await enable(c, 'disable')
    await enable(c, 'disable')  # so is disabling twice
    # addressed to the own bare JID explicitly: the same
    resp = await c.iq(f"<enable xmlns='{NS_CARBONS}'/>", type='set', to=ua.jid)
    assert resp['type'] == 'result'
    # another user's carbons are not ours to change
    resp = await b.iq(f"<disable xmlns='{NS_CARBONS}'/>", type='set', to=ua.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('cancel', 'not-allowed')
    # set-only
    resp = await c.iq(f"<enable xmlns='{NS_CARBONS}'/>", type='get')
    assert resp['type'] == 'error'
    await stop(c, b)


async def test_received_full_jid(server, users):
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat' id='rf1'><body>{body}</body>"
          f"<thread>t1</thread></message>")
    got = await r1.wait(is_message(body=body), what='original at r1')
    assert got.xml.find(q(NS_CARBONS, 'received')) is None
    copy = await r2.wait(is_carbon('received', body), what='received carbon at r2')
    inner = check_carbon(copy, 'received', ua.jid, f'{ua.jid}/r2', f'{ub.jid}/b',
                         f'{ua.jid}/r1', body, inner_id='rf1')
    assert inner.find(q(NS_CLIENT, 'thread')).text == 't1'
    await r3.expect_none(anything_with(body), wait=QUIET, what='anything at r3 (carbons off)')
    await r1.expect_none(is_carbon(), wait=0.01, what='a copy at the recipient')
    assert not [s for s in r2.received if body in str(s)], 'r2 got two copies'
    await stop(r1, r2, r3, b)


async def test_received_bare_jid(server, users):
    """§7: copies go to the enabled resources that did not get the
    original under RFC 6121 (here: r1 has the highest priority)."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua, prio=(5, 1, 1))
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}' type='chat'><body>{body}</body></message>")
    await r1.wait(is_message(body=body), what='original at the top resource')
    copy = await r2.wait(is_carbon('received', body), what='received carbon')
    check_carbon(copy, 'received', ua.jid, f'{ua.jid}/r2', f'{ub.jid}/b', ua.jid, body)
    await r3.expect_none(anything_with(body), wait=QUIET)
    await r1.expect_none(is_carbon(), wait=0.01)
    await stop(r1, r2, r3, b)


async def test_received_bare_jid_all_got_it(server, users):
    """Equal priorities: every resource gets the original, nobody a copy."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}' type='chat'><body>{body}</body></message>")
    for c in (r1, r2, r3):
        await c.wait(is_message(body=body))
    for c in (r1, r2, r3):
        await c.expect_none(is_carbon(), wait=QUIET / 3)
    await stop(r1, r2, r3, b)


async def test_no_copies_when_nobody_took_it(server, users):
    """Only negative priorities: no resource gets the message (it is
    stored or bounced), and no carbon either: it will come from the store."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua, prio=(-1, -1, -1))
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}' type='chat'><body>{body}</body></message>")
    for c in (r1, r2, r3):
        await c.expect_none(anything_with(body), wait=QUIET / 2)
    await stop(r1, r2, r3, b)


async def test_sent(server, users):
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    body = marker()
    r1.raw(f"<message to='{ub.jid}' type='chat' id='s1'><body>{body}</body></message>")
    await b.wait(is_message(body=body), what='original at the contact')
    copy = await r2.wait(is_carbon('sent', body), what='sent carbon at r2')
    check_carbon(copy, 'sent', ua.jid, f'{ua.jid}/r2', f'{ua.jid}/r1', ub.jid, body,
                 inner_id='s1')
    await r1.expect_none(anything_with(body), wait=QUIET, what='a copy back to the sender')
    await r3.expect_none(anything_with(body), wait=0.01)

    # §8: sent copies go out whether or not the sender has carbons on
    body = marker()
    r3.raw(f"<message to='{ub.jid}/b' type='chat'><body>{body}</body></message>")
    await b.wait(is_message(body=body))
    for c, full in ((r1, 'r1'), (r2, 'r2')):
        copy = await c.wait(is_carbon('sent', body), what=f'sent carbon at {full}')
        check_carbon(copy, 'sent', ua.jid, f'{ua.jid}/{full}', f'{ua.jid}/r3',
                     f'{ub.jid}/b', body)
    await r3.expect_none(anything_with(body), wait=QUIET)
    await stop(r1, r2, r3, b)


async def test_normal_with_body_and_type_preserved(server, users):
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1'><body>{body}</body></message>")
    copy = await r2.wait(is_carbon('received', body))
    # §7: the wrapper keeps the type (none: normal)
    assert copy.xml.get('type') in (None, 'normal')
    check_carbon(copy, 'received', ua.jid, f'{ua.jid}/r2', f'{ub.jid}/b',
                 f'{ua.jid}/r1', body, type='normal')
    await stop(r1, r2, r3, b)


async def test_eligibility(server, users):
    """§6.1: chat states and receipts are copied even without a body;
    normal without a body, headline, groupchat, and MUC PMs received from
    a room occupant are not."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    to = f'{ua.jid}/r1'
    copied = {
        'state': f"<message to='{to}' type='chat' id='{{m}}'><composing xmlns='{NS_CHATSTATES}'/></message>",
        'receipt': f"<message to='{to}' id='{{m}}'><received xmlns='{NS_RECEIPTS}' id='x'/></message>",
    }
    not_copied = {
        'bodyless normal': f"<message to='{to}' id='{{m}}'><x xmlns='urn:example:x'/></message>",
        'headline': f"<message to='{to}' type='headline' id='{{m}}'><body>news</body></message>",
        'groupchat': f"<message to='{to}' type='groupchat' id='{{m}}'><body>gc</body></message>",
        'muc pm': f"<message to='{to}' type='chat' id='{{m}}'><body>pm</body>"
                  f"<x xmlns='{NS_MUC_USER}'/></message>",
    }
    ids = {}
    for name, xml in {**copied, **not_copied}.items():
        ids[name] = marker()
        b.raw(xml.replace('{m}', ids[name]))
    for name in copied:
        await r2.wait(lambda st, i=ids[name]: is_carbon('received')(st) and i in str(st),
                      what=f'carbon of {name}')
    # a marker message last: once its copy is in, nothing else is coming
    body = marker()
    b.raw(f"<message to='{to}' type='chat'><body>{body}</body></message>")
    await r2.wait(is_carbon('received', body))
    for name in not_copied:
        hits = [s for s in r2.received if ids[name] in str(s)]
        assert not hits, f'{name} was carbon-copied: {hits[0]}'
    await r3.expect_none(is_carbon(), wait=0.01)
    await stop(r1, r2, r3, b)


async def test_outgoing_muc_pm_and_invite_copied(server, users):
    """§6.1 (MUC rules): a PM to a room occupant (full JID) and a mediated invitation
    are copied when sent."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    body = marker()
    r1.raw(f"<message to='room@conference.example/nick' type='chat'><body>{body}</body>"
           f"<x xmlns='{NS_MUC_USER}'/></message>")
    await r2.wait(is_carbon('sent', body), what='sent copy of a MUC PM')
    inv = marker()
    r1.raw(f"<message to='room@conference.example' id='{inv}'><x xmlns='{NS_MUC_USER}'>"
           f"<invite to='{ub.jid}'/></x></message>")
    await r2.wait(lambda st: is_carbon('sent')(st) and inv in str(st),
                  what='sent copy of a mediated invitation')
    await stop(r1, r2, r3)


async def test_error_bounce_copied(server, user):
    """An error echoing an eligible message is copied (§6.1): the other
    resources saw the sent copy, they learn it failed."""
    r1, r2, r3 = await three(server, user)
    ghost = f'nobody-{uuid.uuid4().hex[:6]}@{DOMAIN}'
    body = marker()
    r1.raw(f"<message to='{ghost}' type='chat' id='e1'><body>{body}</body></message>")
    await r2.wait(is_carbon('sent', body), what='sent copy')
    await r1.wait(lambda st: st.xml.get('type') == 'error' and st.xml.get('id') == 'e1',
                  what='the bounce')
    copy = await r2.wait(lambda st: is_carbon('received')(st) and st.xml.get('type') == 'error',
                         what='received copy of the bounce')
    inner = copy.xml.find(f'{q(NS_CARBONS, "received")}/{q(NS_FORWARD, "forwarded")}/'
                          f'{q(NS_CLIENT, "message")}')
    assert inner.get('from') == ghost and inner.get('to') == f'{user.jid}/r1'
    assert inner.get('type') == 'error' and inner.get('id') == 'e1'
    await r3.expect_none(is_carbon(), wait=QUIET)
    await stop(r1, r2, r3)


async def test_private_and_no_copy(server, users):
    """§9 and XEP-0334: either hint stops copies in both directions; the
    <private/> element stays in the delivered message (§9 interop note)."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    hints = {'private': f"<private xmlns='{NS_CARBONS}'/>",
             'no-copy': f"<no-copy xmlns='{NS_HINTS}'/>",
             'both': f"<private xmlns='{NS_CARBONS}'/><no-copy xmlns='{NS_HINTS}'/>"}
    bodies = []
    for name, hint in hints.items():
        sent, received = marker(), marker()
        bodies += [sent, received]
        r1.raw(f"<message to='{ub.jid}/b' type='chat'><body>{sent}</body>{hint}</message>")
        got = await b.wait(is_message(body=sent), what=f'{name} message at the contact')
        if 'private' in hint:
            assert got.xml.find(q(NS_CARBONS, 'private')) is not None
        b.raw(f"<message to='{ua.jid}/r1' type='chat'><body>{received}</body>{hint}</message>")
        await r1.wait(is_message(body=received), what=f'{name} message at r1')
    # a plain message last: its copy arriving means the others would have
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat'><body>{body}</body></message>")
    await r2.wait(is_carbon('received', body))
    for m in bodies:
        hits = [s for s in r2.received + r3.received if m in str(s)]
        assert not hits, f'hinted message copied: {hits[0]}'
    await stop(r1, r2, r3, b)


async def test_disable_stops_copies(server, users):
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    await enable(r2, 'disable')
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat'><body>{body}</body></message>")
    await r1.wait(is_message(body=body))
    sent = marker()
    r1.raw(f"<message to='{ub.jid}' type='chat'><body>{sent}</body></message>")
    await b.wait(is_message(body=sent))
    for c in (r2, r3):
        await c.expect_none(is_carbon(), wait=QUIET / 2)
    # and on again
    await enable(r2)
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat'><body>{body}</body></message>")
    await r2.wait(is_carbon('received', body))
    await stop(r1, r2, r3, b)


async def test_carbons_never_copied(server, users):
    """A message that already carries <received/> (here a forged one from
    another user, §11) is not wrapped again."""
    ua, ub = users
    r1, r2, r3 = await three(server, ua)
    b = await server.client(ub, 'b').start()
    forged = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat'><received xmlns='{NS_CARBONS}'>"
          f"<forwarded xmlns='{NS_FORWARD}'><message xmlns='jabber:client' from='x@{DOMAIN}/y' "
          f"to='{ua.jid}/r1' type='chat'><body>{forged}</body></message></forwarded>"
          f"</received></message>")
    await r1.wait(anything_with(forged), what='the forged carbon, as sent')
    body = marker()
    b.raw(f"<message to='{ua.jid}/r1' type='chat'><body>{body}</body></message>")
    await r2.wait(is_carbon('received', body))
    assert not [s for s in r2.received if forged in str(s)]
    await stop(r1, r2, r3, b)


async def test_message_to_own_account(server, user):
    """A message from r1 to r3 (same account): r3 gets it, r2 gets one
    received copy (not a sent copy too), r1 nothing back."""
    r1, r2, r3 = await three(server, user)
    body = marker()
    r1.raw(f"<message to='{user.jid}/r3' type='chat'><body>{body}</body></message>")
    await r3.wait(is_message(body=body))
    copy = await r2.wait(is_carbon('received', body))
    check_carbon(copy, 'received', user.jid, f'{user.jid}/r2', f'{user.jid}/r1',
                 f'{user.jid}/r3', body)
    await r2.expect_none(anything_with(body), wait=QUIET, what='a second copy')
    await r1.expect_none(anything_with(body), wait=0.01)
    await r3.expect_none(is_carbon(), wait=0.01)
    await stop(r1, r2, r3)


async def test_resource_without_presence_gets_copies(server, users):
    """Carbons follow the enable, not presence: a resource that never sent
    initial presence but enabled carbons sees the conversation."""
    ua, ub = users
    r1 = await server.client(ua, 'r1').start()
    quiet = await server.client(ua, 'quiet').start(presence=False)
    await enable(quiet)
    b = await server.client(ub, 'b').start()
    body = marker()
    b.raw(f"<message to='{ua.jid}' type='chat'><body>{body}</body></message>")
    await r1.wait(is_message(body=body))
    copy = await quiet.wait(is_carbon('received', body))
    check_carbon(copy, 'received', ua.jid, f'{ua.jid}/quiet', f'{ub.jid}/b', ua.jid, body)
    await stop(r1, quiet, b)
