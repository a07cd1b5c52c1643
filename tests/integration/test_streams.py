"""Stream level, byte exact (raw sockets): headers, features before and
after TLS and authentication, direct TLS, and stream errors (RFC 6120 §4.9)
that close only the offending connection."""

import ssl
import xml.etree.ElementTree as ET

import pytest

from helpers import (DOMAIN, NS_BIND, NS_CLIENT, NS_PING, NS_SASL, NS_SESSION,
                     NS_STREAM, NS_TLS, NS_XML, StreamClosed, q)

ALL_MECHS = {'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256',
             'SCRAM-SHA-1', 'PLAIN'}


def ping_ok(stream):
    """The stream still works: a ping to the server gets a result."""
    resp = stream.iq(f"<ping xmlns='{NS_PING}'/>", to=DOMAIN)
    assert resp.get('type') == 'result', ET.tostring(resp)


@pytest.fixture
def bystander(server, make_user):
    """Another logged-in connection that must survive every error test."""
    s = server.raw()
    s.login(make_user('by'), resource='bystander')
    yield s
    ping_ok(s)
    s.close()


def test_stream_header_attributes(server):
    with server.raw() as s:
        header = s.open()
        assert header.get('from') == DOMAIN
        assert header.get('version') == '1.0'
        assert header.get('id'), 'stream id missing'
        assert header.get(q(NS_XML, 'lang')), 'xml:lang missing'
        assert s.header_elem.tag == q(NS_STREAM, 'stream')
        first_id = header['id']
    with server.raw() as s:
        assert s.open()['id'] != first_id, 'stream ids must be unique'


def test_stream_header_without_to_is_served(server):
    """RFC 6120 4.7.2: 'to' SHOULD be present; a server may then use its
    default domain or host-unknown. Either way it answers with a header."""
    with server.raw() as s:
        s.open(to=None, read_features=False)
        assert s.header is not None


def test_features_before_tls_require_starttls(server):
    with server.raw() as s:
        s.open()
        starttls = s.features.find(q(NS_TLS, 'starttls'))
        assert starttls is not None, ET.tostring(s.features)
        assert starttls.find(q(NS_TLS, 'required')) is not None, \
            'require_tls: <starttls/> must carry <required/>'
        assert s.mechanisms() == [], 'no SASL mechanisms before TLS when TLS is required'
        assert s.features.find(q(NS_BIND, 'bind')) is None


@pytest.mark.roost_only
def test_features_after_tls13(server):
    with server.raw() as s:
        s.secure(tls_max=ssl.TLSVersion.TLSv1_3)
        assert s.sock.version() == 'TLSv1.3'
        assert set(s.mechanisms()) == ALL_MECHS
        assert s.features.find(q(NS_TLS, 'starttls')) is None, 'starttls offered twice'
        types = s.cb_types()
        assert types is not None, 'XEP-0440 <sasl-channel-binding/> missing'
        assert 'tls-exporter' in types
        # RFC 9266 leaves tls-unique undefined for TLS 1.3; roost still
        # accepts (and lists) it there on purpose, because slixmpp uses
        # tls-unique whatever the TLS version (commit a5527bb).


@pytest.mark.roost_only
def test_features_after_tls12(server):
    with server.raw() as s:
        s.secure(tls_max=ssl.TLSVersion.TLSv1_2)
        assert s.sock.version() == 'TLSv1.2'
        assert set(s.mechanisms()) == ALL_MECHS
        types = s.cb_types()
        assert types is not None, 'XEP-0440 <sasl-channel-binding/> missing'
        assert 'tls-unique' in types


def test_scram_offered_after_tls(server):
    """Server-agnostic part of the above (Prosody 0.12 offers fewer)."""
    with server.raw() as s:
        s.secure()
        mechs = s.mechanisms()
        assert 'SCRAM-SHA-1' in mechs
        assert 'PLAIN' in mechs


@pytest.mark.parametrize('alpn', [True, False], ids=['alpn', 'no-alpn'])
def test_direct_tls_port(server, alpn):
    """XEP-0368: TLS from the first byte, no STARTTLS offered."""
    with server.raw(direct_tls=True, alpn=alpn) as s:
        s.open()
        assert s.tls
        assert s.features.find(q(NS_TLS, 'starttls')) is None
        assert 'SCRAM-SHA-1' in s.mechanisms()


def test_direct_tls_login(server, user):
    with server.raw(direct_tls=True) as s:
        full = s.login(user, resource='dtls')
        assert full == f'{user.jid}/dtls'
        ping_ok(s)


def test_features_after_auth(server, user):
    with server.raw() as s:
        s.secure()
        kind, cond = s.scram('SCRAM-SHA-1', user.localpart, user.password)
        assert kind == 'success', cond
        s.open()
        f = s.features
        assert f.find(q(NS_BIND, 'bind')) is not None, ET.tostring(f)
        assert s.mechanisms() == []
        assert f.find(q(NS_TLS, 'starttls')) is None
        session = f.find(q(NS_SESSION, 'session'))
        if session is not None:
            # RFC 6121 drops session establishment; if advertised it must be
            # marked optional so clients may skip it.
            assert session.find(q(NS_SESSION, 'optional')) is not None
        full = s.bind('r1')
        assert full == f'{user.jid}/r1'
        if session is not None:
            resp = s.iq(f"<session xmlns='{NS_SESSION}'/>", type='set')
            assert resp.get('type') == 'result'


def test_starttls_twice_is_refused(server):
    """After TLS, <starttls/> is not offered; sending it anyway must not
    crash anything (a stream error or a failure is fine)."""
    with server.raw() as s:
        s.secure()
        s.send(f"<starttls xmlns='{NS_TLS}'/>")
        try:
            elem = s.next_element()
        except StreamClosed:
            return
        assert elem.tag in (q(NS_TLS, 'failure'), q(NS_STREAM, 'error')), ET.tostring(elem)


# -- stream errors ------------------------------------------------------------

def test_host_unknown(server, bystander):
    with server.raw() as s:
        s.open(to='no-such-host.example', read_features=False)
        # RFC 6120 4.9.1.2: the server still sends its stream header first.
        assert s.header is not None
        s.expect_stream_error('host-unknown')


def test_invalid_stream_namespace(server, bystander):
    with server.raw() as s:
        s.send(f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' "
               f"xmlns='{NS_CLIENT}' xmlns:stream='urn:example:not-streams'>")
        s.expect_stream_error('invalid-namespace')


def test_invalid_content_namespace(server, bystander):
    with server.raw() as s:
        s.open(ns='jabber:example:wrong', read_features=False)
        s.expect_stream_error('invalid-namespace')


def test_higher_version(server, bystander):
    """RFC 6120 4.7.5: to a higher version the server answers with the
    lower of both (1.0), or refuses with unsupported-version."""
    with server.raw() as s:
        s.open(version='2.0', read_features=False)
        if s.header.get('version') == '1.0':
            feats = s.next_element()
            assert feats.tag == q(NS_STREAM, 'features')
        else:
            s.expect_stream_error('unsupported-version')


def test_dtd_with_entity_declaration(server, bystander):
    with server.raw() as s:
        s.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY boom 'boom'>]>"
               f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='{NS_CLIENT}' "
               f"xmlns:stream='{NS_STREAM}'>")
        s.expect_stream_error('restricted-xml')


def test_bare_dtd(server, bystander):
    with server.raw() as s:
        s.send("<?xml version='1.0'?><!DOCTYPE stream:stream>"
               f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='{NS_CLIENT}' "
               f"xmlns:stream='{NS_STREAM}'>")
        s.expect_stream_error('restricted-xml')


@pytest.mark.parametrize('payload', [
    '<!-- a comment -->',
    '<message><body>x<!-- inner comment --></body></message>',
    '<?some-pi data?>',
    '<message><?inner-pi x?></message>',
], ids=['comment', 'comment-in-stanza', 'pi', 'pi-in-stanza'])
def test_restricted_xml_after_auth(server, user, bystander, payload):
    with server.raw() as s:
        s.login(user)
        s.send(payload)
        s.expect_stream_error('restricted-xml')


def test_restricted_xml_before_auth(server, bystander):
    with server.raw() as s:
        s.open()
        s.send('<!-- hello -->')
        s.expect_stream_error('restricted-xml')


@pytest.mark.parametrize('payload,allowed', [
    ('<message><body>unclosed</message>', ('not-well-formed',)),
    ('<message to="a@localhost" to="b@localhost"/>', ('not-well-formed',)),
    # an undefined entity may also be reported as restricted-xml
    ('<message><body>&undefined;</body></message>', ('not-well-formed', 'restricted-xml')),
    ('<message>\x00</message>', ('not-well-formed',)),
    # an unbound prefix is also a namespace error (bad-namespace-prefix)
    ('<foo:bar/>', ('not-well-formed', 'bad-namespace-prefix')),
], ids=['mismatched-tag', 'duplicate-attr', 'undefined-entity', 'nul-char', 'unbound-prefix'])
def test_not_well_formed(server, user, bystander, payload, allowed):
    with server.raw() as s:
        s.login(user)
        s.send(payload)
        expect_any_stream_error(s, allowed)


def expect_any_stream_error(s, allowed):
    """Like RawStream.expect_stream_error, accepting any of `allowed`."""
    err = None
    while err is None:
        elem = s.next_element()
        if elem.tag == q(NS_STREAM, 'error'):
            err = elem
    names = [c.tag.split('}', 1)[1] for c in err if not c.tag.endswith('}text')]
    assert names and names[0] in allowed, f'expected one of {allowed}, got {ET.tostring(err)!r}'
    s.elements.insert(0, err)
    return s.expect_stream_error(names[0])


def test_invalid_utf8(server, user, bystander):
    with server.raw() as s:
        s.login(user)
        s.send(b"<message><body>\xff\xfe bad</body></message>")
        expect_any_stream_error(s, ('not-well-formed', 'unsupported-encoding', 'bad-format'))


@pytest.mark.roost_only
def test_oversized_stanza(server, user, bystander):
    """Default cap 256 KiB; a 300 KB stanza is a policy-violation."""
    with server.raw() as s:
        s.login(user)
        body = 'x' * (300 * 1024)
        try:
            s.send(f"<message to='{user.jid}'><body>{body}</body></message>")
        except OSError:
            pass  # the server may cut us off mid-send; the error is already queued
        s.expect_stream_error('policy-violation')


@pytest.mark.roost_only
def test_oversized_stanza_never_completed(server, user, bystander):
    """The cap applies to a stanza still being received, not only to a
    complete one: an endless text node must not buffer forever."""
    with server.raw() as s:
        s.login(user)
        try:
            s.send(f"<message to='{user.jid}'><body>")
            for _ in range(40):
                s.send('y' * 10240)
        except OSError:
            pass
        s.expect_stream_error('policy-violation')


@pytest.mark.roost_only
def test_nesting_too_deep(server, user, bystander):
    with server.raw() as s:
        s.login(user)
        try:
            s.send(f"<message to='{user.jid}'>" + "<x xmlns='urn:example:deep'>" * 200)
        except OSError:
            pass
        s.expect_stream_error('policy-violation')


@pytest.mark.roost_only
def test_too_many_attributes(server, user, bystander):
    attrs = ' '.join(f"a{i}='v'" for i in range(100))
    with server.raw() as s:
        s.login(user)
        s.send(f"<message to='{user.jid}'><x xmlns='urn:example:attrs' {attrs}/></message>")
        s.expect_stream_error('policy-violation')


def test_nesting_within_cap_is_fine(server, user, bystander):
    """A stanza nested 20 deep is ordinary XML and must be accepted."""
    with server.raw() as s:
        s.login(user, resource='deep')
        inner = "<x xmlns='urn:example:deep'>" * 20 + '</x>' * 20
        s.send(f"<message to='{user.jid}/deep' id='d1'><body>deep</body>{inner}</message>")
        msg = s.wait_for(lambda e: e.tag == q(NS_CLIENT, 'message'))
        assert msg.get('id') == 'd1'
        ping_ok(s)


def test_stanza_before_auth(server, bystander):
    with server.raw() as s:
        s.secure()
        s.send(f"<message to='someone@{DOMAIN}'><body>hi</body></message>")
        s.expect_stream_error('not-authorized')


def test_stanza_before_tls(server, bystander):
    """Anything but <starttls/> before TLS when TLS is required."""
    with server.raw() as s:
        s.open()
        s.send(f"<iq type='get' id='x'><ping xmlns='{NS_PING}'/></iq>")
        expect_any_stream_error(s, ('not-authorized', 'policy-violation'))


def test_iq_before_bind(server, user, bystander):
    """After SASL but before resource binding a stanza is not-authorized
    (RFC 6120 7.1)."""
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password)[0] == 'success'
        s.open()
        s.send(f"<message to='x@{DOMAIN}'><body>early</body></message>")
        expect_any_stream_error(s, ('not-authorized',))


def test_stream_error_on_direct_tls(server, user, bystander):
    with server.raw(direct_tls=True) as s:
        s.login(user)
        s.send('<message><body>oops</message>')
        s.expect_stream_error('not-well-formed')


def test_client_close_is_answered(server, user):
    """RFC 6120 4.4: closing our stream gets the server's close tag and
    the connection ends."""
    with server.raw() as s:
        s.login(user)
        s.send('</stream:stream>')
        s.wait_closed()
        assert s.closed_tag, 'server did not send </stream:stream>'


def test_many_bad_connections_do_not_hurt(server, user):
    """Twenty broken connections in a row; a good one still logs in."""
    for i in range(20):
        with server.raw() as s:
            s.send(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \xff<<<")
            try:
                s.wait_closed(timeout=5)
            except TimeoutError:
                pytest.fail(f'connection {i} with garbage not closed')
    with server.raw() as s:
        s.login(user)
        ping_ok(s)
