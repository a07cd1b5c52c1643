"""Modules switched off in the config are not offered: their features are
not advertised in disco#info and their IQs get service-unavailable, as if
the server did not have them ([mam] enabled = false, [offline] mode =
off)."""

import pytest

from helpers import DOMAIN, NS_DISCO_INFO, NS_MAM, NS_OFFLINE, NS_SID, RawStream, error_cond, q

pytestmark = pytest.mark.roost_only


def features(stream, to):
    r = stream.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=to)
    assert r.get('type') == 'result'
    return {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}


def test_switched_on_by_default(server, user):
    s = RawStream(server)
    s.login(user)
    assert {NS_MAM, NS_SID} <= features(s, user.jid)
    assert {NS_OFFLINE, 'msgoffline'} <= features(s, DOMAIN)
    s.close()


def test_switched_off_modules_are_not_offered(server_factory, make_user):
    srv = server_factory('switches', sections={'mam': {'enabled': 'false'},
                                               'offline': {'mode': 'off'}})
    u = make_user(srv=srv)
    s = RawStream(srv)
    s.login(u)
    account = features(s, u.jid)
    server = features(s, DOMAIN)
    assert NS_MAM not in account and NS_SID not in account
    assert NS_OFFLINE not in account
    assert NS_OFFLINE not in server and 'msgoffline' not in server
    # Still there: what is not switched off.
    assert NS_DISCO_INFO in server
    r = s.iq(f"<query xmlns='{NS_MAM}'/>", type='set')
    assert error_cond(r) == 'service-unavailable'
    r = s.iq(f"<offline xmlns='{NS_OFFLINE}'><fetch/></offline>", type='get')
    assert error_cond(r) == 'service-unavailable'
    s.close()


def test_tls_compact_off_keeps_openssl_records(server_factory, make_user):
    """[c2s] tls_compact = false: the whole connection stays with OpenSSL;
    a logged-in stream works as with the default (where roost takes the
    TLS 1.3 records over after SASL)."""
    srv = server_factory('nocompact', sections={'c2s': {'tls_compact': 'false'}})
    u = make_user(srv=srv)
    s = RawStream(srv)
    s.login(u)
    for _ in range(3):
        r = s.iq("<ping xmlns='urn:xmpp:ping'/>", to=DOMAIN)
        assert r.get('type') == 'result'
    s.close()
