"""XEP-0202 entity time, for the server: <utc/> in UTC with 'Z', <tzo/>
the server's offset."""

import datetime
import re
import time

import pytest

from helpers import DOMAIN, NS_DISCO_INFO, error_of, q, tostr
from streams import Session

NS_TIME = 'urn:xmpp:time'

pytestmark = pytest.mark.roost_only


def test_server_time(server, user):
    s = Session(server, user, presence=False)
    before = time.time()
    r = s.iq(f"<time xmlns='{NS_TIME}'/>", to=DOMAIN)
    after = time.time()
    assert r.get('type') == 'result' and r.get('from') == DOMAIN, tostr(r)
    t = r.find(q(NS_TIME, 'time'))
    tzo, utc = t.findtext(q(NS_TIME, 'tzo')), t.findtext(q(NS_TIME, 'utc'))
    assert re.fullmatch(r'[+-]\d\d:\d\d', tzo), tzo
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', utc), utc
    stamp = datetime.datetime.strptime(utc, '%Y-%m-%dT%H:%M:%SZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert before - 1 <= stamp <= after + 1, (utc, before, after)
    # The server runs in this environment's time zone.
    off = time.localtime().tm_gmtoff
    assert tzo == f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"


def test_time_zone_offset(server_factory, make_user, monkeypatch):
    # POSIX form (no tzdata needed): five and a half hours east of UTC.
    monkeypatch.setenv('TZ', 'IST-5:30')
    srv = server_factory('timetz')
    s = Session(srv, make_user('u', srv=srv), presence=False)
    r = s.iq(f"<time xmlns='{NS_TIME}'/>", to=DOMAIN)
    assert r.find(q(NS_TIME, 'time')).findtext(q(NS_TIME, 'tzo')) == '+05:30', tostr(r)


def test_feature_and_errors(server, make_user):
    u, other = make_user('a'), make_user('b')
    s = Session(server, u, presence=False)
    r = s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    assert NS_TIME in {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}
    r = s.iq(f"<time xmlns='{NS_TIME}'/>", type='set', to=DOMAIN)
    assert error_of(r)[:2] == ('modify', 'bad-request'), tostr(r)
    # A user's time is the client's to tell: the server does not answer
    # for a bare JID.
    r = s.iq(f"<time xmlns='{NS_TIME}'/>", to=other.jid)
    assert error_of(r)[:2] == ('cancel', 'service-unavailable'), tostr(r)
