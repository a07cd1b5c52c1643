"""XEP-0198 stream management against the real roostd, over raw sockets:
acks with exact 'h' values, resumption after the TCP connection dies
without a closing stream, and no message lost when a resumable session
times out (issue 4)."""
import socket
import time

import pytest

from conftest import add_user
from helpers import NS_CLIENT, NS_DELAY, NS_SM, RawStream, StreamClosed, q

pytestmark = pytest.mark.roost_only


def is_msg(e):
    return e.tag == q(NS_CLIENT, 'message')


def body(e):
    return e.findtext(q(NS_CLIENT, 'body'))


def login(srv, user, resource):
    s = RawStream(srv)
    s.login(user, resource=resource)
    return s


def enable(s, resume=True):
    attr = " resume='true'" if resume else ''
    s.send(f"<enable xmlns='{NS_SM}'{attr}/>")
    e = s.wait_for(lambda e: e.tag in (q(NS_SM, 'enabled'), q(NS_SM, 'failed')))
    assert e.tag == q(NS_SM, 'enabled'), e.tag
    return e


def ask_h(s):
    s.send(f"<r xmlns='{NS_SM}'/>")
    a = s.wait_for(lambda e: e.tag == q(NS_SM, 'a'))
    return int(a.get('h'))


def drain(s, seconds=0.8):
    """Everything the server sends within `seconds`."""
    got = []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        try:
            got.append(s.next_element(left))
        except (StreamClosed, socket.timeout, OSError, AssertionError):
            return got


def kill(s):
    """The TCP connection dies: no </stream:stream>, no TLS close."""
    try:
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    except OSError:
        pass
    s.close()


def send_bodies(sender, to, bodies):
    for b in bodies:
        sender.send(f"<message to='{to}' type='chat'><body>{b}</body></message>")


def test_enable_and_counts(server, users):
    a, b = users
    sa = login(server, a, 'sm1')
    en = enable(sa)
    assert en.get('resume') in ('true', '1') and en.get('id')
    assert int(en.get('max')) > 0
    # Nothing handled yet, then each stanza counts once.
    assert ask_h(sa) == 0
    sa.send("<presence/>")
    sa.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert ask_h(sa) == 2
    sa.close()


def test_features_offer_sm(server, user):
    s = RawStream(server)
    assert s.authenticate(user).find(q(NS_SM, 'sm')) is not None
    s.close()


def test_enable_before_bind_fails(server, user):
    s = RawStream(server)
    s.authenticate(user)
    s.send(f"<enable xmlns='{NS_SM}'/>")
    e = s.next_element()
    assert e.tag == q(NS_SM, 'failed')
    # The stream goes on: binding still works.
    assert s.bind('after-failed')
    s.close()


def test_ack_too_high_is_a_stream_error(server, user):
    s = login(server, user, 'high')
    enable(s)
    s.send(f"<a xmlns='{NS_SM}' h='5'/>")
    err = s.expect_stream_error('undefined-condition')
    assert err is not None


def test_resume_after_dead_connection_exactly_once(server, users):
    """Messages in flight when the TCP connection dies are resent on
    resumption, counted by the client's 'h': every one exactly once."""
    a, b = users
    sa = login(server, a, 'phone')
    smid = enable(sa).get('id')
    sa.send("<presence/>")
    sb = login(server, b, 'desk')
    first = [f'first-{i}' for i in range(5)]
    send_bodies(sb, f'{a.jid}/phone', first)
    got1 = [body(e) for e in drain(sa) if is_msg(e)]
    assert got1 == first
    # The client processed only the first 3 messages (+ its presence echo).
    handled = 1 + 3
    kill(sa)
    later = [f'later-{i}' for i in range(4)]
    send_bodies(sb, f'{a.jid}/phone', later)
    time.sleep(0.3)

    s2 = RawStream(server)
    s2.authenticate(a)
    s2.send(f"<resume xmlns='{NS_SM}' previd='{smid}' h='{handled}'/>")
    resumed = s2.next_element()
    assert resumed.tag == q(NS_SM, 'resumed'), resumed.tag
    assert resumed.get('previd') == smid
    assert int(resumed.get('h')) == 1          # we had sent one presence
    got2 = [body(e) for e in drain(s2) if is_msg(e)]
    assert got2 == first[3:] + later, got2
    # The counts carry on over the resumed stream.
    s2.send(f"<a xmlns='{NS_SM}' h='{handled + len(got2)}'/>")
    s2.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert ask_h(s2) == 2
    s2.close()
    sb.close()


def test_resume_unknown_previd(server, user):
    s = RawStream(server)
    s.authenticate(user)
    s.send(f"<resume xmlns='{NS_SM}' previd='no-such-session' h='0'/>")
    e = s.next_element()
    assert e.tag == q(NS_SM, 'failed')
    assert e.find(q('urn:ietf:params:xml:ns:xmpp-stanzas', 'item-not-found')) is not None
    assert s.bind('fresh')
    s.close()


def test_resume_by_another_user_is_refused(server, users):
    a, b = users
    sa = login(server, a, 'x')
    smid = enable(sa).get('id')
    kill(sa)
    s = RawStream(server)
    s.authenticate(b)
    s.send(f"<resume xmlns='{NS_SM}' previd='{smid}' h='0'/>")
    e = s.next_element()
    assert e.tag == q(NS_SM, 'failed')
    s.close()


@pytest.fixture(scope='module')
def short_resume(make_server):
    return make_server('smshort', sections={'c2s': {'resume_timeout': 1}})


def test_timeout_sends_unacked_to_offline_store(short_resume):
    """The resumable session is not resumed in time: every message the
    client never acknowledged lands in the sealed offline store and
    arrives at the next login, none lost."""
    srv = short_resume
    a, b = add_user(srv, 'sma'), add_user(srv, 'smb')
    sa = login(srv, a, 'gone')
    enable(sa)
    sa.send("<presence/>")
    sb = login(srv, b, 'snd')
    bodies = [f'unacked-{i}' for i in range(6)]
    send_bodies(sb, f'{a.jid}/gone', bodies)
    got = [body(e) for e in drain(sa) if is_msg(e)]
    assert got == bodies          # written, but never acknowledged
    kill(sa)
    time.sleep(2.5)               # resume_timeout = 1
    s2 = login(srv, a, 'back')
    s2.send("<presence/>")
    again = [e for e in drain(s2, 2.0) if is_msg(e) and body(e)]
    assert [body(e) for e in again] == bodies
    assert all(e.find(q(NS_DELAY, 'delay')) is not None for e in again)
    s2.close()
    sb.close()


def test_timeout_prefers_another_resource(short_resume):
    """With another available resource, unacknowledged messages go there."""
    srv = short_resume
    a, b = add_user(srv, 'smc'), add_user(srv, 'smd')
    other = login(srv, a, 'other')
    other.send("<presence/>")
    sa = login(srv, a, 'dying')
    enable(sa)
    sa.send("<presence><priority>5</priority></presence>")
    drain(other, 0.3)
    sb = login(srv, b, 'snd')
    bodies = [f'rerouted-{i}' for i in range(3)]
    send_bodies(sb, f'{a.jid}/dying', bodies)
    drain(sa, 0.5)
    kill(sa)
    time.sleep(2.5)
    got = [body(e) for e in drain(other, 1.0) if is_msg(e) and body(e)]
    assert got == bodies
    other.close()
    sb.close()


def test_queue_bounded_by_bytes(server_factory):
    """A client that reads but never acknowledges is cut off once its
    unacknowledged stanzas take sm_max_queue_bytes, long before the count
    limit, and nothing is lost: what it never acknowledged is delivered at
    the next login (from the offline store)."""
    srv = server_factory('smbytes', sections={'c2s': {'sm_max_queue_bytes': '64 KiB',
                                                      'resume_timeout': 0}})
    a, b = add_user(srv, 'sme'), add_user(srv, 'smf')
    sa = login(srv, a, 'slow')
    enable(sa, resume=False)
    sa.send("<presence/>")
    sb = login(srv, b, 'snd')
    big = 'x' * 8000
    bodies = [f'big-{i}-{big}' for i in range(12)]   # ~96 KB > 64 KiB
    send_bodies(sb, f'{a.jid}/slow', bodies)
    got = drain(sa, 2.0)
    errors = [e for e in got if e.tag == '{http://etherx.jabber.org/streams}error']
    assert errors, 'the stream was not cut off'
    assert errors[0].find('{urn:ietf:params:xml:ns:xmpp-streams}resource-constraint') is not None
    kill(sa)
    time.sleep(0.5)
    s2 = login(srv, a, 'back')
    s2.send("<presence/>")
    again = [body(e) for e in drain(s2, 2.0) if is_msg(e) and body(e)]
    # Everything sent to the session arrives again, in order (the bare
    # JID's offline store took those the session never acknowledged).
    assert again == bodies
    s2.close()
    sb.close()
