"""Presence (RFC 6121 §3, §4): the subscription state machine with its
roster pushes, requests to offline contacts, probes on initial presence,
broadcast, directed presence and unavailable presence when a session
ends."""

import asyncio

import pytest

from helpers import (NS_CLIENT, NS_ROSTER, is_presence, is_roster_push, q,
                     roster_items)


def push_state(jid, subscription, ask=None):
    """Predicate: a roster push for jid in exactly this state."""
    def pred(st):
        if not is_roster_push(jid)(st):
            return False
        item = roster_items(st)[jid]
        return item.get('subscription', 'none') == subscription and item.get('ask') == ask
    return pred


async def expect_push(c, jid, subscription, ask=None):
    push = await c.wait(push_state(jid, subscription, ask),
                        what=f'roster push {jid} subscription={subscription} ask={ask}')
    frm = push.xml.get('from')
    assert frm in (None, '', c.boundjid.bare), f'roster push from {frm}'
    return push


async def roster_state(c, jid):
    resp = await c.iq(f"<query xmlns='{NS_ROSTER}'/>")
    item = roster_items(resp).get(jid)
    if item is None:
        return None
    return item.get('subscription', 'none'), item.get('ask')


def send_presence(c, to=None, type=None, status=None, priority=None):
    attrs = ''
    if to:
        attrs += f" to='{to}'"
    if type:
        attrs += f" type='{type}'"
    inner = ''
    if status is not None:
        inner += f'<status>{status}</status>'
    if priority is not None:
        inner += f'<priority>{priority}</priority>'
    c.raw(f'<presence{attrs}>{inner}</presence>')


def status_of(st):
    s = st.xml.find(q(NS_CLIENT, 'status'))
    return None if s is None else s.text


async def subscribe(a, b, a_jid, b_jid):
    """a subscribes to b's presence, b approves; waits for every effect."""
    send_presence(a, to=b_jid, type='subscribe')
    req = await b.wait(is_presence(frm=a_jid, type='subscribe'), what='subscribe')
    assert req.xml.get('from') == a_jid
    send_presence(b, to=a_jid, type='subscribed')
    await a.wait(is_presence(frm=b_jid, type='subscribed'), what='subscribed')


async def mutual(server, ua, ub, ra='a', rb='b'):
    """Two online, mutually subscribed clients (state 'both')."""
    a = await server.client(ua, ra).start()
    b = await server.client(ub, rb).start()
    await subscribe(a, b, ua.jid, ub.jid)
    await subscribe(b, a, ub.jid, ua.jid)
    await expect_push(a, ub.jid, 'both')
    await expect_push(b, ua.jid, 'both')
    a.clear()
    b.clear()
    return a, b


async def test_subscription_state_machine(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start(status='A here')
    b = await server.client(ub, 'b').start(status='B here')

    # A -> subscribe -> B: A's roster: none + ask; B gets the request
    send_presence(a, to=ub.jid, type='subscribe')
    await expect_push(a, ub.jid, 'none', 'subscribe')
    req = await b.wait(is_presence(frm=ua.jid, type='subscribe'), what='subscribe')
    assert req.xml.get('from') == ua.jid, 'subscribe must come from the bare JID'
    assert req.xml.get('to') in (ub.jid, f'{ub.jid}/b')

    # B approves: B's roster: from; A's roster: to; A gets B's presence
    send_presence(b, to=ua.jid, type='subscribed')
    await expect_push(b, ua.jid, 'from')
    got = await a.wait(is_presence(frm=ub.jid, type='subscribed'), what='subscribed')
    assert got.xml.get('from') == ub.jid
    await expect_push(a, ub.jid, 'to')
    avail = await a.wait(is_presence(frm=f'{ub.jid}/b'), what="B's presence after approval")
    assert status_of(avail) == 'B here'
    # B does not see A's presence: B has no subscription to A
    await b.expect_none(is_presence(frm=f'{ua.jid}/a'), wait=0.5, what="A's presence")

    # B -> subscribe -> A, A approves: both
    send_presence(b, to=ua.jid, type='subscribe')
    await expect_push(b, ua.jid, 'from', 'subscribe')
    await a.wait(is_presence(frm=ub.jid, type='subscribe'))
    send_presence(a, to=ub.jid, type='subscribed')
    await expect_push(a, ub.jid, 'both')
    await b.wait(is_presence(frm=ua.jid, type='subscribed'))
    await expect_push(b, ua.jid, 'both')
    avail = await b.wait(is_presence(frm=f'{ua.jid}/a'), what="A's presence after approval")
    assert status_of(avail) == 'A here'
    assert await roster_state(a, ub.jid) == ('both', None)
    assert await roster_state(b, ua.jid) == ('both', None)

    # A unsubscribes from B: A: from; B: to; A gets B's unavailable
    a.clear()
    b.clear()
    send_presence(a, to=ub.jid, type='unsubscribe')
    await expect_push(a, ub.jid, 'from')
    got = await b.wait(is_presence(frm=ua.jid, type='unsubscribe'), what='unsubscribe')
    assert got.xml.get('from') == ua.jid
    await expect_push(b, ua.jid, 'to')
    await a.wait(is_presence(frm=f'{ub.jid}/b', type='unavailable'),
                 what="B's unavailable after unsubscribe")

    # A cancels B's subscription (unsubscribed): none on both sides, B gets
    # A's unavailable
    send_presence(a, to=ub.jid, type='unsubscribed')
    await expect_push(a, ub.jid, 'none')
    got = await b.wait(is_presence(frm=ua.jid, type='unsubscribed'), what='unsubscribed')
    assert got.xml.get('from') == ua.jid
    await expect_push(b, ua.jid, 'none')
    await b.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'),
                 what="A's unavailable after unsubscribed")
    assert await roster_state(a, ub.jid) == ('none', None)
    assert await roster_state(b, ua.jid) == ('none', None)

    # and presence no longer flows either way
    a.clear()
    b.clear()
    send_presence(a, status='after')
    send_presence(b, status='after')
    await a.expect_none(is_presence(frm=ub.jid), wait=0.7)
    await b.expect_none(is_presence(frm=ua.jid), wait=0.1)
    await a.stop()
    await b.stop()


async def test_deny_subscription(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    send_presence(a, to=ub.jid, type='subscribe')
    await expect_push(a, ub.jid, 'none', 'subscribe')
    await b.wait(is_presence(frm=ua.jid, type='subscribe'))
    send_presence(b, to=ua.jid, type='unsubscribed')
    await a.wait(is_presence(frm=ub.jid, type='unsubscribed'), what='denial')
    await expect_push(a, ub.jid, 'none', None)
    assert await roster_state(a, ub.jid) == ('none', None)
    await a.stop()
    await b.stop()


async def test_unsolicited_subscribed_is_ignored(server, users):
    """RFC 6121 3.1.5/3.1.6: 'subscribed' without a pending request
    changes nothing and delivers nothing."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    send_presence(b, to=ua.jid, type='subscribed')
    await a.expect_none(is_presence(frm=ub.jid, type='subscribed'), wait=0.7)
    await a.expect_none(is_roster_push(ub.jid), wait=0.1)
    assert await roster_state(a, ub.jid) in (None, ('none', None))
    assert await roster_state(b, ua.jid) in (None, ('none', None))
    # B's presence does not leak to A
    send_presence(b, status='secret')
    await a.expect_none(is_presence(frm=ub.jid), wait=0.5)
    await a.stop()
    await b.stop()


async def test_subscribe_to_offline_user_delivered_at_login(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    send_presence(a, to=ub.jid, type='subscribe')
    await expect_push(a, ub.jid, 'none', 'subscribe')
    await asyncio.sleep(0.3)
    # B was never online: the request waits for B's initial presence
    b = await server.client(ub, 'b').start()
    req = await b.wait(is_presence(frm=ua.jid, type='subscribe'),
                       what='stored subscription request')
    assert req.xml.get('from') == ua.jid
    send_presence(b, to=ua.jid, type='subscribed')
    await expect_push(a, ub.jid, 'to')
    await a.wait(is_presence(frm=f'{ub.jid}/b'), what="B's presence")
    await a.stop()
    await b.stop()


async def test_probe_on_initial_presence(server, users):
    """A contact already online is probed when the user comes online: the
    user receives the contact's current presence, and the contact the
    user's."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    send_presence(b, status='on the phone')
    await a.wait(lambda s: is_presence(frm=f'{ub.jid}/b')(s) and status_of(s) == 'on the phone')
    await a.stop()
    await b.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'))

    a2 = await server.client(ua, 'a2').start(status='back')
    got = await a2.wait(is_presence(frm=f'{ub.jid}/b'), what="probe answer with B's presence")
    assert status_of(got) == 'on the phone'
    assert got.xml.get('to') in (f'{ua.jid}/a2', ua.jid)
    avail = await b.wait(is_presence(frm=f'{ua.jid}/a2'), what="A's initial presence")
    assert status_of(avail) == 'back'
    await a2.stop()
    await b.stop()


async def test_no_presence_from_offline_contact(server, users):
    """The probe of an offline contact yields nothing available (an
    unavailable presence, or nothing)."""
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    await b.stop()
    await a.wait(is_presence(frm=f'{ub.jid}/b', type='unavailable'))
    await a.stop()
    a2 = await server.client(ua, 'a2').start()
    await a2.expect_none(is_presence(frm=ub.jid), wait=1.0, what='available presence of an offline contact')
    await a2.stop()


async def test_broadcast_only_to_subscribers(server, make_user):
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    a, b = await mutual(server, ua, ub)
    c = await server.client(uc, 'c').start()
    send_presence(a, status='status one', priority=3)
    got = await b.wait(lambda s: is_presence(frm=f'{ua.jid}/a')(s) and status_of(s) == 'status one')
    prio = got.xml.find(q(NS_CLIENT, 'priority'))
    assert prio is not None and prio.text == '3'
    await c.expect_none(is_presence(frm=ua.jid), wait=0.7, what='presence leaked to a non-contact')
    await a.stop()
    await b.stop()
    await c.stop()


async def test_presence_reaches_own_other_resources(server, user):
    """RFC 6121 4.2.2: initial presence goes to the user's other available
    resources too."""
    a1 = await server.client(user, 'one').start()
    a2 = await server.client(user, 'two').start(status='second')
    got = await a1.wait(is_presence(frm=f'{user.jid}/two'), what='own other resource presence')
    assert status_of(got) == 'second'
    await a2.stop()
    await a1.wait(is_presence(frm=f'{user.jid}/two', type='unavailable'))
    await a1.stop()


@pytest.mark.parametrize('how', ['close', 'drop'])
async def test_unavailable_when_session_ends(server, users, how):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    if how == 'close':
        await a.stop()
    else:
        a.abort()  # TCP gone without </stream:stream>
    got = await b.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'),
                       what='unavailable after the session ended')
    assert got.xml.get('from') == f'{ua.jid}/a'
    await b.stop()


async def test_explicit_unavailable(server, users):
    ua, ub = users
    a, b = await mutual(server, ua, ub)
    send_presence(a, type='unavailable', status='gone fishing')
    got = await b.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'))
    assert status_of(got) == 'gone fishing'
    await a.stop()
    await b.stop()


async def test_directed_presence_to_non_contact(server, users):
    ua, uc = users
    a = await server.client(ua, 'a').start()
    c = await server.client(uc, 'c').start()
    send_presence(a, to=f'{uc.jid}/c', status='just for you')
    got = await c.wait(is_presence(frm=f'{ua.jid}/a'), what='directed presence')
    assert status_of(got) == 'just for you'
    # a later broadcast does not go to C (not a subscriber)
    send_presence(a, status='broadcast')
    await c.expect_none(lambda s: is_presence(frm=ua.jid)(s) and status_of(s) == 'broadcast',
                        wait=0.7, what='broadcast to a directed-presence recipient')
    # when A's session ends, C learns that A is gone (RFC 6121 4.6.3)
    await a.stop()
    await c.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'),
                 what='unavailable to the directed-presence recipient')
    await c.stop()


async def test_directed_presence_to_bare_jid(server, users):
    ua, uc = users
    a = await server.client(ua, 'a').start()
    c1 = await server.client(uc, 'c1').start()
    c2 = await server.client(uc, 'c2').start()
    send_presence(a, to=uc.jid, status='hi all')
    for c in (c1, c2):
        got = await c.wait(is_presence(frm=f'{ua.jid}/a'), what='directed presence to bare JID')
        assert status_of(got) == 'hi all'
    a.abort()
    for c in (c1, c2):
        await c.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'))
    await c1.stop()
    await c2.stop()


async def test_directed_unavailable_ends_directed_presence(server, users):
    ua, uc = users
    a = await server.client(ua, 'a').start()
    c = await server.client(uc, 'c').start()
    send_presence(a, to=uc.jid)
    await c.wait(is_presence(frm=f'{ua.jid}/a'))
    send_presence(a, to=uc.jid, type='unavailable')
    await c.wait(is_presence(frm=f'{ua.jid}/a', type='unavailable'))
    c.clear()
    await a.stop()
    await c.expect_none(is_presence(frm=ua.jid), wait=0.7, what='second unavailable')
    await c.stop()


async def test_presence_to_unknown_user_is_dropped(server, user):
    """Presence to a non-existent account on this server: no error bounce
    for available presence (RFC 6121 4.6.2 / 4.3: presence errors are not
    generated for unavailable targets), nothing breaks."""
    a = await server.client(user, 'a').start()
    send_presence(a, to=f'ghost-nobody@{server.host}', status='hello?')
    await a.expect_none(lambda s: s.xml.tag == q(NS_CLIENT, 'presence')
                        and s.xml.get('type') == 'error', wait=0.7)
    resp = await a.iq("<ping xmlns='urn:xmpp:ping'/>", to=server.host)
    assert resp['type'] == 'result'
    await a.stop()


async def test_subscribe_to_unknown_user(server, user):
    """RFC 6121 3.1.3: no such contact: the request is answered with
    'unsubscribed' (or silently dropped); the user's roster shows at most
    a pending item."""
    a = await server.client(user, 'a').start()
    ghost = f'ghost-sub-nobody@{server.host}'
    send_presence(a, to=ghost, type='subscribe')
    await expect_push(a, ghost, 'none', 'subscribe')
    try:
        await a.wait(is_presence(frm=ghost, type='unsubscribed'), timeout=2)
    except AssertionError:
        pass
    await a.stop()
