"""Message and IQ routing (RFC 6121 §8, RFC 6120 §8, §10): full and bare
JIDs, priorities, unknown and offline accounts, error bounces without
loops, IQs answered on an account's behalf, addressing errors, and
faithful re-serialization of what is routed."""

import asyncio
import uuid

import pytest

from helpers import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_PING, NS_STREAM,
                     NS_VERSION, error_condition, is_message, q)
from test_session import identities


def marker():
    return 'm-' + uuid.uuid4().hex[:10]


def is_error_message(frm=None):
    def pred(st):
        x = st.xml
        return (x.tag == q(NS_CLIENT, 'message') and x.get('type') == 'error'
                and (frm is None or (x.get('from') or '').split('/')[0] == frm.split('/')[0]))
    return pred


async def test_message_to_full_jid(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    b2 = await server.client(ub, 'b2').start()
    body = marker()
    a.raw(f"<message to='{ub.jid}/b' type='chat' id='full1'><body>{body}</body></message>")
    got = await b.wait(is_message(body=body), what='message to full JID')
    assert got.xml.get('from') == f'{ua.jid}/a'
    assert got.xml.get('id') == 'full1'
    assert got.xml.get('type') == 'chat'
    assert got.xml.get('to') in (f'{ub.jid}/b',)
    await b2.expect_none(is_message(body=body), wait=0.5, what='copy to another resource')
    for c in (a, b, b2):
        await c.stop()


async def test_message_to_bare_jid_highest_priority(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    hi = await server.client(ub, 'hi').start(priority=5)
    lo = await server.client(ub, 'lo').start(priority=1)
    neg = await server.client(ub, 'neg').start(priority=-1)
    body = marker()
    a.raw(f"<message to='{ub.jid}' type='chat'><body>{body}</body></message>")
    got = await hi.wait(is_message(body=body), what='message at the highest-priority resource')
    assert got.xml.get('from') == f'{ua.jid}/a'
    await neg.expect_none(is_message(body=body), wait=0.7, what='message at negative priority')
    if server.kind == 'roost':
        # issue 2: bare JID -> the highest non-negative priority resource(s)
        await lo.expect_none(is_message(body=body), wait=0.1, what='message at lower priority')
    for c in (a, hi, lo, neg):
        await c.stop()


async def test_message_to_bare_jid_equal_priorities(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b1 = await server.client(ub, 'one').start(priority=2)
    b2 = await server.client(ub, 'two').start(priority=2)
    body = marker()
    a.raw(f"<message to='{ub.jid}' type='chat'><body>{body}</body></message>")
    got = []
    for c in (b1, b2):
        try:
            got.append(await c.wait(is_message(body=body), timeout=2))
        except AssertionError:
            pass
    assert got, 'message to bare JID reached no resource'
    if server.kind == 'roost':
        assert len(got) == 2, 'equal highest priorities: every such resource gets it'
    for c in (a, b1, b2):
        await c.stop()


async def test_message_to_unavailable_full_jid_goes_to_bare(server, users):
    """RFC 6121 8.5.3.2.1: a chat/normal message to a full JID with no such
    resource is handled as if sent to the bare JID."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    body = marker()
    a.raw(f"<message to='{ub.jid}/gone' type='chat'><body>{body}</body></message>")
    got = await b.wait(is_message(body=body), what='redirected message')
    assert got.xml.get('from') == f'{ua.jid}/a'
    await a.stop()
    await b.stop()


async def test_message_to_unknown_account(server, user):
    a = await server.client(user, 'a').start()
    ghost = f'nobody-{uuid.uuid4().hex[:6]}@{DOMAIN}'
    a.raw(f"<message to='{ghost}' id='ghost1' type='chat'><body>hello?</body></message>")
    err = await a.wait(is_error_message(ghost), what='error for unknown account')
    assert err.xml.get('id') == 'ghost1'
    assert err.xml.get('from') == ghost
    assert error_condition(err) == ('cancel', 'service-unavailable')
    await a.stop()


def is_delayed_message(body):
    """The stored copy: same body, with a XEP-0203 <delay/>."""
    def pred(st):
        return (is_message(body=body)(st)
                and st.xml.find('{urn:xmpp:delay}delay') is not None)
    return pred


async def test_message_to_offline_account(server, users):
    """XEP-0160: a chat message to an existing account with no available
    resource is stored, not bounced, and delivered at the next login."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    body = marker()
    a.raw(f"<message to='{ub.jid}' id='off1' type='chat'><body>{body}</body></message>")
    await a.expect_none(is_error_message(ub.jid), wait=0.7, what='bounce of a stored message')
    b = await server.client(ub, 'b').start()
    got = await b.wait(is_delayed_message(body), what='stored message at the next login')
    assert got.xml.get('id') == 'off1'
    assert got.xml.get('from') == f'{ua.jid}/a'
    await a.stop()
    await b.stop()


async def test_message_to_only_negative_priority_is_offline(server, users):
    """Negative priority only counts as no available resource (RFC 6121
    8.5.2.2): the message is stored, not shown to the negative resource,
    and delivered when a resource with priority >= 0 comes."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    neg = await server.client(ub, 'neg').start(priority=-5)
    body = marker()
    a.raw(f"<message to='{ub.jid}' id='neg1' type='chat'><body>{body}</body></message>")
    await a.expect_none(is_error_message(ub.jid), wait=0.7, what='bounce of a stored message')
    await neg.expect_none(is_message(body=body), wait=0.1)
    pos = await server.client(ub, 'pos').start(priority=0)
    await pos.wait(is_delayed_message(body), what='stored message at priority 0')
    await neg.expect_none(is_message(body=body), wait=0.3)
    await a.stop()
    await neg.stop()
    await pos.stop()


async def test_message_to_connected_but_unavailable_account(server, users):
    """A bound session that never sent initial presence is not available:
    the message is stored, and comes with that session's initial
    presence."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start(presence=False)
    body = marker()
    a.raw(f"<message to='{ub.jid}' id='nop1' type='chat'><body>{body}</body></message>")
    await a.expect_none(is_error_message(ub.jid), wait=0.7, what='bounce of a stored message')
    await b.expect_none(is_message(body=body), wait=0.1)
    b.send_presence()
    got = await b.wait(is_delayed_message(body), what='stored message after initial presence')
    assert got.xml.get('id') == 'nop1'
    await a.stop()
    await b.stop()


async def test_headline_to_offline_account_is_dropped(server, users):
    """RFC 6121 8.5.2.2.1: a headline with no available resource is
    silently ignored, not bounced."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    a.raw(f"<message to='{ub.jid}' type='headline'><body>news</body></message>")
    await a.expect_none(is_error_message(ub.jid), wait=0.7, what='bounce of a headline')
    await a.stop()


async def test_error_messages_are_not_bounced(server, users):
    """RFC 6120 8.3.1: never answer an error with an error (no loops)."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    ghost = f'nobody-{uuid.uuid4().hex[:6]}@{DOMAIN}'
    for to in (ghost, ub.jid, f'{ub.jid}/x'):
        a.raw(f"<message to='{to}' type='error' id='e-{to}'><error type='cancel'>"
              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    await a.expect_none(lambda s: s.xml.tag == q(NS_CLIENT, 'message'), wait=1.0,
                        what='answer to an error message')
    resp = await a.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
    assert resp['type'] == 'result'
    await a.stop()


async def test_error_iq_to_offline_not_bounced(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    a.raw(f"<iq to='{ub.jid}/x' type='error' id='ie1'><error type='cancel'>"
          "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    a.raw(f"<iq to='{ub.jid}/x' type='result' id='ir1'/>")
    await a.expect_none(lambda s: s.xml.get('id') in ('ie1', 'ir1'), wait=1.0)
    await a.stop()


async def test_iq_to_bare_jid_answered_by_server(server, make_user):
    """RFC 6121 8.5.2.1.3 / RFC 6120 10.5.3.2: an IQ to another account's
    bare JID is answered by the server on the account's behalf; the
    account's clients never see it. (Between contacts: a server may hide an
    account's disco from strangers, see the next test.)"""
    from test_presence import mutual
    ua, ub = make_user('a'), make_user('b')
    a, b = await mutual(server, ua, ub)
    resp = await a.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=ub.jid)
    assert resp['type'] == 'result', str(resp)
    assert resp.xml.get('from') == ub.jid
    assert ('account', 'registered') in identities(resp)
    await b.expect_none(lambda s: s.xml.tag == q(NS_CLIENT, 'iq') and s.xml.get('type') == 'get'
                        and s.xml.find(q(NS_DISCO_INFO, 'query')) is not None,
                        wait=0.5, what='bare-JID IQ leaked to a client')
    # unknown namespace to a bare JID: service-unavailable from the server
    resp = await a.iq("<query xmlns='urn:example:unknown'/>", to=ub.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp) == ('cancel', 'service-unavailable')
    assert resp.xml.get('from') == ub.jid
    await b.expect_none(lambda s: s.xml.find('{urn:example:unknown}query') is not None,
                        wait=0.3, what='bare-JID IQ leaked to a client')
    # offline account: still answered by the server
    await b.stop()
    resp = await a.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=ub.jid)
    assert resp['type'] == 'result', str(resp)
    await a.stop()


async def test_iq_to_bare_jid_of_stranger(server, users):
    """Not a contact: a result, or service-unavailable (hiding the account),
    but always an answer from the bare JID."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    resp = await a.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=ub.jid)
    assert resp.xml.get('from') == ub.jid
    if resp['type'] == 'error':
        assert error_condition(resp)[1] == 'service-unavailable'
    else:
        assert ('account', 'registered') in identities(resp)
    await a.stop()


async def test_iq_to_full_jid_routed(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    resp = await a.iq(f"<ping xmlns='{NS_PING}'/>", to=f'{ub.jid}/b')
    assert resp['type'] == 'result', str(resp)
    assert resp.xml.get('from') == f'{ub.jid}/b'
    seen = await b.wait(lambda s: s.xml.tag == q(NS_CLIENT, 'iq')
                        and s.xml.find(q(NS_PING, 'ping')) is not None)
    assert seen.xml.get('from') == f'{ua.jid}/a'
    resp = await a.iq(f"<query xmlns='{NS_VERSION}'/>", to=f'{ub.jid}/b')
    assert resp['type'] == 'result'
    assert resp.xml.find(q(NS_VERSION, 'query')) is not None
    # an error produced by the client is routed back too
    resp = await a.iq("<query xmlns='urn:example:client-does-not-know'/>", to=f'{ub.jid}/b')
    assert resp['type'] == 'error'
    assert resp.xml.get('from') == f'{ub.jid}/b'
    await a.stop()
    await b.stop()


async def test_iq_to_unavailable_full_jid(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    for to in (f'{ub.jid}/nowhere', f'nobody-{uuid.uuid4().hex[:6]}@{DOMAIN}/r'):
        resp = await a.iq(f"<ping xmlns='{NS_PING}'/>", to=to)
        assert resp['type'] == 'error', str(resp)
        assert error_condition(resp) == ('cancel', 'service-unavailable')
        assert resp.xml.get('from') == to
    await a.stop()


@pytest.mark.parametrize('bad', ['a@b@' + DOMAIN, '@' + DOMAIN, 'x' * 1100 + '@' + DOMAIN,
                                 'user@' + DOMAIN + '/' + 'r' * 1100, 'us\u0007er@' + DOMAIN],
                         ids=['two-at', 'empty-local', 'long-local', 'long-resource', 'control-char'])
def test_invalid_to_jid(server, user, bad):
    with server.raw() as s:
        s.login(user)
        s.send(f"<message to='{bad}' id='bad1'><body>x</body></message>".replace('\u0007', '&#7;')
               if '\u0007' in bad else f"<message to='{bad}' id='bad1'><body>x</body></message>")
        elem = s.next_element()
        if elem.tag == q(NS_STREAM, 'error'):
            # &#7; is not even legal XML 1.0: a stream error is right there
            assert '\u0007' in bad
            return
        assert elem.get('type') == 'error', elem
        assert elem.get('id') == 'bad1'
        from helpers import stanza_error
        assert stanza_error(elem) == ('modify', 'jid-malformed')
        from test_streams import ping_ok
        ping_ok(s)


def test_invalid_to_jid_iq(server, user):
    from helpers import stanza_error
    from test_streams import ping_ok
    with server.raw() as s:
        s.login(user)
        resp = s.iq(f"<ping xmlns='{NS_PING}'/>", to='a@@b')
        assert resp.get('type') == 'error'
        assert stanza_error(resp) == ('modify', 'jid-malformed')
        ping_ok(s)


async def test_spoofed_from_is_not_trusted(server, make_user):
    """RFC 6120 8.1.2.1: the server stamps 'from' with the sender's full
    JID (or rejects a wrong one with <invalid-from/>)."""
    ua, ub, uc = make_user('a'), make_user('b'), make_user('c')
    b = await server.client(ub, 'b').start()
    body = marker()
    from conftest import User  # noqa: F401
    loop = asyncio.get_event_loop()

    def send_spoofed():
        with server.raw() as s:
            full = s.login(ua, resource='spoof')
            s.send(f"<message to='{ub.jid}/b' from='{uc.jid}/x'><body>{body}</body></message>")
            try:
                elem = s.next_element(timeout=1.5)
            except Exception:
                return full, None
            return full, elem

    full, elem = await loop.run_in_executor(None, send_spoofed)
    if elem is not None and elem.tag == q(NS_STREAM, 'error'):
        names = [c.tag.split('}')[1] for c in elem]
        assert 'invalid-from' in names
        await b.expect_none(is_message(body=body), wait=0.3)
    else:
        got = await b.wait(is_message(body=body), what='message with stamped from')
        assert got.xml.get('from') == full, f'spoofed from passed through: {got}'
    await b.stop()


async def test_escaping_and_unicode_survive_routing(server, users):
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    body = "<tag> & 'quotes' \"dq\" ]]> \u00e9\u4e2d\U0001F600 " + marker()
    esc = (body.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
           .replace("'", '&apos;').replace('"', '&quot;'))
    a.raw(f"<message to='{ub.jid}/b' type='chat' id='esc1'><body>{esc}</body>"
          f"<subject>a&amp;b</subject></message>")
    got = await b.wait(lambda s: s.xml.get('id') == 'esc1', what='escaped message')
    assert got.xml.find(q(NS_CLIENT, 'body')).text == body
    assert got.xml.find(q(NS_CLIENT, 'subject')).text == 'a&b'
    await a.stop()
    await b.stop()


async def test_extension_namespaces_survive_routing(server, users):
    """Payload namespaces, prefixes and prefixed attributes are preserved
    (the serializer re-declares what it needs on the recipient's stream)."""
    ua, ub = users
    a = await server.client(ua, 'a').start()
    b = await server.client(ub, 'b').start()
    a.raw(f"<message to='{ub.jid}/b' id='ns1' xml:lang='de'>"
          "<body>hallo</body>"
          "<x xmlns='urn:example:ext' xmlns:foo='urn:example:foo' foo:attr='v1' plain='v2'>"
          "<foo:child>inner</foo:child><y/></x>"
          "<active xmlns='http://jabber.org/protocol/chatstates'/>"
          "</message>")
    got = await b.wait(lambda s: s.xml.get('id') == 'ns1', what='message with extensions')
    x = got.xml.find('{urn:example:ext}x')
    assert x is not None, str(got)
    assert x.get('{urn:example:foo}attr') == 'v1'
    assert x.get('plain') == 'v2'
    assert x.find('{urn:example:foo}child').text == 'inner'
    assert x.find('{urn:example:ext}y') is not None
    assert got.xml.find('{http://jabber.org/protocol/chatstates}active') is not None
    assert got.xml.get('{http://www.w3.org/XML/1998/namespace}lang') == 'de'
    await a.stop()
    await b.stop()


async def test_message_to_self_bare_jid(server, user):
    a = await server.client(user, 'a').start(priority=1)
    body = marker()
    a.raw(f"<message to='{user.jid}' type='chat'><body>{body}</body></message>")
    got = await a.wait(is_message(body=body), what='message to own bare JID')
    assert got.xml.get('from') == f'{user.jid}/a'
    await a.stop()
