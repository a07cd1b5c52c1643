"""SASL (RFC 6120 §6) with a hand-written SCRAM client: every mechanism,
channel binding (RFC 5802, RFC 9266, XEP-0440), failures and their
conditions, and the slow-down of repeated failures."""

import base64
import ssl
import time
import xml.etree.ElementTree as ET

import pytest

from helpers import (DOMAIN, NS_SASL, NS_TLS, ScramClient, ScramError, b64,
                     q, sasl_result, tls_exporter)

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def need_mech(s, mech):
    if mech not in s.mechanisms():
        if s.server.kind != 'roost':
            pytest.skip(f'{s.server.kind} does not offer {mech}')
        pytest.fail(f'{mech} not offered: {s.mechanisms()}')


def bind_works(s, user, resource='sasl'):
    s.open()
    assert s.bind(resource) == f'{user.jid}/{resource}'


@pytest.mark.parametrize('mech', ['SCRAM-SHA-1', 'SCRAM-SHA-256'])
def test_scram_success(server, user, mech):
    with server.raw() as s:
        s.secure()
        need_mech(s, mech)
        kind, cond = s.scram(mech, user.localpart, user.password)  # checks v=
        assert (kind, cond) == ('success', None)
        bind_works(s, user)


@pytest.mark.parametrize('mech', ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'])
def test_scram_plus_tls_unique_tls12(server, user, mech):
    with server.raw() as s:
        s.secure(tls_max=TLS12)
        assert s.sock.version() == 'TLSv1.2'
        need_mech(s, mech)
        assert s.scram(mech, user.localpart, user.password, cb_type='tls-unique') \
            == ('success', None)
        bind_works(s, user)


@pytest.mark.parametrize('mech', ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'])
def test_scram_plus_tls_exporter_tls13(server, user, mech):
    with server.raw() as s:
        s.secure(tls_max=TLS13)
        assert s.sock.version() == 'TLSv1.3'
        need_mech(s, mech)
        if tls_exporter(s.sock) is None:
            pytest.skip('cannot reach SSL_export_keying_material from this Python')
        assert s.scram(mech, user.localpart, user.password, cb_type='tls-exporter') \
            == ('success', None)
        bind_works(s, user)


def test_scram_plus_on_direct_tls(server, user):
    with server.raw(direct_tls=True, tls_max=TLS12) as s:
        s.open()
        need_mech(s, 'SCRAM-SHA-256-PLUS')
        assert s.scram('SCRAM-SHA-256-PLUS', user.localpart, user.password,
                       cb_type='tls-unique') == ('success', None)


def test_scram_plus_wrong_binding_data(server, user):
    """Channel binding data from another TLS connection is refused."""
    with server.raw(tls_max=TLS12) as other:
        other.secure(tls_max=TLS12)
        foreign = other.sock.get_channel_binding('tls-unique')
    with server.raw() as s:
        s.secure(tls_max=TLS12)
        need_mech(s, 'SCRAM-SHA-1-PLUS')
        client = ScramClient('SCRAM-SHA-1-PLUS', user.localpart, user.password,
                             'tls-unique', foreign)
        elem = s.sasl_send('SCRAM-SHA-1-PLUS', client.first())
        assert elem.tag == q(NS_SASL, 'challenge'), ET.tostring(elem)
        elem = s.sasl_respond(client.final(base64.b64decode(elem.text)))
        kind, cond = sasl_result(elem)
        assert kind == 'failure'
        # RFC 5802 e=channel-bindings-dont-match: an authentication failure
        assert cond in ('not-authorized', 'malformed-request'), cond
        if server.kind == 'roost':
            assert cond == 'not-authorized'


@pytest.mark.roost_only
def test_scram_plus_unsupported_cb_type(server, user):
    """A channel binding type the server does not offer (tls-server-end-point
    is not listed by XEP-0440 here): the exchange fails."""
    with server.raw() as s:
        s.secure(tls_max=TLS13)
        if 'tls-server-end-point' in (s.cb_types() or []):
            pytest.skip('server offers tls-server-end-point')
        client = ScramClient('SCRAM-SHA-256-PLUS', user.localpart, user.password,
                             'tls-server-end-point', b'\0' * 32)
        elem = s.sasl_send('SCRAM-SHA-256-PLUS', client.first())
        if elem.tag == q(NS_SASL, 'challenge'):
            elem = s.sasl_respond(client.final(base64.b64decode(elem.text)))
        kind, cond = sasl_result(elem)
        assert kind == 'failure'
        assert cond in ('not-authorized', 'malformed-request', 'invalid-mechanism',
                        'temporary-auth-failure'), cond


def test_scram_downgrade_detected(server, user):
    """RFC 5802 §6: gs2 flag 'y' (client supports channel binding but
    thinks the server does not) while the server offers -PLUS must fail."""
    with server.raw() as s:
        s.secure()
        need_mech(s, 'SCRAM-SHA-1-PLUS')
        kind, cond = s.scram('SCRAM-SHA-1', user.localpart, user.password, gs2_flag='y,,')
        assert kind == 'failure'
        assert cond in ('not-authorized', 'malformed-request'), cond


@pytest.mark.parametrize('mech', ['SCRAM-SHA-1', 'SCRAM-SHA-256'])
def test_scram_wrong_password(server, user, mech):
    with server.raw() as s:
        s.secure()
        need_mech(s, mech)
        assert s.scram(mech, user.localpart, 'not-' + user.password) \
            == ('failure', 'not-authorized')


def test_scram_unknown_user(server):
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', 'nobody-here-xyz', 'whatever') \
            == ('failure', 'not-authorized')


def test_scram_tampered_nonce(server, user):
    with server.raw() as s:
        s.secure()
        client = ScramClient('SCRAM-SHA-1', user.localpart, user.password)
        elem = s.sasl_send('SCRAM-SHA-1', client.first())
        assert elem.tag == q(NS_SASL, 'challenge')
        server_first = base64.b64decode(elem.text)
        final = client.final(server_first).decode()
        final = final.replace(',r=', ',r=X', 1)
        kind, cond = sasl_result(s.sasl_respond(final.encode()))
        assert kind == 'failure'
        assert cond in ('not-authorized', 'malformed-request'), cond


def test_scram_server_signature_verifies(server, user):
    """The v= the server returns is checked by ScramClient.verify; a
    flipped copy must not verify (guards the test client itself)."""
    with server.raw() as s:
        s.secure()
        client = ScramClient('SCRAM-SHA-1', user.localpart, user.password)
        elem = s.sasl_send('SCRAM-SHA-1', client.first())
        elem = s.sasl_respond(client.final(base64.b64decode(elem.text)))
        assert elem.tag == q(NS_SASL, 'success'), ET.tostring(elem)
        final = base64.b64decode(elem.text)
        assert final.startswith(b'v=')
        assert client.verify(final)
        bad = bytearray(client.server_signature)
        bad[0] ^= 1
        with pytest.raises(ScramError):
            client.verify(b'v=' + base64.b64encode(bytes(bad)))


def test_plain_success_over_tls(server, user):
    with server.raw() as s:
        s.secure()
        assert s.plain(user.localpart, user.password) == ('success', None)
        bind_works(s, user)


def test_plain_with_own_authzid(server, user):
    with server.raw() as s:
        s.secure()
        assert s.plain(user.localpart, user.password, authzid=user.jid) == ('success', None)


def test_plain_with_foreign_authzid(server, users):
    a, b = users
    with server.raw() as s:
        s.secure()
        kind, cond = s.plain(a.localpart, a.password, authzid=b.jid)
        assert kind == 'failure'
        assert cond in ('invalid-authzid', 'not-authorized'), cond


def test_plain_wrong_password(server, user):
    with server.raw() as s:
        s.secure()
        assert s.plain(user.localpart, user.password + 'x') == ('failure', 'not-authorized')


def test_plain_unknown_user(server):
    with server.raw() as s:
        s.secure()
        assert s.plain('no-such-user-q', 'pw') == ('failure', 'not-authorized')


def test_retry_after_failure_on_same_stream(server, user):
    """RFC 6120 6.4.5: after a failure the client may try again."""
    with server.raw() as s:
        s.secure()
        assert s.plain(user.localpart, 'wrong')[0] == 'failure'
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password) == ('success', None)


def test_bad_base64(server):
    with server.raw() as s:
        s.secure()
        s.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>!!!not*base64!!!</auth>")
        assert sasl_result(s.next_element()) == ('failure', 'incorrect-encoding')


@pytest.mark.parametrize('payload', [b'garbage', b'n,,x=y', b'q,,n=u,r=abc', b'n,,n=,r='],
                         ids=['garbage', 'no-user', 'bad-gs2', 'empty-fields'])
def test_scram_malformed_first_message(server, payload):
    with server.raw() as s:
        s.secure()
        kind, cond = sasl_result(s.sasl_send('SCRAM-SHA-1', payload))
        assert kind == 'failure'
        assert cond in ('malformed-request', 'not-authorized'), cond
        if server.kind == 'roost':
            assert cond == 'malformed-request'


def test_scram_malformed_final_message(server, user):
    with server.raw() as s:
        s.secure()
        client = ScramClient('SCRAM-SHA-1', user.localpart, user.password)
        elem = s.sasl_send('SCRAM-SHA-1', client.first())
        assert elem.tag == q(NS_SASL, 'challenge')
        kind, cond = sasl_result(s.sasl_respond(b'this is not scram'))
        assert kind == 'failure'
        assert cond in ('malformed-request', 'not-authorized'), cond
        if server.kind == 'roost':
            assert cond == 'malformed-request'


def test_plain_malformed(server):
    with server.raw() as s:
        s.secure()
        kind, cond = sasl_result(s.sasl_send('PLAIN', b'no separators here'))
        assert kind == 'failure'
        assert cond in ('malformed-request', 'not-authorized'), cond
        if server.kind == 'roost':
            assert cond == 'malformed-request'


def test_unknown_mechanism(server):
    with server.raw() as s:
        s.secure()
        assert sasl_result(s.sasl_send('X-NO-SUCH-MECH', b'abc')) \
            == ('failure', 'invalid-mechanism')


def test_abort(server, user):
    with server.raw() as s:
        s.secure()
        client = ScramClient('SCRAM-SHA-1', user.localpart, user.password)
        elem = s.sasl_send('SCRAM-SHA-1', client.first())
        assert elem.tag == q(NS_SASL, 'challenge')
        s.send(f"<abort xmlns='{NS_SASL}'/>")
        assert sasl_result(s.next_element()) == ('failure', 'aborted')
        # and the stream is still usable for a fresh attempt
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password) == ('success', None)


def test_auth_without_initial_response(server, user):
    """SCRAM started with an empty challenge round (no initial response)."""
    with server.raw() as s:
        s.secure()
        client = ScramClient('SCRAM-SHA-1', user.localpart, user.password)
        elem = s.sasl_send('SCRAM-SHA-1', None)
        assert elem.tag == q(NS_SASL, 'challenge'), ET.tostring(elem)
        assert not (elem.text or '').strip() or elem.text.strip() == '='
        elem = s.sasl_respond(client.first())
        assert elem.tag == q(NS_SASL, 'challenge'), ET.tostring(elem)
        elem = s.sasl_respond(client.final(base64.b64decode(elem.text)))
        assert sasl_result(elem) == ('success', None)
        client.verify(base64.b64decode(elem.text))


# -- require_tls = false ----------------------------------------------------

@pytest.fixture(scope='module')
def plain_server():
    from conftest import new_server
    srv = new_server('notls', require_tls=False)
    srv.start()
    yield srv
    srv.stop(check=True)
    srv.cleanup()


def test_no_plain_without_tls(plain_server, make_user):
    user = make_user(srv=plain_server)
    with plain_server.raw() as s:
        s.open()
        starttls = s.features.find(q(NS_TLS, 'starttls'))
        assert starttls is not None, 'STARTTLS still offered'
        assert starttls.find(q(NS_TLS, 'required')) is None
        mechs = s.mechanisms()
        assert 'SCRAM-SHA-1' in mechs
        assert 'PLAIN' not in mechs, 'PLAIN offered on a plaintext stream'
        assert not [m for m in mechs if m.endswith('-PLUS')], '-PLUS without TLS'
        kind, cond = s.plain(user.localpart, user.password)
        assert kind == 'failure'
        assert cond in ('invalid-mechanism', 'encryption-required'), cond


def test_scram_without_tls_when_allowed(plain_server, make_user):
    user = make_user(srv=plain_server)
    with plain_server.raw() as s:
        s.open()
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password) == ('success', None)
        bind_works(s, user)


def test_plain_offered_after_tls_when_tls_optional(plain_server):
    with plain_server.raw() as s:
        s.secure()
        assert 'PLAIN' in s.mechanisms()


@pytest.mark.roost_only
def test_allow_plain_false(server_factory, make_user):
    srv = server_factory('noplain', allow_plain=False)
    user = make_user(srv=srv)
    with srv.raw() as s:
        s.secure()
        assert 'PLAIN' not in s.mechanisms()
        assert 'SCRAM-SHA-256' in s.mechanisms()
        assert sasl_result(s.sasl_send('PLAIN', f'\0{user.localpart}\0{user.password}'.encode())) \
            == ('failure', 'invalid-mechanism')


@pytest.mark.roost_only
def test_auth_timeout(server_factory):
    srv = server_factory('authto', auth_timeout=1)
    with srv.raw() as s:
        s.open()
        start = time.monotonic()
        err = None
        try:
            while True:
                elem = s.next_element(timeout=8)
                if elem.tag.endswith('}error'):
                    err = elem
                    break
        except Exception:
            pass
        s.wait_closed(timeout=8)
        assert time.monotonic() - start < 8
        if err is not None:
            names = [c.tag.split('}')[1] for c in err if not c.tag.endswith('}text')]
            assert names[0] in ('connection-timeout', 'policy-violation'), names


# -- failures slow down ------------------------------------------------------

def _timed_plain_failure(srv, user, password, source='127.0.0.1'):
    with srv.raw(source=source) as s:
        s.secure()
        start = time.monotonic()
        kind, cond = s.plain(user.localpart, password)
        took = time.monotonic() - start
        assert (kind, cond) == ('failure', 'not-authorized')
        return took


@pytest.fixture(scope='module')
def throttle_server():
    from conftest import new_server
    srv = new_server('throttle', auth_failure_delay_ms=200, auth_failure_max_delay_ms=3200)
    srv.start()
    yield srv
    srv.stop(check=True)
    srv.cleanup()


@pytest.mark.slow
@pytest.mark.roost_only
def test_failures_slow_down_per_account(throttle_server, make_user):
    victim = make_user('victim', srv=throttle_server)
    times = [_timed_plain_failure(throttle_server, victim, 'wrong', source='127.0.0.11')]
    for _ in range(4):
        times.append(_timed_plain_failure(throttle_server, victim, 'wrong', source='127.0.0.11'))
    assert times[4] >= times[0] + 0.5, f'no slow-down: {times}'
    # per account: the same account from another address is slow too
    other_addr = _timed_plain_failure(throttle_server, victim, 'wrong', source='127.0.0.12')
    assert other_addr >= times[0] + 0.5, f'per-account slow-down missing: {times} {other_addr}'
    # the right password still gets in (perhaps after a delay, within WAIT)
    with throttle_server.raw(source='127.0.0.13') as s:
        s.secure()
        assert s.plain(victim.localpart, victim.password) == ('success', None)


@pytest.mark.slow
@pytest.mark.roost_only
def test_failures_slow_down_per_address(throttle_server, make_user):
    accounts = [make_user('spray', srv=throttle_server) for _ in range(5)]
    times = [_timed_plain_failure(throttle_server, a, 'wrong', source='127.0.0.21')
             for a in accounts]
    assert times[4] >= times[0] + 0.5, f'no per-address slow-down: {times}'
    # another address with a fresh account is not slowed by them
    fresh = make_user('fresh', srv=throttle_server)
    t = _timed_plain_failure(throttle_server, fresh, 'wrong', source='127.0.0.22')
    assert t < times[4], f'unrelated address slowed down: {t} vs {times}'
