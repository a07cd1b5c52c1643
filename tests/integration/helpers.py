"""Protocol helpers for the integration suite: a raw-socket XMPP stream, a
small SCRAM/PLAIN client, and a slixmpp client wrapper that records every
stanza it receives and never waits longer than WAIT seconds."""

import asyncio
import base64
import ctypes
import hashlib
import hmac
import os
import re
import socket
import ssl
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

DOMAIN = 'localhost'
WAIT = 10  # the longest any single wait may take, seconds

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_ROSTER = 'jabber:iq:roster'
NS_ROSTERVER = 'urn:xmpp:features:rosterver'
NS_SASL_CB = 'urn:xmpp:sasl-cb:0'          # XEP-0440
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_PING = 'urn:xmpp:ping'                 # XEP-0199
NS_VERSION = 'jabber:iq:version'          # XEP-0092
NS_XML = 'http://www.w3.org/XML/1998/namespace'
NS_XDATA = 'jabber:x:data'                # XEP-0004
NS_DELAY = 'urn:xmpp:delay'               # XEP-0203
NS_FORWARD = 'urn:xmpp:forward:0'         # XEP-0297
NS_SM = 'urn:xmpp:sm:3'                   # XEP-0198
NS_MAM = 'urn:xmpp:mam:2'                 # XEP-0313
NS_SID = 'urn:xmpp:sid:0'                 # XEP-0359
NS_OFFLINE = 'http://jabber.org/protocol/offline'   # XEP-0013
NS_CARBONS = 'urn:xmpp:carbons:2'         # XEP-0280
NS_HINTS = 'urn:xmpp:hints'               # XEP-0334
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'   # XEP-0085
NS_RECEIPTS = 'urn:xmpp:receipts'         # XEP-0184
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'           # XEP-0060
NS_PRIVATE = 'jabber:iq:private'          # XEP-0049
NS_BOOKMARKS = 'storage:bookmarks'        # XEP-0048
NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1'    # XEP-0402
NS_VCARD = 'vcard-temp'                   # XEP-0054


def q(ns, tag):
    return f'{{{ns}}}{tag}'


def tostr(e):
    return ET.tostring(e, encoding='unicode')


def esc(text):
    """Text made safe for XML character data and for attribute values in
    either kind of quotes."""
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def b64(data):
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------
# TLS helpers

def client_tls_context(max_version=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_exporter(sslsock):
    """RFC 9266 tls-exporter channel binding data for an ssl.SSLSocket.

    Python's ssl module exposes only tls-unique, so this reaches the SSL*
    inside CPython's _ssl._SSLSocket (PyObject_HEAD, then the weakref to the
    socket, then SSL *ssl) and calls OpenSSL's SSL_export_keying_material.
    Returns None where that layout cannot be trusted."""
    if sys.implementation.name != 'cpython' or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    obj = getattr(sslsock, '_sslobj', None)
    if obj is None:
        return None
    try:
        libssl = ctypes.CDLL('libssl.so.3')
    except OSError:
        return None
    ptr = ctypes.c_void_p.from_address(id(obj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    if not ptr:
        return None
    libssl.SSL_get_version.restype = ctypes.c_char_p
    libssl.SSL_get_version.argtypes = [ctypes.c_void_p]
    if libssl.SSL_get_version(ptr).decode() != sslsock.version():
        return None
    libssl.SSL_export_keying_material.restype = ctypes.c_int
    libssl.SSL_export_keying_material.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
        ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    out = ctypes.create_string_buffer(32)
    label = b'EXPORTER-Channel-Binding'
    if libssl.SSL_export_keying_material(ptr, out, 32, label, len(label), None, 0, 0) != 1:
        return None
    return out.raw


# ---------------------------------------------------------------------------
# SCRAM (RFC 5802 / RFC 7677) client

class ScramError(Exception):
    pass


class ScramClient:
    HASHES = {'SCRAM-SHA-1': 'sha1', 'SCRAM-SHA-256': 'sha256'}

    def __init__(self, mechanism, username, password, cb_type=None,
                 cb_data=b'', gs2_flag=None, nonce=None):
        base = mechanism[:-5] if mechanism.endswith('-PLUS') else mechanism
        self.mechanism = mechanism
        self.hashname = self.HASHES[base]
        self.plus = mechanism.endswith('-PLUS')
        if self.plus:
            assert cb_type, '-PLUS needs a channel binding type'
            self.gs2 = f'p={cb_type},,'
        else:
            self.gs2 = gs2_flag or 'n,,'
        self.cb_data = cb_data if self.plus else b''
        self.username = username
        self.password = password
        self.cnonce = nonce or b64(os.urandom(18))
        name = username.replace('=', '=3D').replace(',', '=2C')
        self.client_first_bare = f'n={name},r={self.cnonce}'
        self.server_signature = None

    def first(self):
        return (self.gs2 + self.client_first_bare).encode()

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hashname).digest()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split('=', 1) for kv in server_first.split(','))
        nonce, salt, iters = attrs['r'], base64.b64decode(attrs['s']), int(attrs['i'])
        if not nonce.startswith(self.cnonce) or len(nonce) <= len(self.cnonce):
            raise ScramError(f'server nonce {nonce!r} does not extend ours')
        salted = hashlib.pbkdf2_hmac(self.hashname, self.password.encode(), salt, iters)
        client_key = self._hmac(salted, b'Client Key')
        stored_key = hashlib.new(self.hashname, client_key).digest()
        cbind = b64(self.gs2.encode() + self.cb_data)
        without_proof = f'c={cbind},r={nonce}'
        auth_message = ','.join((self.client_first_bare, server_first, without_proof)).encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = self._hmac(salted, b'Server Key')
        self.server_signature = self._hmac(server_key, auth_message)
        return f'{without_proof},p={b64(proof)}'.encode()

    def verify(self, server_final):
        text = server_final.decode()
        if text.startswith('e='):
            raise ScramError(f'server error {text}')
        attrs = dict(kv.split('=', 1) for kv in text.split(','))
        if base64.b64decode(attrs['v']) != self.server_signature:
            raise ScramError('server signature mismatch')
        return True


# ---------------------------------------------------------------------------
# Raw XMPP stream over a blocking socket

class StreamClosed(Exception):
    pass


class RawStream:
    """A byte-exact client stream.

    Received data is parsed incrementally: `header` is the attributes of the
    server's stream header, `next_element()` returns the next complete
    top-level element (a stanza, features, a stream error ...), and
    `closed_tag` becomes true when </stream:stream> arrives. `raw` keeps
    every byte received on the current stream (after TLS: decrypted)."""

    def __init__(self, server, *, direct_tls=False, tls_max=None, port=None,
                 source=None, alpn=True, rcvbuf=None):
        """rcvbuf: a small SO_RCVBUF, set before connecting (the window is
        agreed in the handshake), so that the server cannot push much into
        the socket while the test does not read."""
        self.server = server
        port = port or (server.tls_port if direct_tls else server.c2s_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source:
                self.sock.bind((source, 0))
            self.sock.settimeout(WAIT)
            self.sock.connect(('127.0.0.1', port))
        except OSError:
            self.sock.close()
            raise
        self.tls = False
        self.eof = False
        self.all_raw = b''
        self.features = None
        self._reset_parser()
        if direct_tls:
            self._wrap(tls_max, ['xmpp-client'] if alpn else None)

    # -- plumbing -----------------------------------------------------------
    def _reset_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.header = None
        self.header_elem = None
        self.closed_tag = False
        self.elements = []
        self.raw = b''

    def _wrap(self, tls_max=None, alpn=None):
        ctx = client_tls_context(tls_max, alpn)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.sock.settimeout(WAIT)
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _recv(self, deadline):
        """Read once; returns False on EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError('timed out waiting for server data; got so far: '
                               + self.raw[-2000:].decode(errors='replace'))
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError('timed out waiting for server data; got so far: '
                               + self.raw[-2000:].decode(errors='replace'))
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError):
            data = b''
        except ssl.SSLError as e:
            if 'APPLICATION_DATA_AFTER_CLOSE_NOTIFY' in str(e) or 'UNEXPECTED_EOF' in str(e):
                data = b''
            else:
                raise
        if not data:
            self.eof = True
            return False
        self.raw += data
        self.all_raw += data
        self.parser.feed(data)
        for event, elem in self.parser.read_events():
            if event == 'start':
                self.depth += 1
                if self.depth == 1:
                    self.header_elem = elem
                    self.header = dict(elem.attrib)
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.elements.append(elem)
                    self.header_elem.remove(elem)
                elif self.depth == 0:
                    self.closed_tag = True
        return True

    # -- stream level --------------------------------------------------------
    def open(self, to=DOMAIN, version='1.0', ns=NS_CLIENT, lang='en',
             extra='', decl=True, read_features=True):
        """Send a stream header, wait for the server's; returns the header
        attributes. With read_features, also waits for <stream:features/>."""
        self._reset_parser()
        to_attr = f" to='{to}'" if to is not None else ''
        ver_attr = f" version='{version}'" if version is not None else ''
        lang_attr = f" xml:lang='{lang}'" if lang is not None else ''
        self.send(("<?xml version='1.0'?>" if decl else '') +
                  f"<stream:stream{to_attr}{ver_attr}{lang_attr} xmlns='{ns}' "
                  f"xmlns:stream='{NS_STREAM}'{extra}>")
        self.wait_header()
        if read_features:
            self.features = self.next_element()
            assert self.features.tag == q(NS_STREAM, 'features'), \
                f'expected stream features, got {ET.tostring(self.features)!r}'
        return self.header

    def wait_header(self):
        deadline = time.monotonic() + WAIT
        while self.header is None:
            if not self._recv(deadline):
                raise StreamClosed('closed before a stream header: '
                                   + self.raw.decode(errors='replace'))
        return self.header

    def next_element(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not self.elements:
            if self.closed_tag:
                raise StreamClosed('stream closed by server: '
                                   + self.raw[-2000:].decode(errors='replace'))
            if not self._recv(deadline):
                raise StreamClosed('connection closed by server: '
                                   + self.raw[-2000:].decode(errors='replace'))
        return self.elements.pop(0)

    def wait_for(self, pred, timeout=WAIT):
        """Next element for which pred(elem) holds; others are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            elem = self.next_element(max(0.01, deadline - time.monotonic()))
            if pred(elem):
                return elem

    def wait_closed(self, timeout=WAIT):
        """Read until the connection closes (EOF); returns the elements
        that arrived meanwhile."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._recv(deadline)
        return self.elements

    def expect_stream_error(self, condition, timeout=WAIT):
        """Read until a <stream:error/>, check its condition, then check the
        stream is closed with </stream:stream> and the TCP connection ends.
        Returns the error element."""
        deadline = time.monotonic() + timeout
        error = None
        while error is None:
            try:
                elem = self.next_element(max(0.01, deadline - time.monotonic()))
            except StreamClosed as e:
                raise AssertionError(f'no stream error before close: {e}')
            if elem.tag == q(NS_STREAM, 'error'):
                error = elem
        assert conditions(error, NS_STREAMS) == [condition], \
            f'expected stream error {condition}, got {ET.tostring(error)!r}'
        while not self.closed_tag:
            assert self._recv(deadline), 'connection closed without </stream:stream>'
        assert b'</stream:stream>' in self.raw or re.search(rb'</[A-Za-z0-9_]*:?stream>', self.raw)
        # RFC 6120 4.4: we answer the close; the server must end the TCP
        # connection (it need not wait for us after a stream error).
        try:
            self.send('</stream:stream>')
        except OSError:
            pass
        self.wait_closed(max(0.01, deadline - time.monotonic()))
        return error

    def starttls(self, tls_max=None):
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        elem = self.next_element()
        assert elem.tag == q(NS_TLS, 'proceed'), ET.tostring(elem)
        self._wrap(tls_max)

    def secure(self, tls_max=None):
        """Open the stream, STARTTLS, reopen: returns post-TLS features."""
        self.open()
        self.starttls(tls_max)
        self.open()
        return self.features

    def mechanisms(self):
        mechs = self.features.find(q(NS_SASL, 'mechanisms')) if self.features is not None else None
        if mechs is None:
            return []
        return [m.text for m in mechs.findall(q(NS_SASL, 'mechanism'))]

    def cb_types(self):
        cb = self.features.find(q(NS_SASL_CB, 'sasl-channel-binding'))
        if cb is None:
            return None
        return [c.get('type') for c in cb.findall(q(NS_SASL_CB, 'channel-binding'))]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- SASL ------------------------------------------------------------------
    def sasl_send(self, mechanism, initial=None):
        """Send <auth/>; initial None means no initial response, b'' means
        an empty one ('=')."""
        if initial is None:
            payload = ''
        elif initial == b'':
            payload = '='
        else:
            payload = b64(initial)
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{payload}</auth>")
        return self.next_element()

    def sasl_respond(self, data):
        self.send(f"<response xmlns='{NS_SASL}'>{b64(data) if data else ''}</response>")
        return self.next_element()

    def channel_binding(self, cb_type):
        if cb_type == 'tls-unique':
            return self.sock.get_channel_binding('tls-unique')
        if cb_type == 'tls-exporter':
            return tls_exporter(self.sock)
        raise ValueError(cb_type)

    def scram(self, mechanism, username, password, cb_type=None, **kw):
        """Full SCRAM exchange. Returns ('success', None) after checking the
        server signature, or ('failure', condition)."""
        cb_data = self.channel_binding(cb_type) if cb_type else b''
        client = ScramClient(mechanism, username, password, cb_type, cb_data, **kw)
        elem = self.sasl_send(mechanism, client.first())
        if elem.tag != q(NS_SASL, 'challenge'):
            return sasl_result(elem)
        elem = self.sasl_respond(client.final(base64.b64decode(elem.text or '')))
        if elem.tag == q(NS_SASL, 'challenge'):  # final data as a challenge
            client.verify(base64.b64decode(elem.text or ''))
            elem = self.sasl_respond(b'')
            kind, cond = sasl_result(elem)
            return kind, cond
        kind, cond = sasl_result(elem)
        if kind == 'success':
            # RFC 6120 6.3.10: additional data with success (v=...)
            assert elem.text, 'SCRAM success without server-final-message'
            client.verify(base64.b64decode(elem.text))
        return kind, cond

    def plain(self, username, password, authzid=''):
        elem = self.sasl_send('PLAIN', f'{authzid}\0{username}\0{password}'.encode())
        return sasl_result(elem)

    def bind(self, resource=None, iq_id='bind1'):
        """Bind; returns the full JID or raises AssertionError with the error."""
        res = f'<resource>{resource}</resource>' if resource is not None else ''
        self.send(f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'>{res}</bind></iq>")
        elem = self.wait_for(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iq_id)
        assert elem.get('type') == 'result', ET.tostring(elem)
        jid = elem.find(f'{q(NS_BIND, "bind")}/{q(NS_BIND, "jid")}')
        assert jid is not None and jid.text, ET.tostring(elem)
        return jid.text

    def authenticate(self, user, mechanism='SCRAM-SHA-1', direct_tls=False):
        """TLS (unless already), SCRAM and the stream restart: the stream
        is authenticated, not yet bound. Returns the new features."""
        if direct_tls or self.tls:
            self.open()
        else:
            self.secure()
        kind, cond = self.scram(mechanism, user.localpart, user.password)
        assert kind == 'success', f'login failed: {cond}'
        self.open()
        return self.features

    def login(self, user, resource=None, mechanism='SCRAM-SHA-1', direct_tls=False):
        """authenticate() and bind: returns the full JID. Leaves the
        stream ready for stanzas."""
        self.authenticate(user, mechanism, direct_tls)
        return self.bind(resource)

    def iq(self, payload, type='get', to=None, iq_id=None):
        """Send an IQ, wait for the response with the same id."""
        iq_id = iq_id or 'iq-' + uuid.uuid4().hex[:8]
        to_attr = f" to='{to}'" if to else ''
        self.send(f"<iq type='{type}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iq_id
                             and e.get('type') in ('result', 'error'))


def sasl_result(elem):
    if elem.tag == q(NS_SASL, 'success'):
        return 'success', None
    if elem.tag == q(NS_SASL, 'failure'):
        conds = [c.tag.split('}', 1)[1] for c in elem if c.tag != q(NS_SASL, 'text')]
        return 'failure', (conds[0] if conds else None)
    raise AssertionError(f'unexpected SASL answer {ET.tostring(elem)!r}')


# ---------------------------------------------------------------------------
# data forms (XEP-0004)

def form(form_type, fields, type='submit'):
    """An XEP-0004 data form of FORM_TYPE form_type; fields: {var: value
    or [values]}."""
    out = (f"<x xmlns='{NS_XDATA}' type='{type}'><field var='FORM_TYPE' type='hidden'>"
           f"<value>{form_type}</value></field>")
    for var, value in fields.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out += f"<field var='{esc(var)}'>" + ''.join(
            f'<value>{esc(str(v))}</value>' for v in values) + '</field>'
    return out + '</x>'


def form_values(x):
    """{var: value or [values]} of a data form element."""
    out = {}
    for f in x.findall(q(NS_XDATA, 'field')):
        vals = [v.text or '' for v in f.findall(q(NS_XDATA, 'value'))]
        out[f.get('var')] = vals if f.get('type') in ('list-multi', 'jid-multi') else (vals[0] if vals else None)
    return out


# ---------------------------------------------------------------------------
# errors and results (ElementTree elements)

def conditions(error, ns):
    """Local names of the defined conditions (children in namespace ns,
    but <text/>) of a stanza's <error/> or a <stream:error/>."""
    return [c.tag.split('}', 1)[1] for c in error
            if c.tag.startswith('{' + ns + '}') and not c.tag.endswith('}text')]


def stanza_error(elem):
    """(type, condition) of a stanza error element's <error/> child."""
    err = elem.find(q(elem.tag.split('}')[0][1:], 'error'))
    if err is None:
        return None, None
    conds = conditions(err, NS_STANZAS)
    return err.get('type'), (conds[0] if conds else None)


def error_cond(elem):
    """The condition of an error stanza, which it must be."""
    assert elem.get('type') == 'error', f'expected an error, got {tostr(elem)}'
    return stanza_error(elem)[1]


def error_of(e):
    """(type, condition, [tags of the other children of <error/>]) of an
    error stanza; the condition is a list unless there is exactly one."""
    err = e.find(q(NS_CLIENT, 'error'))
    assert err is not None, f'no <error/> in {tostr(e)}'
    conds = conditions(err, NS_STANZAS)
    others = [c.tag for c in err if not c.tag.startswith('{' + NS_STANZAS + '}')]
    return err.get('type'), (conds[0] if len(conds) == 1 else conds), others


def ok(e):
    """e, which must be an IQ result."""
    assert e.get('type') == 'result', tostr(e)
    return e


# ---------------------------------------------------------------------------
# slixmpp client

_LIVE_CLIENTS = []


async def await_live_clients_closed():
    """Called after every async test: abort whatever is still connected."""
    while _LIVE_CLIENTS:
        c = _LIVE_CLIENTS.pop()
        try:
            if c.transport is not None:
                c.abort()
        except Exception:
            pass


class Client(slixmpp.ClientXMPP):
    """slixmpp client for one user, pinned to the test server.

    Certificate checks are off (self-signed test cert). Every received
    stanza is recorded (an 'in' filter, so slixmpp's own handling -- replies
    to roster pushes, pings, version, unknown IQs -- is unchanged) and can
    be awaited with `wait()`. Subscription requests are never answered
    automatically."""

    def __init__(self, server, jid, password, resource=None, *, direct_tls=False,
                 mechanism=None, plugins=('xep_0030', 'xep_0199', 'xep_0092')):
        full = f'{jid}/{resource}' if resource else jid
        super().__init__(full, password, sasl_mech=mechanism)
        self.srv = server
        self.direct_tls = direct_tls
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        for p in plugins:
            self.register_plugin(p)
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.received = []
        self._arrived = asyncio.Event()
        self.stream_errors = []
        self.add_filter('in', self._record)
        self.add_event_handler('stream_error', self._on_stream_error)
        self.add_event_handler('disconnected', lambda _e: self._arrived.set())
        self.is_disconnected = False

    def _record(self, stanza):
        self.received.append(stanza)
        self._arrived.set()
        return stanza

    def _on_stream_error(self, err):
        self.stream_errors.append(err)
        self._arrived.set()

    async def start(self, presence=True, priority=None, get_roster=True, status=None):
        """Connect, authenticate, bind; then fetch the roster and send
        initial presence unless told not to."""
        loop = asyncio.get_event_loop()
        done = loop.create_future()

        def finish(result):
            if not done.done():
                done.set_result(result)

        self.add_event_handler('session_start', lambda _e: finish('ok'))
        self.add_event_handler('failed_all_auth', lambda _e: finish('auth failed'))
        self.add_event_handler('connection_failed', lambda e: finish(f'connection failed: {e}'))
        self.add_event_handler('disconnected', lambda e: finish(f'disconnected: {e}'))
        _LIVE_CLIENTS.append(self)
        self.connect(('127.0.0.1', self.srv.tls_port if self.direct_tls else self.srv.c2s_port),
                     use_ssl=self.direct_tls, force_starttls=not self.direct_tls)
        try:
            result = await asyncio.wait_for(done, WAIT)
        except asyncio.TimeoutError:
            raise AssertionError(f'{self.boundjid}: no session within {WAIT}s')
        if result != 'ok':
            raise LoginFailed(result)
        if get_roster:
            await self.get_roster(timeout=WAIT)
        if presence:
            self.send_presence(ppriority=priority, pstatus=status)
            # RFC 6121 4.2.2: initial presence is broadcast to all of the
            # user's available resources, this one included. Waiting for the
            # echo makes "this resource is available" a fact, not a race.
            me = str(self.boundjid)
            await self.wait(lambda st: st.xml.tag == f'{{{NS_CLIENT}}}presence'
                            and st.xml.get('from') == me and not st.xml.get('type'),
                            what='own initial presence echoed back')
        return self

    async def stop(self):
        """Close the stream and wait for the server to close it too."""
        if self.transport is None:
            return
        try:
            await asyncio.wait_for(self.disconnect(wait=WAIT), WAIT + 1)
        except asyncio.TimeoutError:
            self.abort()
        if self in _LIVE_CLIENTS:
            _LIVE_CLIENTS.remove(self)

    async def wait(self, pred, timeout=WAIT, what='stanza'):
        """Return (and consume) the first recorded stanza matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            for i, st in enumerate(self.received):
                if pred(st):
                    return self.received.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f'{self.boundjid}: no {what} within {timeout}s; received: '
                    + ' | '.join(str(s) for s in self.received[-10:]))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def expect_none(self, pred, wait=1.0, what='stanza'):
        """Assert that no recorded stanza matches pred within `wait` s."""
        await asyncio.sleep(wait)
        hits = [s for s in self.received if pred(s)]
        assert not hits, f'{self.boundjid}: unexpected {what}: {hits[0]}'

    def clear(self):
        self.received.clear()

    async def iq(self, payload, type='get', to=None):
        """Send an IQ with a raw XML payload (string or None); returns the
        response stanza (result or error) rather than raising."""
        iq = self.make_iq(ifrom=None, ito=to, itype=type)
        if payload:
            iq.append(ET.fromstring(payload))
        try:
            return await iq.send(timeout=WAIT)
        except IqError as e:
            return e.iq
        except IqTimeout:
            raise AssertionError(f'no answer to IQ {payload!r} to {to} within {WAIT}s')

    def raw(self, data):
        self.send_raw(data)


class LoginFailed(AssertionError):
    pass


# ---------------------------------------------------------------------------
# predicates on slixmpp stanzas or ElementTree elements

def el(stanza):
    return stanza.xml


def is_presence(frm=None, type=None, to=None):
    """type None matches available presence (no type attribute)."""
    def pred(st):
        x = getattr(st, 'xml', st)
        if x.tag != q(NS_CLIENT, 'presence'):
            return False
        if (x.get('type') or None) != type:
            return False
        if frm is not None and not _jid_match(x.get('from'), frm):
            return False
        if to is not None and not _jid_match(x.get('to'), to):
            return False
        return True
    return pred


def is_message(frm=None, body=None, type=None):
    def pred(st):
        x = getattr(st, 'xml', st)
        if x.tag != q(NS_CLIENT, 'message'):
            return False
        if type is not None and (x.get('type') or 'normal') != type:
            return False
        if frm is not None and not _jid_match(x.get('from'), frm):
            return False
        if body is not None:
            b = x.find(q(NS_CLIENT, 'body'))
            if b is None or b.text != body:
                return False
        return True
    return pred


def is_roster_push(jid=None):
    def pred(st):
        x = st.xml
        if x.tag != q(NS_CLIENT, 'iq') or x.get('type') != 'set':
            return False
        query = x.find(q(NS_ROSTER, 'query'))
        if query is None:
            return False
        if jid is None:
            return True
        return any(i.get('jid') == jid for i in query.findall(q(NS_ROSTER, 'item')))
    return pred


def _jid_match(actual, expected):
    """Full JIDs must match exactly; a bare expected JID matches any
    resource of it."""
    if actual is None:
        return False
    if '/' in expected:
        return actual == expected
    return actual.split('/', 1)[0] == expected


def roster_items(stanza_or_elem):
    x = getattr(stanza_or_elem, 'xml', stanza_or_elem)
    query = x.find(q(NS_ROSTER, 'query'))
    if query is None:
        return {}
    return {i.get('jid'): i for i in query.findall(q(NS_ROSTER, 'item'))}


def error_condition(stanza_or_elem):
    """(type, condition) of a stanza's error, via the XML."""
    x = getattr(stanza_or_elem, 'xml', stanza_or_elem)
    return stanza_error(x)
