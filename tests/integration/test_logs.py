"""Log hygiene (issue 2, DESIGN §5, STYLE 11): at log_level = debug the
server log carries connection context but never passwords, SASL payloads
or message bodies."""

import base64
import time
import uuid

import pytest

from helpers import DOMAIN, NS_CLIENT, NS_SASL, ScramClient, b64, q, sasl_result

pytestmark = pytest.mark.roost_only


def test_no_secrets_or_bodies_in_debug_log(server_factory, make_user):
    srv = server_factory('logs', log_level='debug')
    ua = make_user('logs', srv=srv, password='Pw-' + uuid.uuid4().hex)
    ub = make_user('logr', srv=srv)
    secrets_seen = [ua.password]
    payloads = []

    # PLAIN login (the payload is the password, base64-encoded)
    with srv.raw() as s:
        s.secure()
        plain = f'\0{ua.localpart}\0{ua.password}'.encode()
        payloads.append(b64(plain))
        assert s.plain(ua.localpart, ua.password) == ('success', None)

    # a failed PLAIN login with another password
    wrong = 'Wrong-' + uuid.uuid4().hex
    secrets_seen.append(wrong)
    with srv.raw() as s:
        s.secure()
        payloads.append(b64(f'\0{ua.localpart}\0{wrong}'.encode()))
        assert s.plain(ua.localpart, wrong)[0] == 'failure'

    # SCRAM, keeping every payload both ways
    body = 'BODY-MARKER-' + uuid.uuid4().hex
    subject = 'SUBJ-MARKER-' + uuid.uuid4().hex
    with srv.raw() as recv:
        recv.login(ub, resource='r')
        with srv.raw() as s:
            s.secure()
            client = ScramClient('SCRAM-SHA-256', ua.localpart, ua.password)
            first = client.first()
            payloads.append(b64(first))
            elem = s.sasl_send('SCRAM-SHA-256', first)
            payloads.append(elem.text)
            final = client.final(base64.b64decode(elem.text))
            payloads.append(b64(final))
            elem = s.sasl_respond(final)
            assert sasl_result(elem) == ('success', None)
            payloads.append(elem.text)
            s.open()
            s.bind('w')
            s.send(f"<message to='{ub.jid}/r' type='chat'><body>{body}</body>"
                   f"<subject>{subject}</subject></message>")
            got = recv.wait_for(lambda e: e.tag == q(NS_CLIENT, 'message'))
            assert got.find(q(NS_CLIENT, 'body')).text == body
    time.sleep(0.3)
    srv.stop(check=True)
    log = srv.log()
    assert log.strip(), 'debug log is empty'
    for secret in secrets_seen:
        assert secret not in log, 'a password is in the log'
    for p in payloads:
        assert p and p not in log, f'a SASL payload is in the log: {p[:12]}...'
    # the nonce parts of SCRAM must not be there either
    assert client.cnonce not in log
    assert body not in log, 'a message body is in the log'
    assert subject not in log, 'a message subject is in the log'
    # connection context: the peer and the authenticated JID show up
    assert '127.0.0.1' in log, 'log lines carry no peer address'
    assert ua.jid in log or ua.localpart in log, 'log lines carry no JID'
