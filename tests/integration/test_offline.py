"""Offline messages (issue 3; XEP-0160, XEP-0203, XEP-0334, DESIGN §5):
what is stored and what is bounced, delivery at initial presence with
delay stamps, oldest first, only to non-negative priority; 1000 messages
delivered complete, ordered, without duplicates and without being wiped
before they are written; a client that drops mid-delivery loses nothing;
quotas in messages and bytes, expiry, and `mode = off`."""

import signal
import socket
import time

import pytest

from conftest import add_user
from helpers import (DOMAIN, NS_CHATSTATES, NS_CLIENT, NS_DISCO_INFO, NS_HINTS,
                     NS_RECEIPTS, NS_SM, WAIT, q, stanza_error, tostr)
from offline_helpers import (OfflineStream, Sender, body_of, connect_user,
                             delay_of, deposit, is_error_msg, is_notice, is_stored_msg,
                             live_count, marker, parse_stamp, receive_offline,
                             wait_stored)
from test_session import features


def wait_live(srv, user, n, timeout=WAIT):
    """Wait until the user has exactly n live records (roost only)."""
    if srv.kind != 'roost':
        return
    deadline = time.monotonic() + timeout
    have = None
    while time.monotonic() < deadline:
        have = live_count(srv, user)
        if have == n:
            return
        time.sleep(0.05)
    raise AssertionError(f'{user.jid}: {have} live offline records, expected {n}')


# ---------------------------------------------------------------------------
# discovery

async def test_server_advertises_offline_features(server, user):
    c = await server.client(user, 'disco').start()
    resp = await c.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN)
    feats = features(resp)
    assert 'http://jabber.org/protocol/offline' in feats, feats   # XEP-0013 §2.1
    assert 'msgoffline' in feats, feats                           # XEP-0160 §5 (SHOULD)
    await c.stop()


# ---------------------------------------------------------------------------
# store and deliver

async def test_store_and_deliver_in_order_with_delay(server, users):
    """Chat, normal and untyped messages to the bare JID and to a full JID
    of an offline user are stored without an error, and delivered at the
    next login with presence: oldest first, from/id/type/payload intact,
    each with a XEP-0203 delay from the domain stamped with the deposit
    time (not the login time); then removed: never delivered twice."""
    ua, ub = users
    snd = Sender(server, ua, resource='desk')
    tag = marker()
    sent = [
        (ub.jid, 'chat', f'{tag}-1 plain'),
        (ub.jid, 'normal', f"{tag}-2 <escaped> & 'quoted' \u00e9\u4e2d\U0001F600"),
        (ub.jid, None, f'{tag}-3 untyped'),
        (f'{ub.jid}/gone', 'chat', f'{tag}-4 to a full JID'),
        (ub.jid, 'chat', f'{tag}-5 with payload'),
    ]
    t0 = time.time()
    ids = []
    for i, (to, typ, body) in enumerate(sent):
        extra = ("<x xmlns='urn:example:ext' a='v'><child>inner</child></x>"
                 f"<subject>subj-{tag}</subject>") if i == 4 else ''
        ids.append(snd.send(to, body, type=typ, id=f'{tag}-id{i}', extra=extra))
        wait_stored(server, ub, i + 1, sender=snd)
    t1 = time.time()
    errs = [e for e in snd.s.drain(0.5) if is_error_msg(e)]
    assert not errs, f'sender got an error for a stored message: {tostr(errs[0])}'
    time.sleep(1.5)          # so that a stamp taken at login would show

    b = await server.client(ub, 'b').start()
    got = []
    for _ in sent:
        got.append(await b.wait(lambda st: st.xml.tag == q(NS_CLIENT, 'message')
                                and (body_of(st.xml) or '').startswith(tag),
                                what='stored message'))
    assert [body_of(m.xml) for m in got] == [s[2] for s in sent], 'not oldest first'
    for m, (to, typ, body), id in zip(got, sent, ids):
        x = m.xml
        assert x.get('from') == snd.jid, tostr(x)
        assert x.get('id') == id, tostr(x)
        assert (x.get('type') or 'normal') == (typ or 'normal'), tostr(x)
        d = delay_of(x)
        assert d is not None, f'no XEP-0203 delay: {tostr(x)}'
        assert d.get('from') == DOMAIN, tostr(d)
        stamp = parse_stamp(d.get('stamp'))
        assert t0 - 2 <= stamp <= t1 + 1, \
            f'delay stamp {d.get("stamp")} is not the deposit time ({t0:.1f}..{t1:.1f})'
    ext = got[4].xml.find('{urn:example:ext}x')
    assert ext is not None and ext.get('a') == 'v' and \
        ext.find('{urn:example:ext}child').text == 'inner', tostr(got[4].xml)
    assert got[4].xml.find(q(NS_CLIENT, 'subject')).text == f'subj-{tag}'
    await b.expect_none(lambda st: (body_of(st.xml) or '').startswith(tag), wait=0.7,
                        what='duplicate delivery')
    wait_live(server, ub, 0)
    await b.stop()

    # delivered means gone: the next session gets nothing
    b2 = await server.client(ub, 'b2').start()
    await b2.expect_none(lambda st: (body_of(st.xml) or '').startswith(tag), wait=0.7,
                         what='redelivery at the next login')
    await b2.stop()
    snd.close()


@pytest.mark.roost_only
@pytest.mark.parametrize('mechanism', ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'PLAIN'])
def test_every_login_mechanism_opens_the_store(server, users, mechanism):
    """The keyring unlocks with each SCRAM hash's ClientKey and with
    PLAIN (DESIGN §5)."""
    ua, ub = users
    bodies = [marker('mech') for _ in range(3)]
    deposit(server, ua, ub, bodies).close()
    got, notices, s = receive_offline(server, ub, 3, mechanism=mechanism)
    assert [body_of(m) for m in got] == bodies
    assert not notices, tostr(notices[0])
    s.close()


def test_negative_priority_gets_no_flood(server, users):
    """XEP-0160 / RFC 6121 8.5.2.2: a resource with negative priority is
    not available for messages; the store waits for one that is."""
    ua, ub = users
    neg = connect_user(server, ub, resource='neg', priority=-1)
    bodies = [marker('neg') for _ in range(3)]
    snd = deposit(server, ua, ub, bodies)
    got = [e for e in neg.drain(1.0) if is_stored_msg(e)]
    assert not got, f'flood to a negative-priority resource: {tostr(got[0])}'
    assert live_count(server, ub) in (None, 3)
    pos = connect_user(server, ub, resource='pos', priority=0)
    got = pos.collect(is_stored_msg, 3)
    assert [body_of(m) for m in got] == bodies
    late = [e for e in neg.drain(0.5) if is_stored_msg(e)]
    assert not late, f'negative-priority resource got {tostr(late[0])}'
    for s in (neg, pos):
        s.close()
    snd.close()


def test_flood_goes_to_the_resource_that_sent_presence(server, users):
    """A bound session without presence gets nothing; the one that sends
    initial presence gets the messages; the first, sending presence later,
    gets no second copy."""
    ua, ub = users
    quiet = connect_user(server, ub, resource='quiet', presence=False)
    bodies = [marker('res') for _ in range(2)]
    snd = deposit(server, ua, ub, bodies)
    active = connect_user(server, ub, resource='active')
    got = active.collect(is_stored_msg, 2)
    assert [body_of(m) for m in got] == bodies
    assert not [e for e in quiet.drain(0.3) if is_stored_msg(e)]
    wait_live(server, ub, 0)
    quiet.presence()
    dup = [e for e in quiet.drain(0.8) + active.drain(0.1) if is_stored_msg(e)]
    assert not dup, f'delivered twice: {tostr(dup[0])}'
    for s in (quiet, active):
        s.close()
    snd.close()


def test_large_body_round_trip(server, users):
    """A body near the stanza size limit is sealed and opened intact."""
    ua, ub = users
    big = marker('big') + ''.join(chr(0x41 + i % 26) for i in range(150000)) + '\u00e9\U0001F600'
    deposit(server, ua, ub, [big, 'small-' + marker()]).close()
    got, notices, s = receive_offline(server, ub, 2)
    assert body_of(got[0]) == big
    assert body_of(got[1]).startswith('small-')
    assert not notices
    s.close()


# ---------------------------------------------------------------------------
# what is stored: message types and XEP-0334 hints

HINT_CASES = {
    # name: (type, body?, extra payload, stored?, expected error or None)
    'chat': ('chat', True, '', True, None),
    'normal': ('normal', True, '', True, None),
    'untyped': (None, True, '', True, None),
    'no-store': ('chat', True, f"<no-store xmlns='{NS_HINTS}'/>", False, 'service-unavailable'),
    # XEP-0334 §3 "Sensitive messages": no permanent record, but "stored
    # temporarily as a normal part of delivery (e.g. if the recipient is
    # offline)" is what the sender accepts: stored, not bounced.
    'no-permanent-store': ('chat', True, f"<no-permanent-store xmlns='{NS_HINTS}'/>", True,
                           'none'),
    'no-store-normal': ('normal', True, f"<no-store xmlns='{NS_HINTS}'/>", False,
                        'service-unavailable'),
    'store-without-body': ('chat', False,
                           f"<store xmlns='{NS_HINTS}'/><x xmlns='urn:example:payload'>p</x>",
                           True, None),
    'chat-state-only': ('chat', False, f"<composing xmlns='{NS_CHATSTATES}'/>", False, 'none'),
    'chat-state-with-body': ('chat', True, f"<active xmlns='{NS_CHATSTATES}'/>", True, None),
    'receipt-only': ('chat', False, f"<received xmlns='{NS_RECEIPTS}' id='r1'/>", False, None),
    'headline': ('headline', True, '', False, 'none'),
    'groupchat': ('groupchat', True, '', False, 'service-unavailable'),
    'error': ('error', True,
              "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
              "</error>", False, 'none'),
}


@pytest.mark.parametrize('case', list(HINT_CASES))
def test_what_is_stored(server, users, case):
    """XEP-0160 §3 and XEP-0334: chat/normal with a body are stored;
    no-store bounces with service-unavailable, no-permanent-store is
    stored (offline storage is temporary, XEP-0334 §3); <store/>
    stores without a body; chat states and receipts alone are neither
    stored nor bounced (chat states: never bounced); headline and error are
    dropped silently, groupchat bounced. Error None: no assertion about a
    bounce; 'none': there must be none."""
    typ, has_body, extra, stored, error = HINT_CASES[case]
    if server.kind != 'roost' and case not in ('chat', 'normal', 'untyped', 'headline',
                                               'chat-state-with-body'):
        pytest.skip('XEP-0334 / type policy is roost-specific')
    ua, ub = users
    snd = Sender(server, ua, resource='hint')
    tag = marker(case)
    id = snd.send(ub.jid, tag if has_body else None, type=typ, id=tag, extra=extra)
    # a plain message after it: once that one is stored, the first one
    # has been handled
    after = snd.send(ub.jid, 'after-' + tag, type='chat')
    wait_stored(server, ub, 2 if stored else 1)
    got = snd.s.drain(0.8)
    errs = [e for e in got if is_error_msg(e)]
    if error == 'service-unavailable':
        mine = [e for e in errs if e.get('id') == id]
        assert mine, f'{case}: no error to the sender (got {[tostr(e) for e in got]})'
        assert stanza_error(mine[0]) == ('cancel', 'service-unavailable'), tostr(mine[0])
        assert mine[0].get('from') == ub.jid, tostr(mine[0])
    elif error == 'none':
        assert not [e for e in errs if e.get('id') == id], f'{case}: bounced: {tostr(errs[0])}'
    if stored:
        assert not [e for e in errs if e.get('id') == id], f'{case}: stored but bounced too'
    assert not [e for e in errs if e.get('id') == after]
    if server.kind == 'roost':
        time.sleep(0.2)
        assert live_count(server, ub) == (2 if stored else 1), f'{case}: stored={stored} expected'

    msgs, notices, s = receive_offline(server, ub, 2 if stored else 1)
    ids = [m.get('id') for m in msgs]
    if stored:
        assert ids == [id, after], f'{case}: delivered {ids}'
        if case == 'store-without-body':
            assert msgs[0].find('{urn:example:payload}x') is not None, tostr(msgs[0])
            assert delay_of(msgs[0]) is not None
    else:
        assert ids == [after], f'{case}: delivered {ids}'
    assert not notices
    s.close()
    snd.close()


def test_message_to_unknown_account_not_stored(server, user):
    """Storing is for existing accounts only: an unknown one bounces."""
    snd = Sender(server, user)
    ghost = f'nobody{marker()}@{DOMAIN}'
    id = snd.send(ghost, 'hello?')
    err = snd.wait_error(id)
    assert stanza_error(err) == ('cancel', 'service-unavailable')
    snd.close()


# ---------------------------------------------------------------------------
# 1000 messages; disconnect mid-delivery

@pytest.fixture(scope='module')
def bulk_server(make_server):
    return make_server('bulk', sections={'offline': {'max_messages': 0, 'max_bytes': '256 MiB'},
                                         'limits': {'read_rate': 0}})


def kernel_capacity(seconds=1.0):
    """Bytes the kernel accepts on a loopback connection whose reader has a
    4 KB receive buffer and reads nothing: what a server may write (and
    then count as delivered) to a client that is not reading."""
    ls = socket.socket()
    ls.bind(('127.0.0.1', 0))
    ls.listen()
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(ls.getsockname())
    s, _ = ls.accept()
    s.setblocking(False)
    total, chunk = 0, b'x' * 16384
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            total += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
    for x in (s, c, ls):
        x.close()
    return total


@pytest.mark.roost_only
def test_thousand_messages_ordered_complete(bulk_server):
    """1000 messages to one offline user: all arrive, in order, each with a
    delay stamp, none twice; then the store is empty."""
    srv = bulk_server
    ua, ub = add_user(srv, 'bulka'), add_user(srv, 'bulkb')
    n = 1000
    bodies = [f'{i:04d}-{marker()}' for i in range(n)]
    snd = Sender(srv, ua, resource='bulk')
    t = time.monotonic()
    snd.send_many(ub.jid, bodies)
    wait_stored(srv, ub, n, timeout=60, sender=snd)
    deposit_s = time.monotonic() - t
    errs = [e for e in snd.s.drain(0.2) if is_error_msg(e)]
    assert not errs, tostr(errs[0])
    t = time.monotonic()
    s = connect_user(srv, ub, resource='bulk')
    got = s.collect(is_stored_msg, n, timeout=60)
    deliver_s = time.monotonic() - t
    extra = [e for e in s.drain(0.7) if is_stored_msg(e)]
    assert not extra, f'{len(extra)} more than {n} delivered, e.g. {body_of(extra[0])[:20]}'
    bs = [body_of(m) for m in got]
    assert len(set(bs)) == n, f'{n - len(set(bs))} duplicates'
    assert bs == bodies, 'not delivered in order'
    assert all(delay_of(m) is not None for m in got)
    wait_live(srv, ub, 0, timeout=20)
    s.end()
    snd.close()
    print(f'1000 offline messages: deposited in {deposit_s:.2f}s, delivered in {deliver_s:.2f}s')


@pytest.mark.roost_only
def test_paced_and_disconnect_mid_delivery_loses_nothing(bulk_server):
    """400 messages of 16 KB (6.4 MB, more than the kernel buffers of a
    connection hold). The recipient logs in through a 4 KB receive window
    and reads nothing for a while: only what the kernel could take may
    have left the store (a record leaves once written, and the next batch
    goes only after the previous one was written). Then it reads about 60
    and ends the TCP connection without closing the stream (FIN: whatever
    the server had written still reaches us). Logging in again brings the
    rest: the union is exactly what was sent, no session got one twice."""
    srv = bulk_server
    ua, ub = add_user(srv, 'dropa'), add_user(srv, 'dropb')
    n, size, batch = 400, 16384, 50
    bodies = [f'{i:03d}-{marker()}-' + 'y' * size for i in range(n)]
    snd = Sender(srv, ua, resource='drop')
    snd.send_many(ub.jid, bodies, chunk=50)
    wait_stored(srv, ub, n, timeout=60, sender=snd)
    snd.close()
    cap = kernel_capacity()

    s1 = connect_user(srv, ub, resource='first', rcvbuf=4096)
    time.sleep(1.5)                    # not reading
    removed = n - live_count(srv, ub)
    bound = cap // size + batch + 5
    assert removed <= bound, \
        (f'{removed} of {n} records left the store while the client read nothing; '
         f'the kernel holds {cap} bytes = {cap // size} messages, + one batch = {bound}')
    first = s1.collect(is_stored_msg, 60, timeout=30)
    s1.half_close()
    first += [e for e in s1.read_to_eof(timeout=WAIT) if is_stored_msg(e)]
    s1.close()
    b1 = [body_of(m) for m in first]
    assert len(b1) == len(set(b1)), 'duplicates within the first session'
    assert len(b1) < n, ('the whole store arrived before the disconnect: '
                         'this test did not disconnect mid-delivery')
    assert b1 == bodies[:len(b1)], 'first session: not oldest first'

    time.sleep(0.3)
    s2 = connect_user(srv, ub, resource='second')
    second = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        second += s2.drain(0.5)
        b2 = [body_of(e) for e in second if is_stored_msg(e)]
        if len(set(b1) | set(b2)) >= n or s2.eof:
            break
    second += s2.drain(0.5)
    b2 = [body_of(e) for e in second if is_stored_msg(e)]
    assert len(b2) == len(set(b2)), 'duplicates within the second session'
    lost = set(bodies) - set(b1) - set(b2)
    assert not lost, (f'{len(lost)} messages lost (first session got {len(b1)}, '
                      f'second {len(b2)}), e.g. {sorted(b[:3] for b in lost)[:10]}')
    assert not (set(b2) - set(bodies))
    assert b2 == sorted(b2), 'second session: not oldest first'
    assert not [e for e in second if is_notice(e)], 'a notice after a clean disconnect'
    wait_live(srv, ub, 0, timeout=20)
    s2.end()
    print(f'first session {len(b1)}, second {len(b2)}, removed while stalled {removed}')


@pytest.mark.roost_only
def test_big_messages_beyond_output_queue_limit(bulk_server):
    """Eight 200 KB messages (1.6 MB: more than [limits] max_outq, 1 MiB,
    and less than one batch of 50): a reading client gets them all rather
    than being cut off for a queue the server filled itself."""
    srv = bulk_server
    ua, ub = add_user(srv, 'biga'), add_user(srv, 'bigb')
    bodies = [f'{i}-{marker()}-' + 'b' * 200000 for i in range(8)]
    snd = Sender(srv, ua, resource='big')
    snd.send_many(ub.jid, bodies)
    wait_stored(srv, ub, 8, timeout=30, sender=snd)
    snd.close()
    s = connect_user(srv, ub, resource='big')
    got = s.collect(is_stored_msg, 8, timeout=30)
    assert [body_of(m) for m in got] == bodies
    s.end()


# ---------------------------------------------------------------------------
# policy: quotas, expiry, mode = off

@pytest.fixture(scope='module')
def quota_server(make_server):
    return make_server('quota', sections={'offline': {'max_messages': 3, 'max_bytes': 6000}})


@pytest.mark.roost_only
def test_quota_in_messages(quota_server):
    """Over max_messages the sender gets <resource-constraint/> (wait) and
    the message is not stored; nothing is dropped silently; after delivery
    the quota is free again."""
    srv = quota_server
    ua, ub = add_user(srv, 'qa'), add_user(srv, 'qb')
    snd = Sender(srv, ua, resource='q')
    bodies = [marker('q') for _ in range(5)]
    ids = []
    for i, body in enumerate(bodies):
        ids.append(snd.send(ub.jid, body))
        if i < 3:
            wait_stored(srv, ub, i + 1, sender=snd)
    for id in ids[3:]:
        err = snd.wait_error(id)
        assert stanza_error(err) == ('wait', 'resource-constraint'), tostr(err)
        assert err.get('from') == ub.jid, tostr(err)
    others = [e for e in snd.s.drain(0.5) if is_error_msg(e)]
    assert not others, f'unexpected error: {tostr(others[0])}'
    assert live_count(srv, ub) == 3
    got, notices, s = receive_offline(srv, ub, 3)
    assert [body_of(m) for m in got] == bodies[:3]
    s.close()
    wait_live(srv, ub, 0)
    id = snd.send(ub.jid, 'again-' + marker())
    wait_stored(srv, ub, 1)
    assert not [e for e in snd.s.drain(0.3) if is_error_msg(e) and e.get('id') == id]
    snd.close()


@pytest.mark.roost_only
def test_quota_in_bytes(quota_server):
    """max_bytes = 6000: two 2000-byte bodies fit, a third does not (error),
    a small fourth still does (the limit is in bytes, not a count)."""
    srv = quota_server
    ua, ub = add_user(srv, 'qba'), add_user(srv, 'qbb')
    snd = Sender(srv, ua, resource='qb')
    big = [marker('big') + 'z' * 2000 for _ in range(3)]
    id0 = snd.send(ub.jid, big[0])
    wait_stored(srv, ub, 1, sender=snd)
    id1 = snd.send(ub.jid, big[1])
    wait_stored(srv, ub, 2, sender=snd)
    id2 = snd.send(ub.jid, big[2])
    err = snd.wait_error(id2)
    assert stanza_error(err) == ('wait', 'resource-constraint'), tostr(err)
    small = 'small-' + marker()
    id3 = snd.send(ub.jid, small)
    wait_stored(srv, ub, 3)
    errs = [e for e in snd.s.drain(0.5) if is_error_msg(e)]
    assert not [e for e in errs if e.get('id') in (id0, id1, id3)], tostr(errs[0])
    got, _notices, s = receive_offline(srv, ub, 3)
    assert [body_of(m) for m in got] == [big[0], big[1], small]
    s.close()
    snd.close()


@pytest.mark.roost_only
def test_expired_messages_not_delivered(make_server):
    """expiry = 2 s: a message older than that is not delivered; a fresh
    one is."""
    srv = make_server('expiry', sections={'offline': {'expiry': 2}})
    ua, ub = add_user(srv, 'ea'), add_user(srv, 'eb')
    old, new = 'old-' + marker(), 'new-' + marker()
    snd = deposit(srv, ua, ub, [old])
    time.sleep(3.0)
    deposit(srv, snd, ub, [new])
    got, _notices, s = receive_offline(srv, ub, 1, quiet=1.0)
    assert [body_of(m) for m in got] == [new], f'delivered {[body_of(m) for m in got]}'
    s.close()
    wait_live(srv, ub, 0)
    snd.close()


@pytest.mark.roost_only
def test_mode_off_bounces(make_server):
    """[offline] mode = off: service-unavailable to the sender (XEP-0160),
    nothing stored, nothing delivered later; online delivery unaffected."""
    srv = make_server('off', sections={'offline': {'mode': 'off'}})
    ua, ub = add_user(srv, 'oa'), add_user(srv, 'ob')
    snd = Sender(srv, ua, resource='off')
    body = marker('off')
    id = snd.send(ub.jid, body)
    err = snd.wait_error(id)
    assert stanza_error(err) == ('cancel', 'service-unavailable'), tostr(err)
    assert live_count(srv, ub) == 0
    s = connect_user(srv, ub, resource='b')
    got = s.drain(1.0)
    assert not [e for e in got if is_stored_msg(e)], 'delivered although mode = off'
    live = marker('live')
    snd.send(ub.jid, live)
    m = s.wait(is_stored_msg, what='live message')
    assert body_of(m) == live and delay_of(m) is None
    s.close()
    snd.close()


# ---------------------------------------------------------------------------
# bursts: deposits go to the store in batches (issue 5)

def sender_of(body):
    """('s1', 17) from a burst body 's1-17-...'."""
    who, idx, _ = body.split('-', 2)
    return who, int(idx)


def interleave(counts):
    """Recipient indices round robin: {0: 3, 1: 1} -> [0, 1, 0, 0]."""
    left, out = dict(counts), []
    while any(left.values()):
        for j in sorted(left):
            if left[j]:
                out.append(j)
                left[j] -= 1
    return out


def collect_all(srv, user, expected_min=0, quiet=1.5, timeout=60):
    """Log in with presence and read stored messages until none came for
    `quiet` seconds (and at least expected_min arrived, or the timeout)."""
    s = connect_user(srv, user, resource='burst')
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        more = [e for e in s.drain(quiet) if is_stored_msg(e)]
        got += more
        if not more and len(got) >= expected_min:
            break
    s.close()
    return [body_of(m) for m in got]


@pytest.mark.roost_only
def test_burst_to_several_users_order_quota_and_errors(make_server):
    """Three senders pipeline 650 messages to four offline users at once,
    so that the store takes them in batches mixing users and senders.
    max_messages = 150: only the first user goes over it, and only with
    sender 0's messages, so exactly its last 50 to that user are refused
    (quota checked per message, in order) with <resource-constraint/>,
    and no other message gets an error. Each user then gets every stored message once, each
    sender's in the order sent."""
    srv = make_server('burst', sections={'offline': {'max_messages': 150, 'max_bytes': 0},
                                         'limits': {'read_rate': 0}})
    r = [add_user(srv, f'burstr{i}') for i in range(4)]
    snd = [Sender(srv, add_user(srv, f'bursts{i}'), resource='b') for i in range(3)]
    plan = {0: interleave({0: 200, 1: 50}), 1: interleave({1: 100, 2: 100}),
            2: interleave({2: 40, 3: 60})}
    sent = {}        # (sender, recipient) -> [(id, body)]
    tag = marker()
    for i in range(max(len(p) for p in plan.values())):
        for k, p in plan.items():
            if i < len(p):
                body = f's{k}-{i}-{tag}'
                id = snd[k].send(r[p[i]].jid, body, id=f'burst-{k}-{i}')
                sent.setdefault((k, p[i]), []).append((id, body))
    for s in snd:
        s.s.sync(timeout=60)
    wait_stored(srv, r[0], 150, timeout=60)
    errs = {k: [e for e in s.errors(wait=1.0)] for k, s in enumerate(snd)}
    refused = [id for id, _ in sent[(0, 0)][150:]]
    assert sorted(e.get('id') for e in errs[0]) == sorted(refused), \
        f'sender 0: {len(errs[0])} errors, expected exactly its last 50 to user 0'
    for e in errs[0]:
        assert stanza_error(e) == ('wait', 'resource-constraint'), tostr(e)
    assert not errs[1] and not errs[2], tostr((errs[1] + errs[2])[0])

    want = {0: [b for _, b in sent[(0, 0)][:150]]}
    for j in (1, 2, 3):
        want[j] = [b for (k, rr), v in sent.items() if rr == j for _, b in v]
    for j, user in enumerate(r):
        got = collect_all(srv, user, expected_min=len(want[j]))
        assert len(got) == len(set(got)), f'{user.jid}: duplicates'
        assert sorted(got) == sorted(want[j]), \
            f'{user.jid}: got {len(got)}, expected {len(want[j])}'
        for k in range(3):
            mine = [sender_of(b)[1] for b in got if sender_of(b)[0] == f's{k}']
            assert mine == sorted(mine), f'{user.jid}: sender {k} out of order'
        wait_live(srv, user, 0, timeout=20)
    for s in snd:
        s.close()


@pytest.mark.roost_only
def test_login_during_burst_gets_everything(make_server):
    """A recipient logs in while 600 messages to it are being stored: each
    arrives exactly once in that session (stored ones through the flood,
    which reloads for those that land during it; later ones directly), and
    none is left behind in the store."""
    srv = make_server('burstlogin', sections={'offline': {'max_messages': 0, 'max_bytes': 0},
                                              'limits': {'read_rate': 0}})
    ua, ub = add_user(srv, 'bla'), add_user(srv, 'blb')
    snd = Sender(srv, ua, resource='b')
    tag = marker()
    bodies = [f's0-{i}-{tag}' for i in range(600)]
    for b in bodies[:300]:
        snd.send(ub.jid, b)
    s = connect_user(srv, ub, resource='during')
    for b in bodies[300:]:
        snd.send(ub.jid, b)
    snd.s.sync(timeout=60)
    got = [body_of(m) for m in s.collect(is_stored_msg, 600, timeout=60)]
    got += [body_of(e) for e in s.drain(0.7) if is_stored_msg(e)]
    assert len(got) == len(set(got)), 'delivered twice'
    assert sorted(got) == sorted(bodies)
    wait_live(srv, ub, 0, timeout=20)
    assert not [e for e in snd.errors(wait=0.3)]
    s.close()
    snd.close()


def _sm_sender(srv, user):
    """A raw sender with XEP-0198 on (no resumption): <a h/> says how many
    of its messages the server has handled."""
    s = OfflineStream(srv)
    s.login_user(user, resource='sm')
    s.send(f"<enable xmlns='{NS_SM}'/>")
    e = s.wait(lambda e: e.tag in (q(NS_SM, 'enabled'), q(NS_SM, 'failed')))
    assert e.tag == q(NS_SM, 'enabled'), tostr(e)
    return s


@pytest.mark.roost_only
def test_sigterm_mid_burst_loses_nothing(server_factory, make_user):
    """Two senders stream messages to four offline users, asking for
    XEP-0198 acks every 10; SIGTERM arrives while they still send. roostd
    exits 0. After a restart, for each sender the messages delivered (plus
    any bounced) are exactly the first n it sent, with no hole, n at least
    what the server acknowledged (a message acked and then lost would show
    as a hole or a short n); each user gets each sender's messages in
    order, none twice."""
    srv = server_factory('sigburst', log_level='info',
                         sections={'offline': {'max_messages': 0, 'max_bytes': 0},
                                   'limits': {'read_rate': 0}})
    r = [make_user('sigr', srv=srv) for _ in range(4)]
    snd = [_sm_sender(srv, make_user('sigs', srv=srv)) for _ in range(2)]
    tag = marker()
    sent = [0, 0]
    open_ = [True, True]
    chunk = 10
    # 20 KB bodies: the store runs behind the loop, so that SIGTERM finds
    # batches in the store and deposits waiting for them.
    pad = 'p' * 20000

    def send_chunk(k):
        out = []
        for _ in range(chunk):
            i = sent[k]
            out.append(f"<message to='{r[i % 4].jid}' id='sig-{k}-{i}' type='chat'>"
                       f"<body>s{k}-{i}-{tag}-{pad}</body></message>")
            sent[k] += 1
        out.append(f"<r xmlns='{NS_SM}'/>")
        try:
            snd[k].send(''.join(out))
        except OSError:        # sent[k] counts what was attempted
            open_[k] = False

    for phase in range(2):     # 600 each before the signal, half of them
        for _ in range(30):    # certainly routed (the ping's answer)
            for k in range(2):
                send_chunk(k)
        if phase == 0:
            for s in snd:
                s.sync(timeout=60)
    srv.proc.send_signal(signal.SIGTERM)
    for _ in range(300):       # and on, until the server hangs up
        for k in range(2):
            if open_[k]:
                send_chunk(k)
        if not any(open_):
            break
    acked, bounced = [0, 0], [set(), set()]
    for k in range(2):
        try:
            elems = snd[k].read_to_eof(timeout=WAIT)
        except AssertionError:
            elems = snd[k].backlog
        for e in elems:
            if e.tag == q(NS_SM, 'a'):
                # h counts stanzas: the ping after message 300 too
                h = int(e.get('h'))
                acked[k] = max(acked[k], h if h <= 300 else h - 1)
            elif is_error_msg(e):
                bounced[k].add(int(e.get('id').split('-')[2]))
        snd[k].close()
    assert srv.proc.wait(timeout=60) == 0, srv.log()[-3000:]
    srv.check_log_clean()
    log = srv.log()
    assert 'not stored at shutdown' not in log, log[-3000:]
    assert acked[0] >= 1 and acked[1] >= 1, 'no XEP-0198 ack before the shutdown'

    srv.restart()
    got = {}
    for j, user in enumerate(r):
        got[j] = collect_all(srv, user, expected_min=min(acked) // 4)
        assert len(got[j]) == len(set(got[j])), f'{user.jid}: duplicates'
    for k in range(2):
        mine = [sender_of(b)[1] for j in got for b in got[j] if sender_of(b)[0] == f's{k}']
        taken = set(mine) | bounced[k]
        n = len(taken)
        assert taken == set(range(n)), \
            (f'sender {k}: {n} messages delivered or bounced, but not the first {n} '
             f'sent: missing {sorted(set(range(n)) - taken)[:10]}')
        assert n >= acked[k], f'sender {k}: the server acked {acked[k]}, only {n} delivered'
        assert n < sent[k], f'sender {k}: all {sent[k]} taken: SIGTERM came after the burst'
        for j in got:
            idx = [sender_of(b)[1] for b in got[j] if sender_of(b)[0] == f's{k}']
            assert idx == sorted(idx), f'{r[j].jid}: sender {k} out of order'
            assert all(i % 4 == j for i in idx), f'{r[j].jid}: misrouted'
    print(f'sent {sent}, acked {acked}, delivered '
          f'{[sum(1 for j in got for b in got[j] if b.startswith(f"s{k}-")) for k in range(2)]}')
