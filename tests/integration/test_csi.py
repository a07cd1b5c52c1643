"""XEP-0352 Client State Indication: the stream feature; while inactive,
presence updates and chat-state-only messages are held (the latest per
sender), everything else goes out at once after what was held; <active/>
flushes in order before anything the client sends next is answered; the
hold is bounded; and a resumed stream (XEP-0198) starts active."""

import asyncio
import time
import uuid

from helpers import (DOMAIN, NS_CARBONS, NS_CHATSTATES, NS_CLIENT, NS_PING, NS_SM, WAIT,
                     is_presence, q)
from test_presence import expect_push, send_presence, status_of, subscribe

NS_CSI = 'urn:xmpp:csi:0'

QUIET = 0.6


def marker():
    return 'csi-' + uuid.uuid4().hex[:10]


async def barrier(c):
    """Everything c sent before is processed by the server once a ping
    sent after it is answered (RFC 6120 §10.1 in-order processing)."""
    resp = await c.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
    assert resp['type'] == 'result'


async def inactive(c):
    c.raw(f"<inactive xmlns='{NS_CSI}'/>")
    await barrier(c)
    c.clear()


async def contacts(server, ua, *others):
    """a (resource 'a') mutually subscribed with each of `others`; all
    online, every list cleared once presence has settled."""
    a = await server.client(ua, 'a').start()
    clients = []
    for i, u in enumerate(others):
        o = await server.client(u, f'o{i}').start()
        await subscribe(a, o, ua.jid, u.jid)
        await subscribe(o, a, u.jid, ua.jid)
        await expect_push(a, u.jid, 'both')
        await expect_push(o, ua.jid, 'both')
        await a.wait(is_presence(frm=f'{u.jid}/o{i}'), what='contact presence')
        await o.wait(is_presence(frm=f'{ua.jid}/a'), what='own presence at contact')
        clients.append(o)
    await asyncio.sleep(0.2)
    for c in [a, *clients]:
        c.clear()
    return a, clients


def kinds(c):
    """What c received, as (kind, from, detail) in order."""
    out = []
    for st in c.received:
        x = st.xml
        tag = x.tag.split('}')[1]
        if tag == 'presence':
            out.append(('presence', x.get('from'), x.get('type') or status_of(st)))
        elif tag == 'message':
            body = x.find(q(NS_CLIENT, 'body'))
            state = [e.tag.split('}')[1] for e in x if e.tag.startswith('{' + NS_CHATSTATES)]
            out.append(('message', x.get('from'),
                        body.text if body is not None else (state[0] if state else str(st))))
        else:
            out.append((tag, x.get('from'), x.get('type')))
    return out


def chat_state(to, state, extra=''):
    return (f"<message to='{to}' type='chat'><{state} xmlns='{NS_CHATSTATES}'/>"
            f"{extra}</message>")


async def stop(*clients):
    for c in clients:
        await c.stop()


def test_feature_advertised(server, user):
    with server.raw() as s:
        s.secure()
        assert s.features.find(q(NS_CSI, 'csi')) is None, 'CSI offered before authentication'
        kind, cond = s.scram('SCRAM-SHA-1', user.localpart, user.password)
        assert kind == 'success', cond
        s.open()
        assert s.features.find(q(NS_CSI, 'csi')) is not None, 'no <csi/> stream feature'


async def test_presence_held_then_flushed_on_active(server, make_user):
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    a, (b, c) = await contacts(server, ua, ub, uc)
    bj, cj = f'{ub.jid}/o0', f'{uc.jid}/o1'
    await inactive(a)
    send_presence(b, status='b-one')
    await barrier(b)
    send_presence(c, status='c-one')
    await barrier(c)
    send_presence(b, status='b-two')   # supersedes b-one
    await barrier(b)
    await a.expect_none(is_presence(), wait=QUIET, what='presence while inactive')
    a.raw(f"<active xmlns='{NS_CSI}'/>")
    await barrier(a)
    # §5.1: flushed before the answer to what followed <active/>; the
    # latest presence per JID, a superseded one moved to the end
    assert kinds(a) == [('presence', cj, 'c-one'), ('presence', bj, 'b-two'),
                        ('iq', DOMAIN, 'result')], kinds(a)
    # active again: delivered at once
    a.clear()
    send_presence(c, status='c-two')
    await a.wait(is_presence(frm=cj), timeout=2, what='presence once active')
    await stop(a, b, c)


async def wait_count(c, n):
    deadline = time.monotonic() + WAIT
    while len(c.received) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_message_with_body_flushes_first(server, make_user):
    """A message with a body goes out at once, after what was held, in
    order; nothing lost or doubled."""
    ua, ub = make_user('a'), make_user('b')
    a, (b,) = await contacts(server, ua, ub)
    bj = f'{ub.jid}/o0'
    await inactive(a)
    send_presence(b, status='s1')
    # roost delivers inbound presence on a later loop pass than messages:
    # keep the two apart so the order below is the one they were sent in
    await barrier(b)
    b.raw(chat_state(f'{ua.jid}/a', 'composing'))
    await barrier(b)
    await a.expect_none(lambda st: True, wait=QUIET, what='anything while inactive')
    body = marker()
    b.raw(f"<message to='{ua.jid}/a' type='chat'><body>{body}</body>"
          f"<active xmlns='{NS_CHATSTATES}'/></message>")
    await wait_count(a, 3)
    await asyncio.sleep(0.2)
    assert kinds(a) == [('presence', bj, 's1'), ('message', bj, 'composing'),
                        ('message', bj, body)], kinds(a)
    await stop(a, b)


async def test_chat_states_held_latest_kept(server, make_user):
    ua, ub = make_user('a'), make_user('b')
    a, (b,) = await contacts(server, ua, ub)
    bj = f'{ub.jid}/o0'
    await inactive(a)
    b.raw(chat_state(f'{ua.jid}/a', 'composing'))
    b.raw(chat_state(ua.jid, 'paused', '<thread>t</thread>'))
    await barrier(b)
    await a.expect_none(lambda st: True, wait=QUIET, what='chat state while inactive')
    a.raw(f"<active xmlns='{NS_CSI}'/>")
    await barrier(a)
    assert kinds(a) == [('message', bj, 'paused'), ('iq', DOMAIN, 'result')], kinds(a)
    await stop(a, b)


async def test_urgent_stanzas_not_held(server, make_user):
    """Subscription requests and IQs go out at once, after what was held."""
    ua, ub, ud = make_user('a'), make_user('b'), make_user('d')
    a, (b,) = await contacts(server, ua, ub)
    d = await server.client(ud, 'd').start()
    bj = f'{ub.jid}/o0'
    await inactive(a)
    send_presence(b, status='held')
    await barrier(b)
    await a.expect_none(lambda st: True, wait=QUIET)
    send_presence(d, to=ua.jid, type='subscribe')
    await a.wait(is_presence(frm=ud.jid, type='subscribe'), what='subscription request')
    assert kinds(a)[:1] == [('presence', bj, 'held')], kinds(a)
    # an IQ to the inactive client's full JID is delivered (and answered)
    resp = await b.iq(f"<ping xmlns='{NS_PING}'/>", to=f'{ua.jid}/a')
    assert resp['type'] == 'result'
    await stop(a, b, d)


async def test_carbon_of_chat_state_held(server, make_user):
    """Carbons go through the same filter: a copy of a chat state is held,
    a copy of a message with a body flushes it."""
    ua, ub = make_user('a'), make_user('b')
    a, (b,) = await contacts(server, ua, ub)
    other = await server.client(ua, 'other').start()
    resp = await a.iq(f"<enable xmlns='{NS_CARBONS}'/>", type='set')
    assert resp['type'] == 'result'
    await asyncio.sleep(0.2)
    await inactive(a)
    other.raw(chat_state(f'{ub.jid}/o0', 'composing'))
    await barrier(other)
    await a.expect_none(lambda st: True, wait=QUIET, what='carbon of a chat state')
    body = marker()
    other.raw(f"<message to='{ub.jid}/o0' type='chat'><body>{body}</body></message>")
    await a.wait(lambda st: body in str(st), what='carbon with a body')
    assert len(a.received) == 1
    first = a.received[0].xml
    assert first.find(q(NS_CARBONS, 'sent')) is not None
    assert 'composing' in str(a.received[0])
    await stop(a, b, other)


def limited_server(server_factory):
    """A server whose output queue limit (and so the CSI hold limit, half
    of it) is small."""
    srv = server_factory('csi-cap', start=False)
    base = srv.config_sections

    def sections():
        s = base()
        s['limits']['max_stanza_size'] = '65536'
        s['limits']['max_outq'] = '65536'
        return s
    srv.config_sections = sections
    srv.write_config()
    return srv.start()


async def test_hold_is_bounded_chat_states_dropped_first(server_factory, make_user):
    srv = limited_server(server_factory)
    ua, ub = make_user('a', srv=srv), make_user('b', srv=srv)
    a, (b,) = await contacts(srv, ua, ub)
    other = await srv.client(ua, 'other').start()
    resp = await a.iq(f"<enable xmlns='{NS_CARBONS}'/>", type='set')
    assert resp['type'] == 'result'
    await asyncio.sleep(0.2)
    await inactive(a)
    send_presence(b, status='keep me')
    await barrier(b)
    # 100 chat states to distinct JIDs: 100 distinct conversations, far
    # more than fit in 32 KiB
    n = 100
    for i in range(n):
        other.raw(chat_state(f'{ub.jid}/x{i}', 'composing'))
    await barrier(other)
    await a.expect_none(lambda st: True, wait=QUIET)
    a.raw(f"<active xmlns='{NS_CSI}'/>")
    await barrier(a)
    seen = kinds(a)
    assert seen[0] == ('presence', f'{ub.jid}/o0', 'keep me'), seen[:3]
    assert seen[-1] == ('iq', DOMAIN, 'result')
    targets = []
    for st in a.received[1:-1]:
        inner = st.xml.find(f'{q(NS_CARBONS, "sent")}/{{urn:xmpp:forward:0}}forwarded/'
                            f'{q(NS_CLIENT, "message")}')
        assert inner is not None, str(st)
        targets.append(int(inner.get('to').rsplit('/x', 1)[1]))
    # the oldest went, the newest stayed, in order
    assert 0 < len(targets) < n
    assert targets == list(range(n - len(targets), n)), targets
    await stop(a, b, other)


async def test_hold_is_bounded_presence_flushed(server_factory, make_user):
    """Presence is never dropped: over the limit with only presence held,
    it is all sent."""
    srv = limited_server(server_factory)
    ua, ub, uc = make_user('a', srv=srv), make_user('b', srv=srv), make_user('c', srv=srv)
    a, (b, c) = await contacts(srv, ua, ub, uc)
    await inactive(a)
    big = 'x' * 20000
    send_presence(b, status='b' + big)
    await barrier(b)
    await a.expect_none(lambda st: True, wait=QUIET, what='one big presence (fits)')
    send_presence(c, status='c' + big)
    await wait_count(a, 2)
    assert [k[1] for k in kinds(a)] == [f'{ub.jid}/o0', f'{uc.jid}/o1']
    await stop(a, b, c)


async def test_connection_dropped_while_holding(server, make_user):
    """The session ends with stanzas held: nothing leaks, nothing breaks
    (the ASan build checks the first, the next login the second)."""
    ua, ub = make_user('a'), make_user('b')
    a, (b,) = await contacts(server, ua, ub)
    await inactive(a)
    send_presence(b, status='held')
    b.raw(chat_state(f'{ua.jid}/a', 'composing'))
    await barrier(b)
    a.abort()
    await asyncio.sleep(0.3)
    send_presence(b, status='after')
    await barrier(b)
    a2 = await server.client(ua, 'a').start()
    await a2.wait(is_presence(frm=f'{ub.jid}/o0'), what='contact presence on the new session')
    await stop(a2, b)


# --- XEP-0198: the state belongs to the stream ---------------------------

def sm_login(server, user, resource):
    s = server.raw()
    s.login(user, resource)
    s.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    enabled = s.wait_for(lambda e: e.tag == q(NS_SM, 'enabled'))
    return s, enabled.get('id')


def raw_ping(s):
    s.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)


def resume(server, user, previd):
    s = server.raw()
    s.authenticate(user)
    s.send(f"<resume xmlns='{NS_SM}' h='0' previd='{previd}'/>")
    got = s.wait_for(lambda e: e.tag in (q(NS_SM, 'resumed'), q(NS_SM, 'failed')))
    assert got.tag == q(NS_SM, 'resumed'), got
    return s


def close(s):
    """Ends the stream by the protocol: the session ends now rather than
    waiting, resumable, for its timeout."""
    s.send('</stream:stream>')
    s.wait_closed()
    s.close()


def messages_until(s, pred):
    """Message elements in order up to the first matching pred."""
    out = []
    while True:
        e = s.next_element()
        if e.tag != q(NS_CLIENT, 'message'):
            continue
        out.append(e)
        if pred(e):
            return out


def state_of(e):
    for c in e:
        if c.tag.startswith('{' + NS_CHATSTATES):
            return c.tag.split('}')[1]
    body = e.find(q(NS_CLIENT, 'body'))
    return body.text if body is not None else None


def detach_holding_composing(server, a, b, ua):
    """a goes inactive, b sends it a chat state (held), then a's TCP
    connection dies: returns once a's session is detached, resumable."""
    a.send(f"<inactive xmlns='{NS_CSI}'/>")
    raw_ping(a)
    b.send(chat_state(f'{ua.jid}/a', 'composing'))
    raw_ping(b)
    detached = server.log().count('detached; resumable')
    a.close()
    server.wait_log('detached; resumable', detached + 1)


def test_detached_session_not_held(server, make_user):
    """The inactive stream dies (resumable): a message for the detached
    session first releases what was held, in order, into the resumption
    queue; both arrive on the resumed stream."""
    ua, ub = make_user('a'), make_user('b')
    a, previd = sm_login(server, ua, 'a')
    with server.raw() as b:
        b.login(ub, 'b')
        detach_holding_composing(server, a, b, ua)
        body = marker()
        b.send(f"<message to='{ua.jid}/a' type='chat'><body>{body}</body></message>")
        raw_ping(b)
        a = resume(server, ua, previd)
        got = messages_until(a, lambda e: state_of(e) == body)
        assert [state_of(e) for e in got] == ['composing', body]
        close(a)


def test_resumed_stream_starts_active(server, make_user):
    """§5.2: CSI state is not restored on resumption. A chat state held by
    the old stream is released with the first stanza after resumption,
    which itself is not held."""
    ua, ub = make_user('a'), make_user('b')
    a, previd = sm_login(server, ua, 'a')
    with server.raw() as b:
        b.login(ub, 'b')
        detach_holding_composing(server, a, b, ua)
        a = resume(server, ua, previd)
        b.send(chat_state(f'{ua.jid}/a', 'paused'))
        got = messages_until(a, lambda e: state_of(e) == 'paused')
        assert [state_of(e) for e in got] == ['composing', 'paused']
        close(a)
