"""Sessions with a real client (slixmpp) and, where bytes matter, raw
streams: login, resource binding and conflicts, XEP-0030 disco,
XEP-0199 ping, XEP-0092 version, keepalives, and IQ error handling."""

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest

from helpers import (DOMAIN, NS_BIND, NS_CLIENT, NS_DISCO_INFO, NS_DISCO_ITEMS,
                     NS_PING, NS_VERSION, LoginFailed, error_condition, q)
from test_streams import ping_ok


def identities(resp):
    query = resp.xml.find(q(NS_DISCO_INFO, 'query'))
    assert query is not None, str(resp)
    return {(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))}


def features(resp):
    query = resp.xml.find(q(NS_DISCO_INFO, 'query'))
    return {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}


# Plain SCRAM-SHA-* are tested with the raw client (test_sasl.py): forced
# onto them while -PLUS is offered, slixmpp sends the gs2 flag 'y', which a
# correct server must refuse (RFC 5802 downgrade protection).
@pytest.mark.parametrize('mech', [None, 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'PLAIN'])
async def test_login(server, user, mech):
    c = server.client(user, 'laptop', mechanism=mech)
    try:
        await c.start()
    except LoginFailed:
        if server.kind != 'roost' and mech and mech.endswith('-PLUS'):
            pytest.skip(f'{server.kind} does not offer {mech}')
        raise
    assert str(c.boundjid) == f'{user.jid}/laptop'
    assert c.authenticated
    await c.stop()


async def test_login_direct_tls(server, user):
    c = server.client(user, 'dtls', direct_tls=True)
    await c.start()
    assert str(c.boundjid) == f'{user.jid}/dtls'
    await c.stop()


async def test_wrong_password_refused(server, user):
    from conftest import User
    c = server.client(User(user.jid, 'wrong-' + user.password))
    with pytest.raises(LoginFailed):
        await c.start()


def test_bind_client_chosen(server, user):
    with server.raw() as s:
        assert s.login(user, resource='Chosen Résource') == f'{user.jid}/Chosen Résource'


def test_bind_server_generated(server, user):
    jids = []
    for _ in range(2):
        with server.raw() as s:
            full = s.login(user, resource=None)
            bare, _, res = full.partition('/')
            assert bare == user.jid
            assert res, 'server-generated resource is empty'
            jids.append(full)
    assert jids[0] != jids[1], 'server-generated resources must be unique'


def test_bind_empty_resource_is_generated(server, user):
    """An empty <resource/> counts as none (RFC 6120 7.6.1)."""
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password)[0] == 'success'
        s.open()
        s.send(f"<iq type='set' id='b'><bind xmlns='{NS_BIND}'><resource></resource></bind></iq>")
        resp = s.wait_for(lambda e: e.get('id') == 'b')
        if resp.get('type') == 'result':
            full = resp.find(f'{q(NS_BIND, "bind")}/{q(NS_BIND, "jid")}').text
            assert full.split('/', 1)[1]
        else:
            # a server may also treat it as an unusable resource
            assert error_condition(resp)[1] == 'bad-request'


def test_bind_resource_too_long(server, user):
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password)[0] == 'success'
        s.open()
        s.send(f"<iq type='set' id='b'><bind xmlns='{NS_BIND}'><resource>{'r' * 1100}</resource></bind></iq>")
        resp = s.wait_for(lambda e: e.get('id') == 'b')
        assert resp.get('type') == 'error'
        assert error_condition(resp) == ('modify', 'bad-request')


def test_bind_conflict_replaces_old_session(server, user):
    """Binding a full JID in use: the old session gets a <conflict/> stream
    error and is closed; the new one works."""
    with server.raw() as old, server.raw() as new:
        assert old.login(user, resource='same') == f'{user.jid}/same'
        assert new.login(user, resource='same') == f'{user.jid}/same'
        old.expect_stream_error('conflict')
        ping_ok(new)
        # and stanzas to the full JID now reach the new session
        new.send(f"<message to='{user.jid}/same' id='m1'><body>to myself</body></message>")
        msg = new.wait_for(lambda e: e.tag == q(NS_CLIENT, 'message'))
        assert msg.get('id') == 'm1'


async def test_bind_conflict_slixmpp(server, user):
    first = server.client(user, 'dup')
    await first.start()
    second = server.client(user, 'dup')
    await second.start()
    await first.wait(lambda _s: first.stream_errors, what='stream error')
    assert first.stream_errors[0]['condition'] == 'conflict'
    resp = await second.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
    assert resp['type'] == 'result'
    await second.stop()


async def test_two_resources_coexist(server, user):
    a = await server.client(user, 'one').start()
    b = await server.client(user, 'two').start()
    a.send_message(mto=f'{user.jid}/two', mbody='hello two')
    msg = await b.wait(lambda s: s.xml.tag == q(NS_CLIENT, 'message'))
    assert msg['body'] == 'hello two'
    assert str(msg['from']) == f'{user.jid}/one'
    await a.stop()
    await b.stop()


# -- disco, ping, version --------------------------------------------------

async def test_disco_info_server(server, user):
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert resp['type'] == 'result', str(resp)
    assert str(resp['from']) == DOMAIN
    assert ('server', 'im') in identities(resp)
    feats = features(resp)
    for var in (NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION):
        assert var in feats, f'{var} missing from {feats}'
    await c.stop()


async def test_disco_items_server(server, user):
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=DOMAIN)
    assert resp['type'] == 'result', str(resp)
    assert resp.xml.find(q(NS_DISCO_ITEMS, 'query')) is not None
    await c.stop()


async def test_disco_info_own_account(server, user):
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=user.jid)
    assert resp['type'] == 'result', str(resp)
    assert str(resp['from']) == user.jid
    assert ('account', 'registered') in identities(resp)
    await c.stop()


async def test_disco_info_without_to_is_own_account(server, user):
    """RFC 6120 8.1.1.1: no 'to' means the user's own bare JID."""
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>")
    assert resp['type'] == 'result', str(resp)
    assert ('account', 'registered') in identities(resp)
    await c.stop()


async def test_disco_items_own_account(server, user):
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=user.jid)
    assert resp['type'] == 'result', str(resp)
    await c.stop()


async def test_ping_server(server, user):
    c = await server.client(user).start()
    rtt = await c['xep_0199'].ping(DOMAIN, timeout=10)
    assert rtt is not None and rtt < 10
    resp = await c.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
    assert resp['type'] == 'result'
    assert len(resp.xml) == 0, 'ping result carries no payload'
    await c.stop()


async def test_version_server(server, user):
    c = await server.client(user).start()
    resp = await c.iq(f"<query xmlns='{NS_VERSION}'/>", to=DOMAIN)
    assert resp['type'] == 'result', str(resp)
    query = resp.xml.find(q(NS_VERSION, 'query'))
    name = query.find(q(NS_VERSION, 'name'))
    version = query.find(q(NS_VERSION, 'version'))
    assert name is not None and name.text
    assert version is not None and version.text
    if server.kind == 'roost':
        assert name.text.lower().startswith('roost')
    await c.stop()


# -- keepalives -------------------------------------------------------------

def test_whitespace_keepalive_from_client(server, user):
    with server.raw() as s:
        s.login(user)
        for _ in range(5):
            s.send(' ')
            s.send('\n')
        s.send(' \r\n\t ')
        ping_ok(s)


@pytest.mark.roost_only
def test_whitespace_keepalive_from_server(server_factory, make_user):
    srv = server_factory('keepalive', keepalive=1)
    user = make_user(srv=srv)
    with srv.raw() as s:
        s.login(user)
        before = len(s.raw)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(s.raw) == before:
            try:
                s._recv(time.monotonic() + 1)
            except TimeoutError:
                pass
        tail = s.raw[before:]
        assert tail, 'no keepalive within 5 s with keepalive = 1'
        assert tail.strip() == b'', f'keepalive must be whitespace: {tail!r}'
        ping_ok(s)


# -- IQ errors ----------------------------------------------------------------

async def test_iq_unknown_namespace_to_server(server, user):
    c = await server.client(user).start()
    resp = await c.iq("<query xmlns='urn:example:no-such-thing'/>", to=DOMAIN)
    assert resp['type'] == 'error'
    etype, cond = error_condition(resp)
    assert cond in ('service-unavailable', 'feature-not-implemented'), cond
    if server.kind == 'roost':
        assert (etype, cond) == ('cancel', 'service-unavailable')
    # the error echoes the id and comes from the server
    assert str(resp['from']) in (DOMAIN, '')
    await c.stop()


async def test_iq_unknown_namespace_set_to_account(server, user):
    c = await server.client(user).start()
    resp = await c.iq("<query xmlns='urn:example:nope'/>", type='set', to=user.jid)
    assert resp['type'] == 'error'
    assert error_condition(resp)[1] in ('service-unavailable', 'feature-not-implemented')
    await c.stop()


def test_iq_get_without_child(server, user):
    with server.raw() as s:
        s.login(user)
        s.send(f"<iq type='get' id='empty1' to='{DOMAIN}'/>")
        resp = s.wait_for(lambda e: e.get('id') == 'empty1')
        assert resp.get('type') == 'error', ET.tostring(resp)
        assert error_condition(resp) == ('modify', 'bad-request')
        ping_ok(s)


def test_iq_get_with_two_children(server, user):
    with server.raw() as s:
        s.login(user)
        s.send(f"<iq type='get' id='two1' to='{DOMAIN}'><ping xmlns='{NS_PING}'/>"
               f"<query xmlns='{NS_VERSION}'/></iq>")
        resp = s.wait_for(lambda e: e.get('id') == 'two1')
        assert resp.get('type') == 'error', ET.tostring(resp)
        assert error_condition(resp) == ('modify', 'bad-request')


def test_iq_result_to_server_is_ignored(server, user):
    """An unsolicited result or error IQ is dropped, never answered."""
    with server.raw() as s:
        s.login(user)
        s.send(f"<iq type='result' id='stray' to='{DOMAIN}'/>")
        s.send(f"<iq type='error' id='stray2' to='{DOMAIN}'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        ping_ok(s)
        assert not [e for e in s.elements if e.get('id') in ('stray', 'stray2')]
        assert b"id='stray'" not in s.raw and b'id="stray"' not in s.raw


def test_iq_bad_type(server, user):
    with server.raw() as s:
        s.login(user)
        s.send(f"<iq type='fetch' id='bt1' to='{DOMAIN}'><ping xmlns='{NS_PING}'/></iq>")
        try:
            resp = s.wait_for(lambda e: e.get('id') == 'bt1' or e.tag.endswith('}error'), timeout=5)
        except Exception:
            pytest.fail('no answer to an IQ with an invalid type')
        if resp.tag == q(NS_CLIENT, 'iq'):
            assert resp.get('type') == 'error'
            assert error_condition(resp)[1] == 'bad-request'
        else:
            # a stream error is acceptable too
            assert resp.tag.endswith('}error')
