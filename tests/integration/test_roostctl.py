"""roostctl against the same data dir as a running roostd: adduser
(password file, stdin), duplicates, list, passwd, deluser, usage errors;
credentials are stored as SCRAM, never as the password."""

import os
import secrets
import subprocess

import pytest

from conftest import ROOSTCTL, User, unique_name
from helpers import DOMAIN, WAIT

pytestmark = pytest.mark.roost_only


def login(server, user):
    """('success', None) or ('failure', condition) for SCRAM-SHA-256."""
    with server.raw() as s:
        s.secure()
        return s.scram('SCRAM-SHA-256', user.localpart, user.password)


def fresh_jid():
    return f'{unique_name("ctl")}@{DOMAIN}'


def test_adduser_password_file(server, tmp_path):
    user = User(fresh_jid(), 'file-' + secrets.token_urlsafe(10))
    pwfile = tmp_path / 'pw'
    pwfile.write_text(user.password + '\n')
    r = server.ctl('adduser', user.jid, '--password-file', str(pwfile))
    assert r.returncode == 0, r.stderr
    assert login(server, user) == ('success', None)
    # a trailing newline is not part of the password
    assert login(server, User(user.jid, user.password + '\n'))[0] == 'failure'


def test_adduser_stdin(server):
    user = User(fresh_jid(), 'stdin-' + secrets.token_urlsafe(10))
    r = server.ctl('adduser', user.jid, input=user.password + '\n')
    assert r.returncode == 0, r.stderr
    assert login(server, user) == ('success', None)
    with server.raw() as s:
        s.secure()
        assert s.plain(user.localpart, user.password) == ('success', None)


def test_adduser_normalises_jid(server):
    local = unique_name('Ctl')
    password = secrets.token_urlsafe(10)
    r = server.ctl('adduser', f'{local.upper()}@LocalHost', input=password + '\n')
    assert r.returncode == 0, r.stderr
    assert login(server, User(f'{local.lower()}@{DOMAIN}', password)) == ('success', None)
    listed = server.ctl('list').stdout.split()
    assert f'{local.lower()}@{DOMAIN}' in listed


def test_adduser_duplicate(server, user):
    r = server.ctl('adduser', user.jid, input='another-password\n')
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip(), 'an error message is expected'
    # the original password still works
    assert login(server, user) == ('success', None)


def test_adduser_unknown_domain(server):
    r = server.ctl('adduser', f'{unique_name()}@not-served.example', input='pw\n')
    assert r.returncode != 0


@pytest.mark.parametrize('jid', ['no-domain', 'a@b@c', '@' + DOMAIN, f'x/res@{DOMAIN}x/'],
                         ids=['no-at', 'two-at', 'empty-local', 'garbage'])
def test_adduser_invalid_jid(server, jid):
    r = server.ctl('adduser', jid, input='pw\n')
    assert r.returncode in (1, 2), (r.returncode, r.stderr)


def test_list(server, make_user):
    users = [make_user('lst') for _ in range(3)]
    r = server.ctl('list')
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split()
    for u in users:
        assert u.jid in listed
    r = server.ctl('list', DOMAIN)
    assert r.returncode == 0
    for u in users:
        assert u.jid in r.stdout.split()


def test_passwd(server, user):
    new = 'new-' + secrets.token_urlsafe(10)
    r = server.ctl('passwd', user.jid, input=new + '\n')
    assert r.returncode == 0, r.stderr
    assert login(server, user) == ('failure', 'not-authorized')
    assert login(server, User(user.jid, new)) == ('success', None)
    with server.raw() as s:
        s.secure()
        assert s.scram('SCRAM-SHA-1', user.localpart, new) == ('success', None)


def test_passwd_password_file(server, user, tmp_path):
    new = 'newf-' + secrets.token_urlsafe(10)
    (tmp_path / 'pw').write_text(new + '\n')
    r = server.ctl('passwd', user.jid, '--password-file', str(tmp_path / 'pw'))
    assert r.returncode == 0, r.stderr
    assert login(server, User(user.jid, new)) == ('success', None)


def test_passwd_no_such_user(server):
    r = server.ctl('passwd', fresh_jid(), input='x\n')
    assert r.returncode == 1, (r.returncode, r.stderr)


async def test_passwd_while_logged_in(server, user):
    """A session opened before the change keeps working; new logins need
    the new password."""
    c = await server.client(user, 'before').start()
    new = 'live-' + secrets.token_urlsafe(10)
    r = server.ctl('passwd', user.jid, input=new + '\n')
    assert r.returncode == 0, r.stderr
    resp = await c.iq("<ping xmlns='urn:xmpp:ping'/>", to=DOMAIN)
    assert resp['type'] == 'result'
    c2 = server.client(User(user.jid, new), 'after')
    await c2.start()
    await c.stop()
    await c2.stop()


def test_deluser(server, user):
    r = server.ctl('deluser', user.jid)
    assert r.returncode == 0, r.stderr
    assert login(server, user) == ('failure', 'not-authorized')
    assert user.jid not in server.ctl('list').stdout.split()
    r = server.ctl('deluser', user.jid)
    assert r.returncode == 1, (r.returncode, r.stderr)


def test_deluser_then_recreate(server, user):
    assert server.ctl('deluser', user.jid).returncode == 0
    again = User(user.jid, 'again-' + secrets.token_urlsafe(8))
    assert server.ctl('adduser', user.jid, input=again.password + '\n').returncode == 0
    assert login(server, again) == ('success', None)
    assert login(server, user)[0] == 'failure'


@pytest.mark.parametrize('args', [[], ['no-such-command'], ['adduser'], ['deluser'],
                                  ['passwd'], ['adduser', 'a@localhost', '--bogus-flag']],
                         ids=['none', 'unknown', 'adduser-noarg', 'deluser-noarg',
                              'passwd-noarg', 'bad-flag'])
def test_usage_errors(server, args):
    r = server.ctl(*args, input='')
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), 'usage errors explain themselves on stderr'


def test_missing_config(tmp_path):
    r = subprocess.run([ROOSTCTL, '-c', str(tmp_path / 'nope.conf'), 'list'],
                       capture_output=True, text=True, timeout=WAIT)
    assert r.returncode != 0
    assert r.stderr.strip()


def test_password_never_stored(server):
    """Credentials are SCRAM (salt, iterations, StoredKey, ServerKey):
    neither the password nor its plain encodings appear in the data dir."""
    import base64
    password = 'Needle-' + secrets.token_hex(12)
    jid = fresh_jid()
    assert server.ctl('adduser', jid, input=password + '\n').returncode == 0
    needles = [password.encode(), password.encode('utf-16-le'),
               base64.b64encode(password.encode())]
    for root, _dirs, files in os.walk(server.data_dir):
        for name in files:
            data = open(os.path.join(root, name), 'rb').read()
            for n in needles:
                assert n not in data, f'password found in {name}'
