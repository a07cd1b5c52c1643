"""XEP-0115 Entity Capabilities: the server's own caps in the stream
features (its 'ver' hashing its disco#info, which the caps node answers
with), and clients' caps: the server asks a client's disco#info from its
domain, verifies the hash before caching it server-wide, asks again when
a hash failed or is one it cannot check, and takes the client's "+notify"
features as its PEP interests (XEP-0163 §4.2)."""

import uuid

from helpers import DOMAIN, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_XML, ok, q, tostr
from pep_helpers import (CAPS_NODE, NS_CAPS, PepStream, caps_ver, client_features,
                         is_caps_query, is_event, new_node, payload, pubsub_error, stream)

QUIET = 0.8


def test_server_caps_in_stream_features(server, make_user):
    u = make_user()
    s = stream(server, u)
    c = s.features.find(q(NS_CAPS, 'c'))
    assert c is not None, tostr(s.features)
    assert c.get('hash') == 'sha-1' and c.get('node') == 'https://roost.example/caps'
    # 'ver' is the hash (§5.1) of what disco#info says of the server.
    r = ok(s.iq(f"<query xmlns='{NS_DISCO_INFO}'/>", to=DOMAIN))
    query = r.find(q(NS_DISCO_INFO, 'query'))
    ids = [(i.get('category'), i.get('type'), i.get(q(NS_XML, 'lang')) or '', i.get('name') or '')
           for i in query.findall(q(NS_DISCO_INFO, 'identity'))]
    feats = [f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))]
    assert NS_CAPS in feats
    assert c.get('ver') == caps_ver(ids, feats)
    # The caps node answers with the same (§6.2), and has no items.
    node = f"{c.get('node')}#{c.get('ver')}"
    r = ok(s.iq(f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>", to=DOMAIN))
    nq = r.find(q(NS_DISCO_INFO, 'query'))
    assert nq.get('node') == node
    assert sorted(f.get('var') for f in nq.findall(q(NS_DISCO_INFO, 'feature'))) == sorted(feats)
    assert len(nq.findall(q(NS_DISCO_INFO, 'identity'))) == len(ids)
    r = ok(s.iq(f"<query xmlns='{NS_DISCO_ITEMS}' node='{node}'/>", to=DOMAIN))
    assert len(r.find(q(NS_DISCO_ITEMS, 'query'))) == 0
    r = s.iq(f"<query xmlns='{NS_DISCO_INFO}' node='{c.get('node')}#stale'/>", to=DOMAIN)
    assert pubsub_error(r)[1] == 'item-not-found'
    s.close()


def test_query_verify_and_cache(server, make_user):
    owner = make_user()
    node = new_node()
    feats = client_features([node], ['urn:roost:test:' + uuid.uuid4().hex])
    ver = caps_ver([PepStream.IDENTITY], feats)
    s1 = stream(server, owner)
    query = s1.caps_presence(features=feats)
    # §6.2: from the server, to the full JID, node = caps node#ver.
    assert query.get('from') == DOMAIN and query.get('to') == s1.full
    assert query.find(q(NS_DISCO_INFO, 'query')).get('node') == f'{CAPS_NODE}#{ver}'
    # Another session with the same verified hash is not asked again.
    s2 = stream(server, owner)
    s2.caps_presence(features=feats, expect_query=False)
    s2.none(is_caps_query(), wait=QUIET, what='a second query for a cached hash')
    # Both have the interest.
    ok(s1.publish(node, payload('x')))
    for s in (s1, s2):
        s.wait(is_event(node, to=s.full))
    s1.close()
    s2.close()


def test_hash_that_does_not_verify_is_not_cached(server, make_user):
    owner = make_user()
    node, other = new_node(), new_node()
    feats = client_features([node], ['urn:roost:test:' + uuid.uuid4().hex])
    liar = stream(server, owner)
    # Announces feats' hash, answers with something else (+notify for
    # `other`): poisoning the cache would make every client of that hash
    # get `other` and not `node`.
    liar.caps_presence(features=feats, answer_features=client_features([other]))
    honest = stream(server, owner)
    q2 = honest.caps_presence(features=feats, expect_query=True)
    assert q2.get('to') == honest.full
    third = stream(server, owner)
    third.caps_presence(features=feats, expect_query=False)
    third.none(is_caps_query(), wait=QUIET)
    for s in (liar, honest, third):
        s.clear()
    ok(liar.publish(node, payload('n')))
    honest.wait(is_event(node, to=honest.full))
    third.wait(is_event(node, to=third.full))
    liar.none(is_event(node), wait=QUIET)
    # The liar has what it said of itself.
    ok(honest.publish(other, payload('o')))
    liar.wait(is_event(other, to=liar.full))
    honest.none(is_event(other), wait=0.2)
    for s in (liar, honest, third):
        s.close()


def test_unknown_hash_is_asked_every_time(server, make_user):
    owner = make_user()
    node = new_node()
    feats = client_features([node], ['urn:roost:test:' + uuid.uuid4().hex])
    s1, s2 = stream(server, owner), stream(server, owner)
    s1.caps_presence(features=feats, hash_attr='x-unknown-hash')
    s2.caps_presence(features=feats, hash_attr='x-unknown-hash')
    ok(s1.publish(node, payload('x')))
    for s in (s1, s2):
        s.wait(is_event(node, to=s.full))
    s1.close()
    s2.close()


def test_error_answer_and_legacy_caps_give_no_interest(server, make_user):
    owner = make_user()
    node = new_node()
    s1, s2, s3 = stream(server, owner), stream(server, owner), stream(server, owner)
    feats = client_features([node], ['urn:roost:test:' + uuid.uuid4().hex])
    ver = caps_ver([PepStream.IDENTITY], feats)
    s1.send(f"<presence><c xmlns='{NS_CAPS}' hash='sha-1' node='{CAPS_NODE}' ver='{ver}'/></presence>")
    query = s1.wait(is_caps_query())
    s1.send(f"<iq type='error' id='{query.get('id')}' to='{DOMAIN}'><error type='cancel'>"
            f"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    s1.sync()
    # The legacy format (no 'hash'): ignored, nobody is asked (§9).
    s2.send(f"<presence><c xmlns='{NS_CAPS}' node='{CAPS_NODE}' ver='1.0'/></presence>")
    s2.none(is_caps_query(), wait=QUIET)
    # No caps at all.
    s3.available()
    ok(s3.publish(node, payload('x')))
    for s in (s1, s2, s3):
        s.none(is_event(node), wait=QUIET)
        s.close()


def test_presence_without_caps_keeps_the_interest(server, make_user):
    owner = make_user()
    node = new_node()
    s = stream(server, owner)
    s.caps_presence([node])
    s.send('<presence><show>dnd</show></presence>')
    s.sync()
    ok(s.publish(node, payload('still')))
    s.wait(is_event(node, to=s.full))
    s.close()


def test_hash_with_extended_forms_verifies(server, make_user):
    """XEP-0115 §5.3's complex example, verbatim: identities in two
    languages and an extended info form (XEP-0128) go into the hash. The
    server's verification must agree, so that the hash is cached and a
    second session announcing it is not asked."""
    ver = 'q07IKJEyjvHSyhy//CH0CxmKi8w='
    answer = (
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
        "<identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>"
        "<feature var='http://jabber.org/protocol/caps'/>"
        "<feature var='http://jabber.org/protocol/disco#info'/>"
        "<feature var='http://jabber.org/protocol/disco#items'/>"
        "<feature var='http://jabber.org/protocol/muc'/>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
        "<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>"
        "<field var='software_version'><value>0.11</value></field>"
        "<field var='os'><value>Mac</value></field>"
        "<field var='os_version'><value>10.5.1</value></field>"
        "<field var='software'><value>Psi</value></field>"
        "</x>")
    owner = make_user()
    s1, s2 = stream(server, owner), stream(server, owner)
    presence = (f"<presence><c xmlns='{NS_CAPS}' hash='sha-1' node='http://psi-im.org' "
                f"ver='{ver}'/></presence>")
    s1.send(presence)
    query = s1.wait(is_caps_query())
    assert query.find(q(NS_DISCO_INFO, 'query')).get('node') == f'http://psi-im.org#{ver}'
    s1.send(f"<iq type='result' id='{query.get('id')}' to='{DOMAIN}'>"
            f"<query xmlns='{NS_DISCO_INFO}' node='http://psi-im.org#{ver}'>{answer}</query></iq>")
    s1.sync()
    s2.send(presence)
    s2.none(is_caps_query(), wait=QUIET, what='a query for a hash that verified')
    s1.close()
    s2.close()
