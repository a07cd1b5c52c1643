"""SIGTERM: every stream is closed with </stream:stream>, the store is
flushed, and roostd exits 0 (a dedicated instance per test)."""

import signal
import time
import xml.etree.ElementTree as ET

import pytest

from helpers import NS_ROSTER, NS_STREAM, NS_STREAMS, WAIT, q


def drain_close(stream, deadline):
    """Read until </stream:stream> (and EOF); return the top-level
    elements that arrived on the way."""
    while not stream.closed_tag and not stream.eof:
        try:
            stream._recv(deadline)
        except TimeoutError:
            break
    return list(stream.elements)


def test_sigterm_closes_streams_and_exits_zero(server_factory, make_user):
    srv = server_factory('shutdown')
    user = make_user(srv=srv)
    bound = srv.raw()
    bound.login(user, resource='one')
    tls_only = srv.raw(direct_tls=True)
    tls_only.open()                     # pre-auth stream on the TLS port
    plain = srv.raw()
    plain.open()                        # pre-TLS stream
    srv.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WAIT
    for name, s in (('bound', bound), ('direct-tls', tls_only), ('pre-tls', plain)):
        elems = drain_close(s, deadline)
        assert s.closed_tag, f'{name}: no </stream:stream> at SIGTERM; got {s.raw[-300:]!r}'
        # a <system-shutdown/> stream error before the close is fine
        for e in elems:
            if e.tag == q(NS_STREAM, 'error'):
                assert e.find(q(NS_STREAMS, 'system-shutdown')) is not None, ET.tostring(e)
        s.wait_closed(timeout=max(0.1, deadline - time.monotonic()))
        s.close()
    rc = srv.proc.wait(timeout=WAIT)
    assert rc == 0, f'exit code {rc}:\n{srv.log()[-3000:]}'
    srv.check_log_clean()


@pytest.mark.roost_only
def test_sigterm_flushes_store(server_factory, make_user):
    """A roster change acknowledged just before SIGTERM survives a
    restart on the same data dir."""
    srv = server_factory('flush')
    user, contact = make_user(srv=srv), make_user('contact', srv=srv)
    with srv.raw() as s:
        s.login(user)
        resp = s.iq(f"<query xmlns='{NS_ROSTER}'><item jid='{contact.jid}' name='Kept'/></query>",
                    type='set')
        assert resp.get('type') == 'result'
        srv.proc.send_signal(signal.SIGTERM)
        s.wait_closed()
    assert srv.proc.wait(timeout=WAIT) == 0
    srv.start()
    with srv.raw() as s:
        s.login(user)
        resp = s.iq(f"<query xmlns='{NS_ROSTER}'/>")
        items = resp.findall(f'{q(NS_ROSTER, "query")}/{q(NS_ROSTER, "item")}')
        assert [(i.get('jid'), i.get('name')) for i in items] == [(contact.jid, 'Kept')]


def test_sigterm_idle_server(server_factory):
    srv = server_factory('idle')
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=WAIT) == 0
    srv.check_log_clean()
