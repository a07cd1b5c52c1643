"""The login path as the login benchmark drives it (issue 5): stream
restarts after TLS and SASL, header and features, binding right after
authentication, with the account loaded fresh or already loaded."""

import xml.etree.ElementTree as ET

import pytest

from helpers import DOMAIN, NS_BIND, NS_SASL, NS_STREAM, NS_TLS, q
from offline_helpers import keyring_blob, set_keyring_blob


def mechanisms(features):
    return {m.text for m in features.iter(q(NS_SASL, 'mechanism'))}


def test_restarts_keep_the_prepared_host(server, user):
    """A restart may name the host in another case: it is still the same
    host (RFC 6120 §4.7.2 'to' is prepared), and every header answers with
    the prepared domain and a fresh stream id."""
    with server.raw() as s:
        ids = []
        h = s.open(to=DOMAIN.upper())
        assert h.get('from') == DOMAIN
        assert s.features.find(q(NS_TLS, 'starttls')) is not None
        ids.append(h.get('id'))
        s.starttls()
        h = s.open(to=DOMAIN)
        assert h.get('from') == DOMAIN
        assert 'SCRAM-SHA-1' in mechanisms(s.features), ET.tostring(s.features)
        ids.append(h.get('id'))
        kind, cond = s.scram('SCRAM-SHA-1', user.localpart, user.password)
        assert (kind, cond) == ('success', None)
        h = s.open(to=DOMAIN.capitalize())
        assert h.get('from') == DOMAIN
        assert s.features.find(q(NS_BIND, 'bind')) is not None, ET.tostring(s.features)
        ids.append(h.get('id'))
        assert s.bind('r') == f'{user.localpart}@{DOMAIN}/r'
        assert all(ids) and len(set(ids)) == 3, ids


def test_restart_naming_another_host_is_refused(server, user):
    with server.raw() as s:
        s.open()
        s.starttls()
        s.open(to='elsewhere.example', read_features=False)
        s.expect_stream_error('host-unknown')


def test_features_follow_each_header(server, user):
    """Header and features leave together; the features are the first
    element after every header, before and after TLS and SASL."""
    with server.raw() as s:
        s.open()
        assert s.features.tag == q(NS_STREAM, 'features')
        assert not s.elements, [ET.tostring(e) for e in s.elements]
        s.starttls()
        s.open()
        assert not s.elements, [ET.tostring(e) for e in s.elements]
        assert s.scram('SCRAM-SHA-1', user.localpart, user.password)[0] == 'success'
        s.open()
        assert not s.elements, [ET.tostring(e) for e in s.elements]
        assert s.bind().startswith(f'{user.localpart}@{DOMAIN}/')


def test_bind_with_account_loaded_or_not(server, user):
    """The first session loads the account at bind; a second one finds it
    loaded; after both are gone a third loads it again."""
    first, second = server.raw(), server.raw()
    try:
        assert first.login(user, resource='a') == f'{user.jid}/a'
        assert second.login(user, resource='b') == f'{user.jid}/b'
    finally:
        first.close()
        second.close()
    with server.raw() as third:
        assert third.login(user, resource='c') == f'{user.jid}/c'


@pytest.mark.roost_only
@pytest.mark.parametrize('mechanism', ['SCRAM-SHA-256', 'PLAIN'])
def test_login_with_a_keyring_that_fails(server_factory, make_user, mechanism):
    """A keyring row changed at rest: the unlock at login fails, which is an
    integrity event (logged with the reason), never a failed login nor a
    new keyring (DESIGN §5): the user logs in and binds."""
    srv = server_factory('unlock', log_level='info')
    user = make_user('kr', srv=srv)
    srv.stop(check=True)
    blob = bytearray(keyring_blob(srv, user))
    blob[-1] ^= 0x01
    set_keyring_blob(srv, user, bytes(blob))
    srv.start()
    with srv.raw() as s:
        s.secure()
        if mechanism == 'PLAIN':
            kind, cond = s.plain(user.localpart, user.password)
        else:
            kind, cond = s.scram(mechanism, user.localpart, user.password)
        assert (kind, cond) == ('success', None)
        s.open()
        assert s.bind('k') == f'{user.jid}/k'
    assert ('integrity: cannot unlock the keyring: the keyring row fails '
            'its MAC') in srv.log()
    assert keyring_blob(srv, user) == bytes(blob), 'the keyring row was replaced'
